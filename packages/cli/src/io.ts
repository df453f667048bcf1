/**
 * Where the CLI writes: injectable so tests run commands in-process and read their output.
 */

/** The CLI's output streams. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/** The process's stdout and stderr. */
export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** A usage or input error: printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * An error the user can fix that is not a misuse of the command line (a missing database file):
 * printed as its message alone, without a stack or usage, exit code 1.
 */
export class CliError extends Error {
  override name = "CliError";
}

/** Formats rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

/** JSON with Dates as ISO strings, BigInts as strings and errors as their message. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => {
      if (typeof v === "bigint") return `${v}n`;
      if (v instanceof Error) return { name: v.name, message: v.message };
      if (v instanceof Uint8Array) return `<${v.length} bytes>`;
      if (v instanceof Map) return Object.fromEntries(v);
      if (v instanceof Set) return [...v];
      return v;
    },
    2,
  );
}
