// Guards the workflow vocabulary in the pure engine: all/race, signals, cancellation, children, continue-as-new, patches, sagas, queries.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  all,
  CancelledError,
  ChildWorkflowFailure,
  ConfigurationError,
  child,
  continueAsNew,
  defineActivity,
  defineQuery,
  defineSignal,
  defineWorkflow,
  deprecatePatch,
  type HistoryEvent,
  NonDeterminismError,
  patched,
  race,
  saga,
  serializeError,
  sleep,
} from "../src/index.ts";
import { replayFresh, Sim, short } from "./support/sim.ts";

const act = (name: string) =>
  defineActivity({ name, input: z.object({ n: z.number() }), output: z.number() }, async ({ n }) => n);
const a = act("a");
const b = act("b");
const c = act("c");
const approve = defineSignal("approve", z.object({ by: z.string() }));

describe("all()", () => {
  const wf = defineWorkflow(
    { name: "fan", input: z.object({}), output: z.array(z.number()) },
    async function* () {
      const [x, y, z2] = yield* all([
        a({ n: 1 }),
        (async function* () {
          const v = yield* b({ n: 2 });
          const w = yield* c({ n: v });
          return v + w;
        })(),
        sleep(5),
      ]);
      return [x, y, z2 === undefined ? 0 : 1];
    },
  );

  it("starts branches in array order and returns results in array order whatever the completion order", async () => {
    const sim = await Sim.start(wf, {});
    expect(sim.commands()).toEqual(["ActivityScheduled:1:a", "ActivityScheduled:2:b", "TimerStarted:3"]);
    await sim.feed({ type: "TimerFired", step: 3 });
    await sim.complete(2, 20);
    expect(sim.commands()).toEqual(["ActivityScheduled:4:c"]);
    await sim.complete(4, 7);
    await sim.complete(1, 10);
    expect(sim.ex.result).toEqual([10, 27, 0]);
    expect((await replayFresh(wf, sim.history)).newEvents).toEqual([]);
  });

  it("all([]) returns [] at once", async () => {
    const empty = defineWorkflow(
      { name: "empty", input: z.object({}), output: z.array(z.never()) },
      async function* () {
        return yield* all([]);
      },
    );
    const sim = await Sim.start(empty, {});
    expect(sim.ex.result).toEqual([]);
  });

  it("is fail-fast: the first failure is thrown and the other branches are cancelled", async () => {
    const log: string[] = [];
    const ff = defineWorkflow({ name: "ff", input: z.object({}), output: z.string() }, async function* () {
      try {
        yield* all([
          a({ n: 1 }),
          (async function* () {
            try {
              yield* sleep(100);
            } finally {
              log.push("branch finally");
            }
          })(),
        ]);
        return "no";
      } catch (err) {
        return `caught ${(err as Error).name}`;
      }
    });
    const sim = await Sim.start(ff, {});
    await sim.feed({
      type: "ActivityFailed",
      step: 1,
      attempt: 1,
      reason: "non-retryable",
      error: serializeError(new Error("x")),
    });
    expect(sim.commands()).toEqual(["TimerCancelled:2", "WorkflowCompleted"]);
    expect(sim.ex.result).toBe("caught ActivityFailure");
    expect(log).toEqual(["branch finally"]);
  });
});

