// Guards against acknowledged signals the code never sees: an activation delivers its signals before any step result can end the run, and replay delivers them the same way.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  CLOSING_EVENT_TYPES,
  defineActivity,
  defineSignal,
  defineWorkflow,
  type HistoryEvent,
  historyOf,
  isInbound,
  sleep,
} from "../src/index.ts";
import { replayFresh, Sim } from "./support/sim.ts";

const add = defineSignal("items.add", z.object({ item: z.string() }));
const fetchItems = defineActivity(
  { name: "items.fetch", input: z.null(), output: z.array(z.string()) },
  async () => [],
);

/** Waits for one activity, then drains every buffered signal (a zero timeout) before returning. */
const drainer = defineWorkflow(
  { name: "drainer", input: z.null(), output: z.array(z.string()) },
  async function* () {
    const got = [...(yield* fetchItems(null))]; // a copy: the recorded result is shared with history
    for (;;) {
      const s = yield* add.wait({ timeout: "0s" });
      if (!s) return got;
      got.push(s.item);
    }
  },
);

/** Waits for the first signal and returns it, ignoring the buffer. */
const firstOnly = defineWorkflow(
  { name: "first-only", input: z.null(), output: z.string() },
  async function* () {
    const s = yield* add.wait();
    return s.item;
  },
);

function noInboundAfterClose(history: HistoryEvent[]): void {
  const end = history.findIndex((e) => CLOSING_EVENT_TYPES.has(e.type));
  expect(end).toBeGreaterThan(0);
  expect(history.slice(end + 1).filter(isInbound)).toEqual([]);
}

describe("signals are delivered before the run may close", () => {
  it("a signal that arrives with the result that ends the run is seen by the code", async () => {
    const sim = await Sim.start(drainer, null);
    await sim.complete(1, ["a"]);
    // The drain's zero-timeout wait: the code is parked on timer step 2.
    expect(sim.commands()).toEqual(["TimerStarted:2"]);
    // The activation carries the drain timer's firing FIRST and a signal that arrived just after:
    // fed in arrival order, the timer would make the code return and the signal would be lost.
    await sim.feed(
      { type: "TimerFired", step: 2 },
      { type: "SignalReceived", name: "items.add", payload: { item: "b" } },
    );
    expect(sim.last.map((e) => e.type)).toEqual([
      "SignalReceived",
      "TimerCancelled",
      "TimerStarted",
      "TimerFired",
    ]);
    await sim.feed({ type: "TimerFired", step: 3 });
    expect(sim.status).toBe("completed");
    expect(sim.ex.result).toEqual(["a", "b"]);
    noInboundAfterClose(sim.history);
    const again = await replayFresh(drainer, sim.history);
    expect(again.status).toBe("completed");
    expect(again.result).toEqual(["a", "b"]);
    expect(again.newEvents).toEqual([]);
  });

  it("every signal of one activation is delivered in one turn, before any branch runs", async () => {
    const sim = await Sim.start(drainer, null);
    await sim.complete(1, []);
    await sim.feed(
      { type: "SignalReceived", name: "items.add", payload: { item: "x" } },
      { type: "SignalReceived", name: "items.add", payload: { item: "y" } },
      { type: "TimerFired", step: 2 },
    );
    const signals = sim.last.filter((e) => e.type === "SignalReceived");
    expect(signals.map((e) => ("together" in e ? e.together : undefined))).toEqual([undefined, true]);
    await sim.feed({ type: "TimerFired", step: 3 });
    expect(sim.ex.result).toEqual(["x", "y"]);
    const again = await replayFresh(drainer, sim.history);
    expect(again.result).toEqual(["x", "y"]);
    expect(again.newEvents).toEqual([]);
  });

  it("no inbound event is recorded after the run's end, and no signal of the closing turn is lost", async () => {
    const sim = await Sim.start(firstOnly, null);
    await sim.feed(
      { type: "SignalReceived", name: "items.add", payload: { item: "1" } },
      { type: "SignalReceived", name: "items.add", payload: { item: "2" } },
    );
    expect(sim.status).toBe("completed");
    expect(sim.ex.result).toBe("1");
    // Both signals were delivered (recorded before the end); the code chose to read only one.
    expect(sim.history.filter((e) => e.type === "SignalReceived")).toHaveLength(2);
    noInboundAfterClose(sim.history);
  });

  it("a step result for a run that has ended is consumed but not recorded", async () => {
    const racer = defineWorkflow({ name: "racer", input: z.null(), output: z.string() }, async function* () {
      const s = yield* add.wait({ timeout: "1h" });
      return s ? s.item : "timeout";
    });
    const sim = await Sim.start(racer, null);
    const consumed = await sim.ex.apply([
      { type: "SignalReceived", name: "items.add", payload: { item: "s" }, ts: 5_000 },
      { type: "TimerFired", step: 1, ts: 5_001 },
    ]);
    expect(consumed).toEqual([0, 1]);
    const events = sim.ex.takeNewEvents();
    expect(events.map((e) => e.type)).toEqual(["SignalReceived", "TimerCancelled", "WorkflowCompleted"]);
  });

  it("a history recorded in arrival order (before this rule) still replays", async () => {
    // Recorded by the old engine: the signal after the closing event, not delivered.
    const old = historyOf("first-only", null, { startTs: 1 })
      .signalReceived("items.add", { item: "1" })
      .completed("1")
      .signalReceived("items.add", { item: "2" })
      .build();
    const r = await replayFresh(firstOnly, old);
    expect(r.status).toBe("completed");
    expect(r.result).toBe("1");
  });
});

