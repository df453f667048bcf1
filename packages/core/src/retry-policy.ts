/**
 * Retry policies for activities: the options users write, their validated resolved form, the
 * backoff schedule, the retry/give-up decision, and the JSON-safe form stored with a task.
 * Pure arithmetic; the worker owns the timers.
 */

import { z } from "zod";
import { type Duration, formatDuration, toMs } from "./duration.ts";
import { InvalidOptionsError, NonRetryableError, ValidationError } from "./errors.ts";

/**
 * How an activity is retried, as written by users. Every field is optional and falls back to the
 * base policy (by default {@link defaultRetryPolicy}).
 *
 * @example
 * ```ts
 * const policy: RetryPolicy = { maxAttempts: 5, initialInterval: "1s", maxInterval: "1m" };
 * ```
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. `0` or `Infinity` means unlimited. */
  maxAttempts?: number;
  /** Delay before the second attempt. */
  initialInterval?: Duration;
  /** Each delay is the previous one times this (≥ 1). */
  backoffCoefficient?: number;
  /**
   * Upper bound for any delay; must be ≥ `initialInterval`. When `initialInterval` is set and this
   * is not, it becomes 100 × `initialInterval` (as in Temporal).
   */
  maxInterval?: Duration;
  /** Error names (`err.name`) that fail the activity at once, without retrying. */
  nonRetryableErrors?: string[];
}

/** A validated {@link RetryPolicy} with durations in milliseconds. `maxAttempts` is `Infinity` when unlimited. */
export interface ResolvedRetryPolicy {
  maxAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maxIntervalMs: number;
  nonRetryableErrors: string[];
}

/**
 * The policy used when none is given: unlimited attempts, 1 s initial delay doubling each time, at
 * most 100 s between attempts. Frozen; resolve a policy to get a modifiable copy.
 */
export const defaultRetryPolicy: ResolvedRetryPolicy = Object.freeze({
  maxAttempts: Number.POSITIVE_INFINITY,
  initialIntervalMs: 1000,
  backoffCoefficient: 2,
  maxIntervalMs: 100_000,
  nonRetryableErrors: Object.freeze([]) as unknown as string[],
});

const KNOWN_KEYS = new Set([
  "maxAttempts",
  "initialInterval",
  "backoffCoefficient",
  "maxInterval",
  "nonRetryableErrors",
]);

/**
 * Merges `p` over `base` and validates the result.
 *
 * @returns a new resolved policy; `maxAttempts: 0` is normalised to `Infinity`.
 * @throws {@link InvalidOptionsError} for an unknown option, a bad duration, `backoffCoefficient < 1`,
 *   `maxAttempts` that is not a whole number ≥ 0 (or `Infinity`), `maxInterval < initialInterval`, or a
 *   `nonRetryableErrors` entry that is not a string.
 *
 * @example
 * ```ts
 * const policy = resolveRetryPolicy({ maxAttempts: 3, initialInterval: "500ms" });
 * policy.maxIntervalMs; // 50_000
 * ```
 */
export function resolveRetryPolicy(
  p?: RetryPolicy,
  base: ResolvedRetryPolicy = defaultRetryPolicy,
): ResolvedRetryPolicy {
  if (p === undefined) return { ...base, nonRetryableErrors: [...base.nonRetryableErrors] };
  if (typeof p !== "object" || p === null) {
    throw new InvalidOptionsError(`invalid retry policy: expected an object, got ${String(p)}.`);
  }
  for (const key of Object.keys(p)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new InvalidOptionsError(
        `invalid retry policy: unknown option "${key}". Known options: ${[...KNOWN_KEYS].join(", ")}.`,
      );
    }
  }

  const maxAttempts = p.maxAttempts ?? base.maxAttempts;
  if (
    typeof maxAttempts !== "number" ||
    !(maxAttempts === Number.POSITIVE_INFINITY || (Number.isInteger(maxAttempts) && maxAttempts >= 0))
  ) {
    throw new InvalidOptionsError(
      `invalid retry policy: maxAttempts ${String(maxAttempts)} must be a whole number ≥ 1 ` +
        "(attempts in all, the first included), or 0 / Infinity for unlimited.",
    );
  }

  const backoffCoefficient = p.backoffCoefficient ?? base.backoffCoefficient;
  if (
    typeof backoffCoefficient !== "number" ||
    !Number.isFinite(backoffCoefficient) ||
    backoffCoefficient < 1
  ) {
    throw new InvalidOptionsError(
      `invalid retry policy: backoffCoefficient ${String(backoffCoefficient)} must be a finite number ≥ 1 ` +
        "(1 keeps the delay constant, 2 doubles it after each attempt).",
    );
  }

  const initialIntervalMs =
    p.initialInterval === undefined
      ? base.initialIntervalMs
      : toMs(p.initialInterval, "retry policy initialInterval");
  const maxIntervalMs =
    p.maxInterval !== undefined
      ? toMs(p.maxInterval, "retry policy maxInterval")
      : p.initialInterval !== undefined
        ? 100 * initialIntervalMs
        : base.maxIntervalMs;
  if (maxIntervalMs < initialIntervalMs) {
    throw new InvalidOptionsError(
      `invalid retry policy: maxInterval (${formatDuration(maxIntervalMs)}) is shorter than initialInterval ` +
        `(${formatDuration(initialIntervalMs)}). Raise maxInterval or lower initialInterval.`,
    );
  }

  const names = p.nonRetryableErrors ?? base.nonRetryableErrors;
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
    throw new InvalidOptionsError(
      "invalid retry policy: nonRetryableErrors must be an array of error names (strings), " +
        'e.g. ["CardDeclinedError"].',
    );
  }

  return {
    maxAttempts: maxAttempts === 0 ? Number.POSITIVE_INFINITY : maxAttempts,
    initialIntervalMs,
    backoffCoefficient,
    maxIntervalMs,
    nonRetryableErrors: [...names],
  };
}