describe("race()", () => {
  it("returns the winner and withdraws the losers (timers cancelled, activities cancelled)", async () => {
    const wf = defineWorkflow(
      { name: "race", input: z.object({}), output: z.union([z.number(), z.string()]) },
      async function* () {
        const r = yield* race([a({ n: 1 }), sleep("1h")]);
        return r === undefined ? "timeout" : r;
      },
    );
    const sim = await Sim.start(wf, {});
    await sim.feed({ type: "TimerFired", step: 2 });
    expect(sim.commands()).toEqual(["ActivityCancelled:1", "WorkflowCompleted"]);
    expect(sim.ex.result).toBe("timeout");
    // A late result for the cancelled step changes nothing.
    const r = await replayFresh(wf, sim.history);
    expect(r.result).toBe("timeout");
  });

  it("timer-vs-signal: the signal wins and no pending timer is left (durable-functions#577)", async () => {
    const wf = defineWorkflow({ name: "tvs", input: z.object({}), output: z.string() }, async function* () {
      const r = yield* race([approve.wait(), sleep("1d")]);
      return r ? `approved by ${r.by}` : "expired";
    });
    const sim = await Sim.start(wf, {});
    await sim.feed({ type: "SignalReceived", name: "approve", payload: { by: "ann" } });
    expect(sim.commands()).toEqual(["TimerCancelled:1", "WorkflowCompleted"]);
    expect(sim.ex.result).toBe("approved by ann");
    const started = sim.history
      .filter((e) => e.type === "TimerStarted")
      .map((e) => (e as { step: number }).step);
    const closed = sim.history.filter((e) => e.type === "TimerCancelled" || e.type === "TimerFired");
    expect(closed.map((e) => (e as { step: number }).step)).toEqual(started);
  });

  it("race([]) is refused with a clear error", async () => {
    const wf = defineWorkflow({ name: "r0", input: z.object({}), output: z.string() }, async function* () {
      yield* race([]);
      return "x";
    });
    await expect(Sim.start(wf, {})).rejects.toThrow(/race\(\[\]\) can never finish/);
  });
});

describe("signals", () => {
  const wf = defineWorkflow(
    { name: "sig", input: z.object({}), output: z.array(z.string()) },
    async function* () {
      yield* sleep(10);
      const first = yield* approve.wait();
      const second = yield* approve.wait({ timeout: "1h" });
      const third = yield* approve.wait({ timeout: "1h" });
      return [first.by, second?.by ?? "-", third?.by ?? "timed out"];
    },
  );

  it("buffers signals sent before the wait and delivers them in arrival order, once each", async () => {
    const sim = await Sim.start(wf, {});
    await sim.feed(
      { type: "SignalReceived", name: "approve", payload: { by: "ann" } },
      { type: "SignalReceived", name: "approve", payload: { by: "bob" } },
    );
    expect(sim.commands()).toEqual([]);
    await sim.feed({ type: "TimerFired", step: 1 });
    // Both buffered signals are consumed without a timer; the third wait arms its timeout.
    expect(sim.commands()).toEqual(["TimerStarted:2"]);
    await sim.feed({ type: "TimerFired", step: 2 });
    expect(sim.ex.result).toEqual(["ann", "bob", "timed out"]);
    expect((await replayFresh(wf, sim.history)).result).toEqual(["ann", "bob", "timed out"]);
  });
});

describe("cancellation", () => {
  const release = act("release");
  const wf = defineWorkflow(
    { name: "cancellable", input: z.object({}), output: z.string() },
    async function* () {
      try {
        yield* a({ n: 1 });
        yield* sleep("1d");
        return "done";
      } finally {
        yield* release({ n: 9 });
      }
    },
  );

  it("delivers CancelledError at the current yield*, runs clean-up steps, and ends cancelled", async () => {
    const sim = await Sim.start(wf, {});
    await sim.complete(1, 1);
    await sim.feed({ type: "CancelRequested", reason: "user asked" });
    expect(sim.commands()).toEqual(["TimerCancelled:2", "ActivityScheduled:3:release"]);
    await sim.complete(3, 9);
    expect(sim.commands()).toEqual(["WorkflowCancelled"]);
    expect(sim.status).toBe("cancelled");
    expect(CancelledError.is(sim.ex.error)).toBe(true);
    expect((sim.ex.error as CancelledError).reason).toBe("user asked");
  });

  it("withdraws a running activity (its task is aborted) when cancellation arrives", async () => {
    const sim = await Sim.start(wf, {});
    await sim.feed({ type: "CancelRequested", reason: "stop" });
    expect(sim.commands()).toEqual(["ActivityCancelled:1", "ActivityScheduled:2:release"]);
  });

  it("a workflow that catches the cancellation and returns completes normally", async () => {
    const graceful = defineWorkflow(
      { name: "graceful", input: z.object({}), output: z.string() },
      async function* () {
        try {
          yield* sleep("1d");
          return "slept";
        } catch (err) {
          if (CancelledError.is(err)) return "stopped politely";
          throw err;
        }
      },
    );
    const sim = await Sim.start(graceful, {});
    await sim.feed({ type: "CancelRequested", reason: "x" });
    expect(sim.status).toBe("completed");
    expect(sim.ex.result).toBe("stopped politely");
  });
});

