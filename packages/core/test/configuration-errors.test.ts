// Guards the split of ConfigurationError: each kind of mistake throws its own class and code, stays a ConfigurationError, parks like one, and survives history.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  ConfigurationError,
  classifyFailure,
  defineActivity,
  defineWorkflow,
  deserializeError,
  type HistoryEvent,
  HistoryLimitError,
  InternalContractError,
  InvalidOptionsError,
  replay,
  resolveRetryPolicy,
  SpoolError,
  serializeError,
  sleep,
  WorkflowCodeError,
  WorkflowExecutor,
} from "../src/index.ts";
import { Sim } from "./support/sim.ts";

/** The error `fn` throws (or rejects with). */
async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

function expectFamily(err: unknown, cls: abstract new (...args: never[]) => Error, code: string): void {
  expect(err).toBeInstanceOf(cls);
  expect(err).toBeInstanceOf(ConfigurationError);
  expect(err).toBeInstanceOf(SpoolError);
  expect(ConfigurationError.is(err)).toBe(true);
  expect((err as ConfigurationError).code).toBe(code);
  expect(classifyFailure(err)).toBe("code-bug");
}

describe("InvalidOptionsError: a bad option, definition or argument", () => {
  it.each([
    ["a retry policy", () => resolveRetryPolicy({ maxAttempts: -1 })],
    ["a definition without schemas", () => defineActivity({ name: "a" } as never, async () => 1)],
    [
      "a name that cannot be recorded",
      () => defineActivity({ name: "", input: z.any(), output: z.any() }, async () => 1),
    ],
  ])("%s", async (_what, fn) => {
    expectFamily(await caught(fn), InvalidOptionsError, "SPOOL_INVALID_OPTIONS");
  });

  it("a bad duration inside workflow code is one too, and parks the run", async () => {
    const wf = defineWorkflow(
      { name: "bad-dur", input: z.object({}), output: z.string() },
      async function* () {
        yield* sleep("ten minutes");
        return "x";
      },
    );
    expectFamily(await caught(() => Sim.start(wf, {})), InvalidOptionsError, "SPOOL_INVALID_OPTIONS");
  });
});

describe("WorkflowCodeError: workflow code uses the vocabulary wrongly", () => {
  it("yielding something that is not a step", async () => {
    const wf = defineWorkflow(
      { name: "bad-yield", input: z.object({}), output: z.string() },
      async function* () {
        yield 42 as never;
        return "x";
      },
    );
    const err = await caught(() => Sim.start(wf, {}));
    expectFamily(err, WorkflowCodeError, "SPOOL_WORKFLOW_CODE");
    expect((err as Error).message).toMatch(/yield\*/);
  });

  it("yielding one step twice", async () => {
    const wf = defineWorkflow({ name: "twice", input: z.object({}), output: z.string() }, async function* () {
      const step = sleep(1);
      yield* step;
      yield* step;
      return "x";
    });
    const sim = await Sim.start(wf, {});
    expectFamily(
      await caught(() => sim.feed({ type: "TimerFired", step: 1 })),
      WorkflowCodeError,
      "SPOOL_WORKFLOW_CODE",
    );
  });
});

describe("HistoryLimitError: a run reached the history limit", () => {
  it("fails the run with the limit, recorded under its own name", async () => {
    const loop = defineWorkflow(
      { name: "loop", input: z.object({}), output: z.string() },
      async function* () {
        for (;;) yield* sleep(1);
      },
    );
    const history: HistoryEvent[] = [
      { type: "WorkflowStarted", seq: 1, ts: 0, workflowName: "loop", input: {} },
    ];
    let r = await replay(loop, undefined, history, { historyLimit: 12 });
    history.push(...r.newEvents);
    for (let step = 1; r.status === "running"; step++) {
      r = await replay(loop, undefined, history, {
        historyLimit: 12,
        apply: [{ type: "TimerFired", step, ts: step }],
      });
      history.push(...r.newEvents);
    }
    expect(r.status).toBe("failed");
    expectFamily(r.error, HistoryLimitError, "SPOOL_HISTORY_LIMIT");
    expect(r.error).toMatchObject({ runId: "replay", limit: 12 });
    expect((r.error as Error).message).toMatch(/history limit of 12 events.*continueAsNew/s);
  });
});

describe("InternalContractError: the engine driven out of order", () => {
  it("apply() before replayHistory()", async () => {
    const wf = defineWorkflow({ name: "w", input: z.object({}), output: z.string() }, async function* () {
      return "x";
    });
    const ex = new WorkflowExecutor(wf, { workflowId: "wf-1", runId: "run-1" });
    const err = await caught(() => ex.apply([], 0));
    expectFamily(err, InternalContractError, "SPOOL_INTERNAL_CONTRACT");
    expect((err as Error).message).toMatch(/apply\(\) needs replayHistory\(\) first.*please report it/s);
  });
});

describe("the family across processes", () => {
  it.each([
    new InvalidOptionsError("bad"),
    new WorkflowCodeError("bad"),
    new HistoryLimitError({ runId: "r", limit: 5 }),
    new InternalContractError("bad"),
  ])("a rehydrated %s keeps its class and code; the code is not recorded", (err) => {
    const recorded = serializeError(err);
    expect(recorded.name).toBe(err.name);
    expect(recorded.details?.code).toBeUndefined();
    const back = deserializeError(recorded);
    expect(back).toBeInstanceOf(err.constructor);
    expectFamily(back, ConfigurationError, err.code);
  });

  it("a subclass from another copy of @spool/core is recognised by name, and parks", () => {
    const foreign = Object.assign(new Error("yielded 42"), { name: "WorkflowCodeError" });
    expect(ConfigurationError.is(foreign)).toBe(true);
    expect(WorkflowCodeError.is(foreign)).toBe(true);
    expect(InvalidOptionsError.is(foreign)).toBe(false);
    expect(classifyFailure(foreign)).toBe("code-bug");
  });

  it("a ConfigurationError recorded before the split rehydrates as the base class", () => {
    const old = deserializeError({ name: "ConfigurationError", message: "old" });
    expect(old).toBeInstanceOf(ConfigurationError);
    expect((old as ConfigurationError).code).toBe("SPOOL_CONFIGURATION");
    expect(classifyFailure(old)).toBe("code-bug");
  });
});
