// Guards the replay engine's core contract: the right commands at each step, typed results, and determinism under replay.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  ActivityFailure,
  ConfigurationError,
  defineActivity,
  defineWorkflow,
  type HistoryEvent,
  historyOf,
  NonDeterminismError,
  NonRetryableError,
  replay,
  serializeError,
  sideEffect,
  sleep,
  sleepUntil,
  TimeoutError,
  ValidationError,
  WorkflowAwaitError,
} from "../src/index.ts";
import { replayFresh, Sim, short } from "./support/sim.ts";

const charge = defineActivity(
  {
    name: "payments.charge",
    input: z.object({ orderId: z.string(), amount: z.number().positive() }),
    output: z.object({ chargeId: z.string() }),
    retry: { maxAttempts: 3 },
    timeout: "30s",
  },
  async ({ orderId }) => ({ chargeId: `ch_${orderId}` }),
);
const ship = defineActivity(
  { name: "shipping.ship", input: z.object({ orderId: z.string() }), output: z.string() },
  async () => "tracking",
);

const order = defineWorkflow(
  { name: "order", input: z.object({ id: z.string(), total: z.number() }), output: z.string() },
  async function* (input) {
    const { chargeId } = yield* charge({ orderId: input.id, amount: input.total });
    yield* sleep("10m");
    const tracking = yield* ship({ orderId: input.id });
    return `${chargeId}/${tracking}`;
  },
);