describe("saga()", () => {
  const reserve = act("reserve");
  const releaseStock = act("releaseStock");
  const chargeA = act("chargeA");
  const refund = act("refund");
  const shipA = act("shipA");
  const wf = defineWorkflow({ name: "saga", input: z.object({}), output: z.number() }, async function* () {
    return yield* saga(async function* (s) {
      const r = yield* reserve({ n: 1 });
      s.compensate(() => releaseStock({ n: r }));
      const ch = yield* chargeA({ n: 2 });
      s.compensate(() => refund({ n: ch }));
      return yield* shipA({ n: 3 });
    });
  });

  it("runs compensations in reverse order on failure, then fails with the original error", async () => {
    const sim = await Sim.start(wf, {});
    await sim.complete(1, 11);
    await sim.complete(2, 22);
    await sim.feed({
      type: "ActivityFailed",
      step: 3,
      attempt: 1,
      reason: "non-retryable",
      error: serializeError(new Error("no courier")),
    });
    expect(sim.commands()).toEqual(["ActivityScheduled:4:refund"]);
    await sim.complete(4, 0);
    expect(sim.commands()).toEqual(["ActivityScheduled:5:releaseStock"]);
    const rel = sim.last.find((e) => e.type === "ActivityScheduled") as { input: unknown };
    expect(rel.input).toEqual({ n: 11 });
    await sim.complete(5, 0);
    expect(sim.status).toBe("failed");
    expect(String((sim.ex.error as Error).message)).toContain("no courier");
  });

  it("compensates on cancellation too", async () => {
    const sim = await Sim.start(wf, {});
    await sim.complete(1, 11);
    await sim.feed({ type: "CancelRequested", reason: "customer cancelled" });
    expect(sim.commands()).toEqual(["ActivityCancelled:2", "ActivityScheduled:3:releaseStock"]);
    await sim.complete(3, 0);
    expect(sim.status).toBe("cancelled");
  });
});

describe("child workflows", () => {
  const receipt = defineWorkflow(
    { name: "receipt", input: z.object({ id: z.string() }), output: z.string() },
    async function* (i) {
      return `r-${i.id}`;
    },
  );
  const parent = defineWorkflow(
    { name: "parent", input: z.object({}), output: z.string() },
    async function* () {
      try {
        return yield* child(receipt, { id: "x" });
      } catch (err) {
        if (ChildWorkflowFailure.is(err)) return `child failed: ${(err.cause as Error).message}`;
        throw err;
      }
    },
  );

  it("starts the child with a deterministic id and returns its typed result", async () => {
    const sim = await Sim.start(parent, {});
    const started = sim.last[0] as Extract<HistoryEvent, { type: "ChildStarted" }>;
    expect(started).toMatchObject({
      type: "ChildStarted",
      step: 1,
      name: "receipt",
      workflowId: "wf-1/receipt#1",
    });
    await sim.feed({ type: "ChildCompleted", step: 1, result: "r-x" });
    expect(sim.ex.result).toBe("r-x");
  });

  it("a child's failure reaches the parent as ChildWorkflowFailure with the cause", async () => {
    const sim = await Sim.start(parent, {});
    await sim.feed({ type: "ChildFailed", step: 1, error: serializeError(new Error("printer on fire")) });
    expect(sim.ex.result).toBe("child failed: printer on fire");
  });

  it("the failure names the child workflow live and on replay alike", async () => {
    const named = defineWorkflow(
      { name: "named-parent", input: z.object({}), output: z.string() },
      async function* () {
        try {
          yield* child(receipt, { id: "x" });
          return "no";
        } catch (err) {
          return ChildWorkflowFailure.is(err) ? err.workflowName : "other";
        }
      },
    );
    const sim = await Sim.start(named, {});
    await sim.feed({ type: "ChildFailed", step: 1, error: serializeError(new Error("x")) });
    expect(sim.ex.result).toBe("receipt");
    expect((await replayFresh(named, sim.history)).result).toBe("receipt");
  });

  it("an id collision reaches the parent as a typed error naming the id", async () => {
    const sim = await Sim.start(parent, {});
    await sim.feed({ type: "ChildStartFailed", step: 1 });
    expect(sim.ex.result).toMatch(/child failed: child workflow id "wf-1\/receipt#1" is already used/);
  });

  it("cancelling the parent cancels its children", async () => {
    const sim = await Sim.start(parent, {});
    await sim.feed({ type: "CancelRequested", reason: "stop" });
    expect(sim.commands()).toEqual(["ChildCancelled:1", "WorkflowCancelled"]);
  });
});