/**
 * The delay before the next attempt, after attempt number `attempt` (1-based) failed:
 * `min(initialInterval × coefficient^(attempt − 1), maxInterval)`.
 *
 * @throws {@link InvalidOptionsError} when `attempt` is not a whole number ≥ 1.
 *
 * @example
 * ```ts
 * retryDelayMs(resolveRetryPolicy(), 3); // 4000
 * ```
 */
export function retryDelayMs(policy: ResolvedRetryPolicy, attempt: number): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new InvalidOptionsError(
      `retryDelayMs: attempt ${attempt} must be a whole number ≥ 1 (the attempt that failed).`,
    );
  }
  // Guarded because 0 × Infinity (a huge power) is NaN.
  if (policy.initialIntervalMs === 0) return 0;
  return Math.min(
    policy.initialIntervalMs * policy.backoffCoefficient ** (attempt - 1),
    policy.maxIntervalMs,
  );
}

/** What to do after a failed attempt; see {@link retryDecision}. */
export type RetryDecision =
  | { retry: true; delayMs: number }
  | { retry: false; reason: "non-retryable" | "retries-exhausted" };

/**
 * Decides whether to retry after attempt number `attempt` (1-based) failed with `error`.
 *
 * Gives up as `"non-retryable"` when the error is a {@link NonRetryableError}, a
 * {@link ValidationError} (retrying cannot fix bad data), or its `name` is listed in
 * `nonRetryableErrors`; as `"retries-exhausted"` when `attempt` reached a finite `maxAttempts`.
 * Otherwise retries after {@link retryDelayMs}. Rehydrated errors are recognised by name.
 *
 * @example
 * ```ts
 * const d = retryDecision(resolveRetryPolicy({ maxAttempts: 2 }), 2, new Error("boom"));
 * // { retry: false, reason: "retries-exhausted" }
 * ```
 */
export function retryDecision(policy: ResolvedRetryPolicy, attempt: number, error: unknown): RetryDecision {
  if (
    NonRetryableError.is(error) ||
    ValidationError.is(error) ||
    isListed(policy.nonRetryableErrors, error)
  ) {
    return { retry: false, reason: "non-retryable" };
  }
  const max = policy.maxAttempts;
  if (max !== 0 && max !== Number.POSITIVE_INFINITY && attempt >= max) {
    return { retry: false, reason: "retries-exhausted" };
  }
  return { retry: true, delayMs: retryDelayMs(policy, attempt) };
}

function isListed(names: readonly string[], error: unknown): boolean {
  if (names.length === 0 || typeof error !== "object" || error === null) return false;
  const name = (error as { name?: unknown }).name;
  return typeof name === "string" && names.includes(name);
}

/**
 * Schema of the stored form of a policy (SQL JSON column, msgpack): plain finite numbers, with
 * `maxAttempts: 0` standing for unlimited because JSON has no `Infinity`.
 */
export const encodedRetryPolicySchema = z.object({
  maxAttempts: z.number().int().min(0),
  initialIntervalMs: z.number().min(0),
  backoffCoefficient: z.number().min(1),
  maxIntervalMs: z.number().min(0),
  nonRetryableErrors: z.array(z.string()),
});

/** The stored, JSON-safe form of a {@link ResolvedRetryPolicy}. */
export type EncodedRetryPolicy = z.infer<typeof encodedRetryPolicySchema>;

/**
 * Converts a resolved policy to its JSON-safe stored form (`Infinity` attempts become `0`).
 *
 * @example
 * ```ts
 * JSON.stringify(encodeRetryPolicy(defaultRetryPolicy)); // maxAttempts: 0
 * ```
 */
export function encodeRetryPolicy(p: ResolvedRetryPolicy): EncodedRetryPolicy {
  return {
    maxAttempts: p.maxAttempts === Number.POSITIVE_INFINITY ? 0 : p.maxAttempts,
    initialIntervalMs: p.initialIntervalMs,
    backoffCoefficient: p.backoffCoefficient,
    maxIntervalMs: p.maxIntervalMs,
    nonRetryableErrors: [...p.nonRetryableErrors],
  };
}

/**
 * Reads a stored policy back (`0` attempts become `Infinity`).
 *
 * @throws {@link ValidationError} when `data` does not have the stored shape; `issues` lists the fields.
 *
 * @example
 * ```ts
 * const policy = decodeRetryPolicy(JSON.parse(row.retry_policy));
 * ```
 */
export function decodeRetryPolicy(data: unknown): ResolvedRetryPolicy {
  const parsed = encodedRetryPolicySchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      path: i.path.map((k) => (typeof k === "symbol" ? String(k) : k)),
      message: i.message,
    }));
    throw new ValidationError(
      `stored retry policy is malformed: ${issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`,
      issues,
    );
  }
  const e = parsed.data;
  return {
    maxAttempts: e.maxAttempts === 0 ? Number.POSITIVE_INFINITY : e.maxAttempts,
    initialIntervalMs: e.initialIntervalMs,
    backoffCoefficient: e.backoffCoefficient,
    maxIntervalMs: e.maxIntervalMs,
    nonRetryableErrors: e.nonRetryableErrors,
  };
}