describe("replay engine: commands", () => {
  it("schedules the first activity with its input and resolved options", async () => {
    const sim = await Sim.start(order, { id: "o1", total: 42 });
    expect(sim.commands()).toEqual(["ActivityScheduled:1:payments.charge"]);
    const e = sim.last[0] as Extract<HistoryEvent, { type: "ActivityScheduled" }>;
    expect(e.input).toEqual({ orderId: "o1", amount: 42 });
    expect(e.options.timeoutMs).toBe(30_000);
    expect(e.options.retry.maxAttempts).toBe(3);
    expect(e.seq).toBe(2);
    expect(sim.status).toBe("running");
  });

  it("feeds results in order and completes with the typed result", async () => {
    const sim = await Sim.start(order, { id: "o1", total: 42 });
    await sim.complete(1, { chargeId: "ch_o1" });
    expect(sim.commands()).toEqual(["TimerStarted:2"]);
    const timer = sim.last.find((e) => e.type === "TimerStarted") as Extract<
      HistoryEvent,
      { type: "TimerStarted" }
    >;
    // Workflow time is the timestamp of the event being processed, not the wall clock.
    expect(timer.dueAt).toBe(timer.ts + 600_000);
    await sim.feed({ type: "TimerFired", step: 2 });
    expect(sim.commands()).toEqual(["ActivityScheduled:3:shipping.ship"]);
    await sim.complete(3, "trk");
    expect(sim.commands()).toEqual(["WorkflowCompleted"]);
    expect(sim.status).toBe("completed");
    expect(sim.ex.result).toBe("ch_o1/trk");
    // History positions are contiguous.
    expect(sim.history.map((e) => e.seq)).toEqual(sim.history.map((_, i) => i + 1));
  });

  it("replaying the full history from scratch produces nothing new and the same result", async () => {
    const sim = await Sim.start(order, { id: "o1", total: 42 });
    await sim.complete(1, { chargeId: "c" });
    await sim.feed({ type: "TimerFired", step: 2 });
    await sim.complete(3, "t");
    const r = await replayFresh(order, sim.history);
    expect(r.newEvents).toEqual([]);
    expect(r.status).toBe("completed");
    expect(r.result).toBe("c/t");
  });

  it("validates activity input at the step and throws ValidationError into the workflow", async () => {
    const wf = defineWorkflow(
      { name: "bad-input", input: z.object({}), output: z.string() },
      async function* () {
        try {
          yield* charge({ orderId: "x", amount: -1 });
          return "no";
        } catch (err) {
          return ValidationError.is(err)
            ? `invalid: ${(err as ValidationError).issues[0]?.path.join(".")}`
            : "other";
        }
      },
    );
    const sim = await Sim.start(wf, {});
    expect(sim.commands()).toEqual(["WorkflowCompleted"]);
    expect(sim.ex.result).toBe("invalid: amount");
  });

  it("an activity failure reaches the workflow as ActivityFailure with the cause, and can be caught", async () => {
    const wf = defineWorkflow({ name: "catch", input: z.object({}), output: z.string() }, async function* () {
      try {
        yield* charge({ orderId: "x", amount: 1 });
        return "charged";
      } catch (err) {
        if (ActivityFailure.is(err) && NonRetryableError.is(err.cause))
          return `declined: ${err.cause.message}`;
        throw err;
      }
    });
    const sim = await Sim.start(wf, {});
    await sim.feed({
      type: "ActivityFailed",
      step: 1,
      attempt: 1,
      reason: "non-retryable",
      error: serializeError(new NonRetryableError("card declined")),
    });
    expect(sim.ex.result).toBe("declined: card declined");
  });

  it("an uncaught failure fails the run with the error recorded", async () => {
    const sim = await Sim.start(order, { id: "o1", total: 1 });
    await sim.feed({
      type: "ActivityFailed",
      step: 1,
      attempt: 3,
      reason: "retries-exhausted",
      error: serializeError(new Error("gateway down")),
    });
    expect(sim.commands()).toEqual(["WorkflowFailed"]);
    expect(sim.status).toBe("failed");
    expect(ActivityFailure.is(sim.ex.error)).toBe(true);
    expect((sim.ex.error as ActivityFailure).attempt).toBe(3);
  });

  it("an output that fails its schema fails the run with ValidationError", async () => {
    const wf = defineWorkflow(
      { name: "bad-out", input: z.object({}), output: z.number() },
      async function* () {
        return "not a number" as unknown as number;
      },
    );
    const sim = await Sim.start(wf, {});
    expect(sim.status).toBe("failed");
    expect(ValidationError.is(sim.ex.error)).toBe(true);
  });

  it("sleepUntil in the past returns at once; in the future records a timer at that time", async () => {
    const wf = defineWorkflow(
      { name: "until", input: z.object({}), output: z.number() },
      async function* (_i, ctx) {
        yield* sleepUntil(new Date(0));
        yield* sleepUntil(new Date(ctx.now().getTime() + 5000));
        return ctx.now().getTime();
      },
    );
    const sim = await Sim.start(wf, {}, { ts: 10_000 });
    const t = sim.last[0] as Extract<HistoryEvent, { type: "TimerStarted" }>;
    expect(t.dueAt).toBe(15_000);
    await sim.feed({ type: "TimerFired", step: 1, ts: 15_003 });
    expect(sim.ex.result).toBe(15_003);
  });

  it("an invalid duration is a ConfigurationError: the run is parked, not failed", async () => {
    const wf = defineWorkflow(
      { name: "bad-dur", input: z.object({}), output: z.string() },
      async function* () {
        yield* sleep("ten minutes");
        return "x";
      },
    );
    await expect(Sim.start(wf, {})).rejects.toThrow(ConfigurationError);
  });
});

