/**
 * Checks of the numeric options SQL backends take (leases, caps, timeouts), with one error text:
 * "<Backend>: <option> must be a positive integer".
 */
import { InvalidOptionsError } from "@spool/core";

/**
 * An integer option's value, or `fallback` when it was not given.
 *
 * @param backend the class name the error names ("SqliteBackend", "PostgresBackend").
 * @param allowZero accept 0 (a timeout or refresh interval that can be switched off).
 * @throws InvalidOptionsError when the value is not an integer, or is below 1 (below 0 with `allowZero`).
 * @example
 * ```ts
 * const leaseMs = positiveIntOption("SqliteBackend", "workflowLeaseMs", options.workflowLeaseMs, 30_000);
 * ```
 */
export function positiveIntOption(
  backend: string,
  name: string,
  value: number | undefined,
  fallback: number,
  allowZero = false,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new InvalidOptionsError(
      `${backend}: ${name} must be a ${allowZero ? "non-negative" : "positive"} integer`,
    );
  }
  return value;
}
