// Guards against retry bugs: wrong backoff arithmetic, retrying what must not be retried, endless or missing retries, and policies lost in storage.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deserializeError, serializeError } from "../src/codec/error-serialization.ts";
import {
  ConfigurationError,
  NonRetryableError,
  PayloadTooLargeError,
  ValidationError,
} from "../src/errors.ts";
import {
  decodeRetryPolicy,
  defaultRetryPolicy,
  encodeRetryPolicy,
  type ResolvedRetryPolicy,
  type RetryPolicy,
  resolveRetryPolicy,
  retryDecision,
  retryDelayMs,
} from "../src/retry-policy.ts";

describe("resolveRetryPolicy", () => {
  it("defaults to unlimited attempts, 1s doubling, capped at 100s", () => {
    expect(resolveRetryPolicy()).toEqual({
      maxAttempts: Number.POSITIVE_INFINITY,
      initialIntervalMs: 1000,
      backoffCoefficient: 2,
      maxIntervalMs: 100_000,
      nonRetryableErrors: [],
    });
    expect(defaultRetryPolicy.maxIntervalMs).toBe(100 * defaultRetryPolicy.initialIntervalMs);
  });

  it("merges over the base and parses durations", () => {
    const base = resolveRetryPolicy({ maxAttempts: 5, nonRetryableErrors: ["A"] });
    expect(resolveRetryPolicy({ initialInterval: "250ms", maxInterval: "1m" }, base)).toEqual({
      maxAttempts: 5,
      initialIntervalMs: 250,
      backoffCoefficient: 2,
      maxIntervalMs: 60_000,
      nonRetryableErrors: ["A"],
    });
  });

  it("derives maxInterval as 100 × initialInterval when only initialInterval is set", () => {
    expect(resolveRetryPolicy({ initialInterval: "10m" }).maxIntervalMs).toBe(1000 * 60_000);
  });

  it("normalises maxAttempts 0 to Infinity (unlimited)", () => {
    expect(resolveRetryPolicy({ maxAttempts: 0 }).maxAttempts).toBe(Number.POSITIVE_INFINITY);
  });

  it("returns a copy the caller may change", () => {
    const p = resolveRetryPolicy();
    p.nonRetryableErrors.push("X");
    expect(defaultRetryPolicy.nonRetryableErrors).toEqual([]);
  });

  it.each<[RetryPolicy, RegExp]>([
    [{ backoffCoefficient: 0.5 }, /backoffCoefficient 0.5 must be a finite number ≥ 1/],
    [{ backoffCoefficient: Number.NaN }, /backoffCoefficient NaN/],
    [{ maxAttempts: -1 }, /maxAttempts -1 must be a whole number/],
    [{ maxAttempts: 1.5 }, /maxAttempts 1.5/],
    [{ maxAttempts: Number.NaN }, /maxAttempts NaN/],
    [
      { initialInterval: "10s", maxInterval: "1s" },
      /maxInterval \(1s\) is shorter than initialInterval \(10s\)/,
    ],
    [{ maxInterval: "500ms" }, /maxInterval \(500ms\) is shorter than initialInterval \(1s\)/],
    [{ initialInterval: "soon" }, /invalid retry policy initialInterval: "soon"/],
    [{ maxInterval: -5 }, /invalid retry policy maxInterval: -5 is negative/],
    [{ nonRetryableErrors: [42 as unknown as string] }, /nonRetryableErrors must be an array of error names/],
    [{ maxAttempt: 3 } as RetryPolicy, /unknown option "maxAttempt". Known options: maxAttempts/],
  ])("rejects %j with a ConfigurationError", (policy, message) => {
    expect(() => resolveRetryPolicy(policy)).toThrow(ConfigurationError);
    expect(() => resolveRetryPolicy(policy)).toThrow(message);
  });
});

