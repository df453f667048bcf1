// Guards against duration bugs: misread units, float drift ("1.1s" ≠ 1100), and bad input accepted silently.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Duration, formatDuration, toMs } from "../src/duration.ts";
import { ConfigurationError } from "../src/errors.ts";

describe("toMs", () => {
  it.each<[Duration, number]>([
    [0, 0],
    [1500, 1500],
    [0.5, 0.5],
    ["0ms", 0],
    ["200ms", 200],
    ["1s", 1000],
    ["1.5s", 1500],
    ["1.1s", 1100],
    [".5s", 500],
    ["10m", 600_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
    ["1h 30m", 5_400_000],
    ["1d2h3m4s5ms", 93_784_005],
    ["  45s ", 45_000],
  ])("%j is %d ms", (input, expected) => {
    expect(toMs(input)).toBe(expected);
  });

  it.each<[unknown, string]>([
    [-1, "is negative"],
    [Number.NaN, "is not a number"],
    [Number.POSITIVE_INFINITY, "is not finite"],
    ["", "is empty"],
    ["   ", "is empty"],
    ["-5s", "is negative"],
    ["10", "needs a unit"],
    ["10x", "cannot be parsed"],
    ["1h-30m", "cannot be parsed"],
    ["1.2.3s", "cannot be parsed"],
    ["s", "cannot be parsed"],
    ["1e3ms", "cannot be parsed"],
    [null, "expected a number or a string"],
    [{}, "expected a number or a string"],
  ])("rejects %j with a ConfigurationError naming the setting, value and accepted forms", (input, reason) => {
    let caught: unknown;
    try {
      toMs(input as Duration, 'timeout of activity "send"');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigurationError);
    const message = (caught as Error).message;
    expect(message).toContain('invalid timeout of activity "send"');
    expect(message).toContain(reason);
    expect(message).toContain(typeof input === "string" ? JSON.stringify(input) : String(input));
    expect(message).toContain('"1h30m"');
  });

  it("defaults the setting name to 'duration'", () => {
    expect(() => toMs(-1)).toThrow(/^invalid duration: -1 is negative/);
  });
});

describe("formatDuration", () => {
  it.each<[number, string]>([
    [0, "0ms"],
    [250, "250ms"],
    [1000, "1s"],
    [1500, "1.5s"],
    [1001, "1.001s"],
    [600_000, "10m"],
    [5_400_000, "1h30m"],
    [86_400_000, "1d"],
    [93_784_005, "1d2h3m4.005s"],
    [0.5, "0.5ms"],
    [1000.5, "1s0.5ms"],
    [-1500, "-1.5s"],
    [Number.NaN, "NaNms"],
  ])("%d ms is %s", (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });

  it("parses back to the same whole number of milliseconds", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 13 }), (ms) => {
        expect(toMs(formatDuration(ms))).toBe(ms);
      }),
      { numRuns: 500 },
    );
  });
});