describe("replay engine: deterministic context", () => {
  const wf = defineWorkflow(
    { name: "ctx", input: z.object({}), output: z.array(z.union([z.number(), z.string()])) },
    async function* (_i, ctx) {
      const a = ctx.random();
      const u = ctx.uuid();
      yield* sleep(1000);
      return [a, u, ctx.now().getTime(), ctx.random()];
    },
  );

  it("random(), uuid() and now() are the same on replay and differ between runs", async () => {
    const sim = await Sim.start(wf, {}, { runId: "run-A" });
    await sim.feed({ type: "TimerFired", step: 1, ts: 7777 });
    const first = sim.ex.result as unknown[];
    expect(first[1]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first[2]).toBe(7777);
    const again = await replay(wf, undefined, sim.history, { runId: "run-A" });
    expect(again.result).toEqual(first);
    const other = await Sim.start(wf, {}, { runId: "run-B" });
    await other.feed({ type: "TimerFired", step: 1, ts: 7777 });
    expect((other.ex.result as unknown[])[0]).not.toBe(first[0]);
  });

  it("ctx.log is silent while replaying and speaks for new events", async () => {
    const lines: string[] = [];
    const logged = defineWorkflow(
      { name: "logged", input: z.object({}), output: z.string() },
      async function* (_i, c) {
        c.log.info("before sleep");
        yield* sleep(10);
        c.log.info("after sleep");
        return "ok";
      },
    );
    const sim = await Sim.start(logged, {});
    const r = await replay(logged, undefined, sim.history, {
      apply: [{ type: "TimerFired", step: 1, ts: 2000 }],
      log: (e) => lines.push(e.message),
    });
    expect(r.status).toBe("completed");
    expect(lines).toEqual(["after sleep"]);
  });

  it("sideEffect runs once; replay returns the recorded value without calling it", async () => {
    let calls = 0;
    const wf2 = defineWorkflow({ name: "se", input: z.object({}), output: z.number() }, async function* () {
      const v = yield* sideEffect(() => {
        calls++;
        return 41 + calls;
      });
      yield* sleep(5);
      return v;
    });
    const sim = await Sim.start(wf2, {});
    expect(sim.commands()).toEqual(["SideEffect:1", "TimerStarted:2"]);
    await sim.feed({ type: "TimerFired", step: 2 });
    expect(sim.ex.result).toBe(42);
    const r = await replayFresh(wf2, sim.history);
    expect(r.result).toBe(42);
    expect(calls).toBe(1);
  });
});

describe("replay engine: non-determinism", () => {
  async function recorded() {
    const sim = await Sim.start(order, { id: "o1", total: 42 });
    await sim.complete(1, { chargeId: "c" });
    await sim.feed({ type: "TimerFired", step: 2 });
    return sim.history;
  }

  it("a renamed activity is reported with the step, the sequence number, recorded and produced", async () => {
    const renamed = defineWorkflow(
      { name: "order", input: z.object({ id: z.string(), total: z.number() }), output: z.string() },
      async function* (input) {
        const { chargeId } = yield* charge({ orderId: input.id, amount: input.total });
        yield* sleep("10m");
        const t = yield* charge({ orderId: input.id, amount: 1 }); // was ship
        return chargeId + t.chargeId;
      },
    );
    const err = await replayFresh(renamed, await recorded()).catch((e) => e);
    expect(NonDeterminismError.is(err)).toBe(true);
    expect(err.step).toBe(3);
    expect(err.seq).toBe(6);
    expect(err.message).toContain('history recorded activity "shipping.ship" (step 3)');
    expect(err.message).toContain('activity "payments.charge" (step 3)');
    expect(err.message).toContain("patched");
  });

  it("a removed step is reported: history has a command the code no longer produces", async () => {
    const removed = defineWorkflow(
      { name: "order", input: z.object({ id: z.string(), total: z.number() }), output: z.string() },
      async function* (input) {
        const { chargeId } = yield* charge({ orderId: input.id, amount: input.total });
        const t = yield* ship({ orderId: input.id }); // the sleep was removed
        return chargeId + t;
      },
    );
    const err = await replayFresh(removed, await recorded()).catch((e) => e);
    expect(NonDeterminismError.is(err)).toBe(true);
    expect(err.message).toMatch(/history recorded timer of 600000 ms \(step 2\)/);
  });

  it("strict mode compares activity inputs; the default does not", async () => {
    const changed = defineWorkflow(
      { name: "order", input: z.object({ id: z.string(), total: z.number() }), output: z.string() },
      async function* (input) {
        const { chargeId } = yield* charge({ orderId: input.id, amount: input.total + 1 });
        yield* sleep("10m");
        return `${chargeId}/${yield* ship({ orderId: input.id })}`;
      },
    );
    const history = await recorded();
    await expect(replayFresh(changed, history)).resolves.toMatchObject({ status: "running" });
    const err = await replayFresh(changed, history, true).catch((e) => e);
    expect(NonDeterminismError.is(err)).toBe(true);
    expect(err.message).toContain("different input (strict mode)");
  });

  it("history of another workflow is refused", async () => {
    const other = defineWorkflow(
      { name: "other", input: z.object({}), output: z.string() },
      async function* () {
        return "x";
      },
    );
    await expect(replayFresh(other, await recorded())).rejects.toThrow(/history is of workflow "order"/);
  });
});