describe("retryDelayMs", () => {
  it("backs off exponentially up to the cap", () => {
    const policy = resolveRetryPolicy({ initialInterval: "1s", backoffCoefficient: 2, maxInterval: "10s" });
    const delays = [1, 2, 3, 4, 5, 6, 1000].map((a) => retryDelayMs(policy, a));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it("keeps the delay constant with coefficient 1, and 0 with a zero initial interval", () => {
    const constant = resolveRetryPolicy({ initialInterval: 300, backoffCoefficient: 1 });
    expect([1, 2, 50].map((a) => retryDelayMs(constant, a))).toEqual([300, 300, 300]);
    const zero = resolveRetryPolicy({ initialInterval: 0, maxInterval: 0 });
    expect(retryDelayMs(zero, 5000)).toBe(0);
  });

  it("rejects attempt numbers below 1", () => {
    expect(() => retryDelayMs(defaultRetryPolicy, 0)).toThrow(ConfigurationError);
    expect(() => retryDelayMs(defaultRetryPolicy, 1.5)).toThrow(/attempt 1.5 must be a whole number/);
  });

  it("is non-decreasing, at least the initial interval and capped by maxInterval", () => {
    const policyArb = fc
      .record({
        initialIntervalMs: fc.integer({ min: 0, max: 60_000 }),
        extra: fc.integer({ min: 0, max: 3_600_000 }),
        backoffCoefficient: fc.double({ min: 1, max: 10, noNaN: true }),
      })
      .map(
        ({ initialIntervalMs, extra, backoffCoefficient }): ResolvedRetryPolicy => ({
          maxAttempts: Number.POSITIVE_INFINITY,
          initialIntervalMs,
          backoffCoefficient,
          maxIntervalMs: initialIntervalMs + extra,
          nonRetryableErrors: [],
        }),
      );
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 2000 }), (policy, attempt) => {
        const now = retryDelayMs(policy, attempt);
        const next = retryDelayMs(policy, attempt + 1);
        expect(Number.isFinite(now)).toBe(true);
        expect(next).toBeGreaterThanOrEqual(now);
        expect(now).toBeGreaterThanOrEqual(policy.initialIntervalMs);
        expect(next).toBeLessThanOrEqual(policy.maxIntervalMs);
      }),
      { numRuns: 500 },
    );
  });
});

describe("retryDecision", () => {
  const policy = resolveRetryPolicy({
    maxAttempts: 3,
    initialInterval: "1s",
    nonRetryableErrors: ["CardDeclined"],
  });

  it("retries with the backoff delay until maxAttempts, then reports exhaustion", () => {
    const err = new Error("flaky");
    expect(retryDecision(policy, 1, err)).toEqual({ retry: true, delayMs: 1000 });
    expect(retryDecision(policy, 2, err)).toEqual({ retry: true, delayMs: 2000 });
    expect(retryDecision(policy, 3, err)).toEqual({ retry: false, reason: "retries-exhausted" });
  });

  it("never exhausts an unlimited policy", () => {
    for (const maxAttempts of [0, Number.POSITIVE_INFINITY]) {
      const unlimited = { ...policy, maxAttempts };
      expect(retryDecision(unlimited, 1_000_000, new Error("x"))).toEqual({ retry: true, delayMs: 100_000 });
    }
  });

  it("gives up at once on NonRetryableError, ValidationError and listed names", () => {
    const declined = Object.assign(new Error("declined"), { name: "CardDeclined" });
    for (const err of [
      new NonRetryableError("no"),
      new ValidationError("bad input"),
      new PayloadTooLargeError("result", 10, 5),
      declined,
    ]) {
      expect(retryDecision(policy, 1, err)).toEqual({ retry: false, reason: "non-retryable" });
    }
  });

  it("recognises rehydrated non-retryable errors and ignores non-error throws", () => {
    const rehydrated = deserializeError(serializeError(new NonRetryableError("stop")));
    expect(retryDecision(policy, 1, rehydrated)).toEqual({ retry: false, reason: "non-retryable" });
    const byName = deserializeError({ name: "CardDeclined", message: "declined" });
    expect(retryDecision(policy, 1, byName)).toEqual({ retry: false, reason: "non-retryable" });
    expect(retryDecision(policy, 1, "CardDeclined")).toEqual({ retry: true, delayMs: 1000 });
    expect(retryDecision(policy, 1, null)).toEqual({ retry: true, delayMs: 1000 });
  });
});

describe("stored form", () => {
  it("round-trips through JSON, with Infinity stored as 0", () => {
    const policy = resolveRetryPolicy({ nonRetryableErrors: ["A", "B"], backoffCoefficient: 1.5 });
    const stored = JSON.parse(JSON.stringify(encodeRetryPolicy(policy)));
    expect(stored.maxAttempts).toBe(0);
    expect(decodeRetryPolicy(stored)).toEqual(policy);
    const limited = resolveRetryPolicy({ maxAttempts: 7 });
    expect(decodeRetryPolicy(JSON.parse(JSON.stringify(encodeRetryPolicy(limited))))).toEqual(limited);
  });

  it("rejects a malformed stored policy with a ValidationError listing the fields", () => {
    let caught: unknown;
    try {
      decodeRetryPolicy({
        maxAttempts: -1,
        initialIntervalMs: 1000,
        backoffCoefficient: 2,
        maxIntervalMs: 5,
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const issues = (caught as ValidationError).issues.map((i) => i.path.join("."));
    expect(issues).toEqual(expect.arrayContaining(["maxAttempts", "nonRetryableErrors"]));
    expect((caught as Error).message).toContain("stored retry policy is malformed: maxAttempts");
  });
});