describe("continueAsNew()", () => {
  it("closes the run as continued with the next input, cancelling what is outstanding", async () => {
    const wf = defineWorkflow(
      { name: "loop", input: z.object({ i: z.number() }), output: z.string() },
      async function* (input) {
        yield* all([sleep(10), race([sleep(20), approve.wait()])].slice(0, 1));
        yield* continueAsNew({ i: input.i + 1 });
        return "unreachable";
      },
    );
    const sim = await Sim.start(wf, { i: 1 });
    await sim.feed({ type: "TimerFired", step: 1 });
    expect(sim.commands()).toEqual(["WorkflowContinued"]);
    expect(sim.status).toBe("continued");
    expect(sim.ex.continueInput).toEqual({ i: 2 });
  });

  it("hands signals it received but did not consume to the next run, in arrival order", async () => {
    const wf = defineWorkflow({ name: "carry", input: z.object({}), output: z.string() }, async function* () {
      yield* approve.wait();
      yield* sleep(5);
      yield* continueAsNew({});
      return "x";
    });
    const sim = await Sim.start(wf, {});
    await sim.feed(
      { type: "SignalReceived", name: "approve", payload: { by: "a" } },
      { type: "SignalReceived", name: "other", payload: 1 },
      { type: "SignalReceived", name: "approve", payload: { by: "b" } },
    );
    await sim.feed({ type: "TimerFired", step: 1 });
    const cont = sim.last.find((e) => e.type === "WorkflowContinued") as Extract<
      HistoryEvent,
      { type: "WorkflowContinued" }
    >;
    expect(cont.carriedSignals).toEqual([
      { name: "other", payload: 1 },
      { name: "approve", payload: { by: "b" } },
    ]);
  });

  it("an input that fails the schema is thrown into the workflow", async () => {
    const wf = defineWorkflow(
      { name: "loop2", input: z.object({ i: z.number() }), output: z.string() },
      async function* () {
        yield* continueAsNew({ i: "x" });
        return "x";
      },
    );
    const sim = await Sim.start(wf, { i: 1 });
    expect(sim.status).toBe("failed");
  });
});

