/**
 * Short, readable renderings of payloads and durations for reports: JSON-like, with the types
 * Spool's codec round-trips (Date, Map, Set, BigInt, undefined, Uint8Array) spelled out, and cut
 * to a line.
 */

/** Renders a value on one line, at most `max` characters. */
export function formatValue(value: unknown, max = 80): string {
  let text: string;
  try {
    text = render(value, 0);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function render(v: unknown, depth: number): string {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "function") return "[function]";
  if (typeof v === "symbol") return v.toString();
  if (depth > 4) return "…";
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? "Invalid Date" : `Date(${v.toISOString()})`;
  if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (v instanceof Map) {
    return `Map{${[...v].map(([k, x]) => `${render(k, depth + 1)} => ${render(x, depth + 1)}`).join(", ")}}`;
  }
  if (v instanceof Set) return `Set{${[...v].map((x) => render(x, depth + 1)).join(", ")}}`;
  if (Array.isArray(v)) return `[${v.map((x) => render(x, depth + 1)).join(",")}]`;
  const entries = Object.entries(v as Record<string, unknown>).map(
    ([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}:${render(x, depth + 1)}`,
  );
  return `{${entries.join(",")}}`;
}

/** Renders a duration in ms compactly: `0s`, `1.5s`, `10m`, `1d 2h`. */
export function formatOffset(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ];
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [u, size] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${u}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}
