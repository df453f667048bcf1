// Guards the one answer to "park or fail?": an error escaping workflow code or the engine is classified the same way everywhere.
import { describe, expect, it } from "vitest";
import {
  CancelledError,
  ConfigurationError,
  classifyFailure,
  HistoryCorruptError,
  NonDeterminismError,
  parksWhenThrownByCode,
  parksWhenThrownByEngine,
  ValidationError,
  WorkflowAwaitError,
} from "../src/index.ts";

const divergence = new NonDeterminismError({ step: 1, seq: 2, recorded: "a", produced: "b" });
const foreignConfig = Object.assign(new Error("bad options"), { name: "ConfigurationError" });

describe("classifyFailure", () => {
  it.each([
    [divergence, "divergence"],
    [new WorkflowAwaitError("awaited fetch"), "divergence"],
    [new TypeError("x is undefined"), "code-bug"],
    [new ReferenceError("y"), "code-bug"],
    [new SyntaxError("z"), "code-bug"],
    [new ConfigurationError("bad"), "code-bug"],
    [foreignConfig, "code-bug"],
    [new HistoryCorruptError("run-1", 3, "crc mismatch"), "stored-data"],
    [new ValidationError("bad payload"), "invalid-payload"],
    [new CancelledError("stop"), "outcome"],
    [new Error("card declined"), "outcome"],
    ["a string", "outcome"],
  ])("%s is %s", (err, expected) => {
    expect(classifyFailure(err)).toBe(expected);
  });

  it("workflow code that throws a bug parks the run; a business error or a bad payload it did not catch fails it", () => {
    expect(parksWhenThrownByCode(new TypeError("x"))).toBe(true);
    expect(parksWhenThrownByCode(divergence)).toBe(true);
    expect(parksWhenThrownByCode(new ValidationError("input of activity"))).toBe(false);
    expect(parksWhenThrownByCode(new Error("declined"))).toBe(false);
  });

  it("the engine parks on anything it knows (divergence, bugs, unreadable or invalid stored data), never on the unknown", () => {
    expect(parksWhenThrownByEngine(new HistoryCorruptError("r", 1, "x"))).toBe(true);
    expect(parksWhenThrownByEngine(new ValidationError("recorded input"))).toBe(true);
    expect(parksWhenThrownByEngine(foreignConfig)).toBe(true);
    expect(parksWhenThrownByEngine(new Error("disk I/O"))).toBe(false);
  });
});
