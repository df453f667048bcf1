/**
 * Plain-text tables for the terminal and the README: right-aligned numbers, three significant
 * digits (enough for figures that vary by several percent from round to round).
 */

/** Formats a figure with three significant digits and thousands separators. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  if (abs === 0) return "0";
  if (abs >= 1000) return Math.round(n).toLocaleString("en-US");
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : Math.min(6, 2 - Math.floor(Math.log10(abs)));
  return n.toFixed(digits);
}

/** Renders rows as an aligned text table; columns listed in `right` are right-aligned. */
export function renderTable(
  headers: string[],
  rows: string[][],
  right: ReadonlySet<number> = new Set(),
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** Renders rows as a Markdown table (for pasting into bench/README.md). */
export function renderMarkdown(
  headers: string[],
  rows: string[][],
  right: ReadonlySet<number> = new Set(),
): string {
  const sep = headers.map((_, i) => (right.has(i) ? "---:" : "---"));
  return [headers, sep, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}
