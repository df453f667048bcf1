/**
 * The worker's logger: a tiny structured interface so users can plug in pino or winston, and a
 * console default that prints one line per entry.
 */

/** A structured logger. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
/** Log levels, lowest first. */
export type LogLevel = keyof typeof LEVELS;

/** A logger that writes `LEVEL message {fields}` lines to the console at or above `level`. */
export function consoleLogger(level: LogLevel = "info"): Logger {
  const min = LEVELS[level];
  const line =
    (lvl: Exclude<LogLevel, "silent">, out: (...a: unknown[]) => void) =>
    (message: string, fields?: Record<string, unknown>) => {
      if (LEVELS[lvl] < min) return;
      out(`[spool] ${lvl.toUpperCase()} ${message}${fields ? ` ${safeJson(fields)}` : ""}`);
    };
  return {
    debug: line("debug", console.debug),
    info: line("info", console.info),
    warn: line("warn", console.warn),
    error: line("error", console.error),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = consoleLogger("silent");

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) =>
      typeof x === "bigint" ? `${x}n` : x instanceof Error ? x.message : x,
    );
  } catch {
    return "[unprintable]";
  }
}