describe("signals are checked at delivery", () => {
  const approve = defineSignal("order.approve", z.object({ by: z.string() }));
  const declared = defineWorkflow(
    { name: "declared", input: z.null(), output: z.string(), signals: [approve] },
    async function* () {
      const s = yield* approve.wait();
      return s.by;
    },
  );
  const undeclared = defineWorkflow(
    { name: "undeclared", input: z.null(), output: z.string() },
    async function* () {
      const s = yield* approve.wait();
      return s.by;
    },
  );

  it("a payload the declared schema refuses is recorded as SignalRejected and never reaches the code", async () => {
    const sim = await Sim.start(declared, null);
    await sim.feed({ type: "SignalReceived", name: "order.approve", payload: { wrong: 1 } });
    expect(sim.status).toBe("running");
    const rejected = sim.last[0] as Extract<HistoryEvent, { type: "SignalRejected" }>;
    expect(rejected.type).toBe("SignalRejected");
    expect(rejected.payload).toEqual({ wrong: 1 });
    expect(rejected.reason).toContain('payload of signal "order.approve" does not match its schema: by:');
    await sim.feed({ type: "SignalReceived", name: "order.approve", payload: { by: "ann" } });
    expect(sim.ex.result).toBe("ann");
    const again = await replayFresh(declared, sim.history);
    expect(again.result).toBe("ann");
    expect(again.newEvents).toEqual([]);
  });

  it("a name the workflow does not declare is rejected, naming the declared ones", async () => {
    const sim = await Sim.start(declared, null);
    await sim.feed({ type: "SignalReceived", name: "approve", payload: { by: "ann" } });
    const rejected = sim.last[0] as Extract<HistoryEvent, { type: "SignalRejected" }>;
    expect(rejected.type).toBe("SignalRejected");
    expect(rejected.reason).toBe(
      'workflow "declared" does not declare signal "approve"; it declares: "order.approve"',
    );
  });

  it("without declarations, the schema of the wait() checks a waiting or buffered payload", async () => {
    const sim = await Sim.start(undeclared, null);
    // The code waits already: the wait's schema checks the payload at delivery.
    await sim.feed({ type: "SignalReceived", name: "order.approve", payload: { wrong: 1 } });
    expect(sim.last[0]?.type).toBe("SignalRejected");
    await sim.feed({ type: "SignalReceived", name: "order.approve", payload: { by: "bo" } });
    expect(sim.ex.result).toBe("bo");

    // Buffered before any wait: checked as it is consumed, and skipped.
    const later = defineWorkflow({ name: "later", input: z.null(), output: z.string() }, async function* () {
      yield* sleep("1m");
      const s = yield* approve.wait();
      return s.by;
    });
    const sim2 = await Sim.start(later, null);
    await sim2.feed(
      { type: "SignalReceived", name: "order.approve", payload: { wrong: 1 } },
      { type: "SignalReceived", name: "order.approve", payload: { by: "cy" } },
    );
    await sim2.feed({ type: "TimerFired", step: 1 });
    expect(sim2.ex.result).toBe("cy");
    const again = await replayFresh(later, sim2.history);
    expect(again.result).toBe("cy");
  });
});