describe("patched() and deprecatePatch()", () => {
  const v1 = defineWorkflow({ name: "ver", input: z.object({}), output: z.string() }, async function* () {
    yield* a({ n: 1 });
    yield* sleep(10);
    return "v1";
  });
  const v2 = defineWorkflow({ name: "ver", input: z.object({}), output: z.string() }, async function* () {
    if (yield* patched("add-b")) yield* b({ n: 1 });
    yield* a({ n: 1 });
    yield* sleep(10);
    return "v2";
  });
  const v3 = defineWorkflow({ name: "ver", input: z.object({}), output: z.string() }, async function* () {
    yield* deprecatePatch("add-b");
    yield* b({ n: 1 });
    yield* a({ n: 1 });
    yield* sleep(10);
    return "v3";
  });

  it("an old history (no marker) keeps the old path under the patched code", async () => {
    const old = await Sim.start(v1, {});
    await old.complete(1, 1);
    const r = await replayFresh(v2, old.history);
    expect(r.newEvents).toEqual([]);
    const done = await replayFresh(v2, [...old.history]);
    expect(done.status).toBe("running");
  });

  it("a new run records the marker and takes the new path; replay of it agrees", async () => {
    const sim = await Sim.start(v2, {});
    expect(sim.commands()).toEqual(["PatchMarker:add-b", "ActivityScheduled:1:b"]);
    await sim.complete(1, 1);
    await sim.complete(2, 1);
    await sim.feed({ type: "TimerFired", step: 3 });
    expect(sim.ex.result).toBe("v2");
    expect((await replayFresh(v2, sim.history)).result).toBe("v2");
    // The clean-up stage replays histories that carry the marker...
    expect((await replayFresh(v3, sim.history)).result).toBe("v3");
  });

  it("the unpatched change without patched() is non-deterministic for old runs", async () => {
    const old = await Sim.start(v1, {});
    await old.complete(1, 1);
    await expect(replayFresh(v3, old.history)).rejects.toThrow(NonDeterminismError);
  });

  it("one patch id used at two places is a clear error", async () => {
    const twice = defineWorkflow(
      { name: "twice", input: z.object({}), output: z.string() },
      async function* () {
        if (yield* patched("p")) yield* sleep(1);
        if (yield* patched("p")) yield* sleep(2);
        return "x";
      },
    );
    const sim = await Sim.start(twice, {});
    const err = await sim.feed({ type: "TimerFired", step: 1 }).catch((e) => e);
    expect(ConfigurationError.is(err)).toBe(true);
    expect(err.message).toContain('patch id "p" is used at two places');
  });
});

describe("queries", () => {
  const progress = defineQuery("progress", z.object({ stage: z.string() }));
  const wf = defineWorkflow(
    { name: "q", input: z.object({}), output: z.string() },
    async function* (_i, ctx) {
      let stage = "charging";
      ctx.onQuery(progress, () => ({ stage }));
      yield* a({ n: 1 });
      stage = "shipping";
      yield* sleep(10);
      return stage;
    },
  );

  it("answers from the current state, cached or replayed, without writing history", async () => {
    const sim = await Sim.start(wf, {});
    expect(sim.ex.query(progress)).toEqual({ stage: "charging" });
    await sim.complete(1, 1);
    const before = sim.history.length;
    expect(sim.ex.query(progress)).toEqual({ stage: "shipping" });
    expect(sim.history.length).toBe(before);
    const fresh = await replayFresh(wf, sim.history);
    expect(fresh.executor.query(progress)).toEqual({ stage: "shipping" });
  });

  it("an unknown query is a clear error", async () => {
    const sim = await Sim.start(wf, {});
    expect(() => sim.ex.query(defineQuery("nope"))).toThrow(/no handler for query "nope"/);
  });
});

describe("completion", () => {
  it("a run that completes cancels whatever it left outstanding; later events are recorded but change nothing", async () => {
    const wf = defineWorkflow(
      { name: "leftover", input: z.object({}), output: z.string() },
      async function* () {
        yield* race([
          sleep(5),
          (async function* () {
            try {
              yield* sleep(50);
            } finally {
              // A loser's finally may not start new work that outlives the run.
            }
          })(),
        ]);
        return "done";
      },
    );
    const sim = await Sim.start(wf, {});
    await sim.feed({ type: "TimerFired", step: 1 });
    expect(sim.commands()).toEqual(["TimerCancelled:2", "WorkflowCompleted"]);
    // An event arriving after the end is recorded (nothing acknowledged is lost) but changes nothing.
    await sim.feed({ type: "SignalReceived", name: "late", payload: 1 });
    expect(sim.last.map(short)).toEqual(["SignalReceived:late"]);
    expect(sim.status).toBe("completed");
    const again = await replayFresh(sim.def, sim.history);
    expect(again.newEvents).toEqual([]);
    expect(again.result).toBe("done");
  });
});