describe("replay engine: awaits that are not steps", () => {
  it("real I/O awaited in the workflow body is reported with the fix", async () => {
    const io = defineWorkflow({ name: "io", input: z.object({}), output: z.string() }, async function* () {
      await new Promise((r) => setImmediate(r));
      return "x";
    });
    const err = await Sim.start(io, {}).catch((e) => e);
    expect(WorkflowAwaitError.is(err)).toBe(true);
    expect(err.message).toContain("Move the I/O into an activity");
  });

  it("setTimeout awaited in the workflow body is reported", async () => {
    const t = defineWorkflow({ name: "st", input: z.object({}), output: z.string() }, async function* () {
      await new Promise((r) => setTimeout(r, 1));
      return "x";
    });
    await expect(Sim.start(t, {})).rejects.toThrow(WorkflowAwaitError);
  });

  it("awaiting already-resolved values is harmless", async () => {
    const ok = defineWorkflow({ name: "ok", input: z.object({}), output: z.number() }, async function* () {
      const helper = async (n: number) => (await Promise.resolve(n)) + 1;
      const v = await helper(await helper(1));
      yield* sleep(1);
      return v;
    });
    const sim = await Sim.start(ok, {});
    await sim.feed({ type: "TimerFired", step: 1 });
    expect(sim.ex.result).toBe(3);
  });

  it("yielding a non-step is a ConfigurationError that names yield*", async () => {
    const bad = defineWorkflow(
      { name: "bad-yield", input: z.object({}), output: z.string() },
      async function* () {
        yield 42 as never;
        return "x";
      },
    );
    await expect(Sim.start(bad, {})).rejects.toThrow(/yield\*/);
  });
});

describe("replay engine: timeouts and limits", () => {
  it("the execution timeout is a recorded timer that fails the run with TimeoutError", async () => {
    const slow = defineWorkflow(
      { name: "slow", input: z.object({}), output: z.string(), executionTimeout: "1h" },
      async function* () {
        yield* sleep("1d");
        return "x";
      },
    );
    const sim = await Sim.start(slow, {}, { started: { executionTimeoutMs: 3_600_000 } as never });
    expect(sim.commands()).toEqual(["TimerStarted:1", "TimerStarted:2"]);
    await sim.feed({ type: "TimerFired", step: 1 });
    expect(sim.status).toBe("failed");
    expect(TimeoutError.is(sim.ex.error)).toBe(true);
    // The run's own timer is withdrawn with it: nothing keeps the finished run open.
    expect(sim.commands()).toEqual(["TimerCancelled:2", "WorkflowFailed"]);
  });

  it("a run that reaches the history limit fails with a message that says to continue as new", async () => {
    const loop = defineWorkflow(
      { name: "loop", input: z.object({}), output: z.string() },
      async function* () {
        for (;;) yield* sleep(1);
      },
    );
    const history = historyOf("loop", {}).build();
    let r = await replay(loop, undefined, history, { historyLimit: 12 });
    history.push(...r.newEvents);
    let step = 1;
    while (r.status === "running") {
      r = await replay(loop, undefined, history, {
        historyLimit: 12,
        apply: [{ type: "TimerFired", step: step++, ts: step }],
      });
      history.push(...r.newEvents);
    }
    expect(r.status).toBe("failed");
    expect(String((r.error as Error).message)).toContain("continueAsNew");
    expect(history.map(short).at(-1)).toBe("WorkflowFailed");
  });
});
