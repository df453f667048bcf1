/**
 * Durations as users write them (`"10m"`, `"1h30m"`, `1500`) and as the engine stores them
 * (milliseconds). This module owns parsing, validation and the compact human form used in
 * messages; nothing here reads a clock.
 */

import { InvalidOptionsError } from "./errors.ts";

/**
 * A length of time: a number of milliseconds, or a string such as `"200ms"`, `"1.5s"`, `"10m"`,
 * `"2h"`, `"1d"` or a compound `"1h30m"`.
 *
 * @example
 * ```ts
 * const timeout: Duration = "30s";
 * ```
 */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** One `<number><unit>` part, anchored where the previous part ended (sticky flag). */
const PART = /\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)/y;

const ACCEPTED =
  'Use a number of milliseconds (e.g. 1500) or a string like "200ms", "1.5s", "10m", "2h", "1d" or "1h30m"';

function invalid(what: string, value: unknown, reason: string): InvalidOptionsError {
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  return new InvalidOptionsError(`invalid ${what}: ${shown} ${reason}. ${ACCEPTED}.`);
}

/**
 * Converts a {@link Duration} to milliseconds.
 *
 * Strings are summed part by part (`"1h30m"` is 5 400 000) and rounded to the microsecond so
 * decimal fractions come out exact (`"1.1s"` is 1100, not 1100.0000000000002).
 *
 * @param d - the duration to convert
 * @param what - names the setting in error messages, e.g. `"timeout of activity \"send\""`
 * @returns the duration in milliseconds, finite and ≥ 0
 * @throws {@link InvalidOptionsError} for negative, NaN or non-finite numbers, and for strings that
 *   do not parse; the message names `what`, the bad value and the accepted forms.
 *
 * @example
 * ```ts
 * toMs("1h30m"); // 5_400_000
 * toMs(250); // 250
 * ```
 */
export function toMs(d: Duration, what = "duration"): number {
  if (typeof d === "number") {
    if (Number.isNaN(d)) throw invalid(what, d, "is not a number");
    if (!Number.isFinite(d)) throw invalid(what, d, "is not finite");
    if (d < 0) throw invalid(what, d, "is negative");
    return d;
  }
  if (typeof d !== "string") {
    throw invalid(what, d, `has type ${d === null ? "null" : typeof d}, expected a number or a string`);
  }
  const text = d.trim();
  if (text.startsWith("-")) throw invalid(what, d, "is negative");
  if (text === "") throw invalid(what, d, "is empty");
  let total = 0;
  let pos = 0;
  PART.lastIndex = 0;
  while (pos < text.length) {
    PART.lastIndex = pos;
    const m = PART.exec(text);
    if (m === null) {
      const hint = /^\d+(\.\d+)?$/.test(text) ? " (a string needs a unit)" : "";
      throw invalid(what, d, `cannot be parsed${hint}`);
    }
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    pos = PART.lastIndex;
  }
  if (!Number.isFinite(total)) throw invalid(what, d, "is too large");
  return Math.round(total * 1000) / 1000;
}

/**
 * Formats milliseconds compactly for messages and the CLI: `"250ms"`, `"1.5s"`, `"10m"`,
 * `"1h30m"`, `"1d"`. The result parses back with {@link toMs} to the same value for whole
 * milliseconds. Never throws: negative and non-finite inputs are shown as they are.
 *
 * @example
 * ```ts
 * formatDuration(5_400_000); // "1h30m"
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return `${ms}ms`;
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms === 0) return "0ms";
  let rest = ms;
  let out = "";
  for (const unit of ["d", "h", "m"] as const) {
    const size = UNIT_MS[unit] as number;
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  if (seconds > 0 && Number.isInteger(millis)) {
    const fraction = millis === 0 ? "" : `.${String(millis).padStart(3, "0").replace(/0+$/, "")}`;
    out += `${seconds}${fraction}s`;
  } else {
    if (seconds > 0) out += `${seconds}s`;
    if (millis > 0) out += `${Number(millis.toFixed(3))}ms`;
  }
  return out;
}
