// Guards the test history builder against drifting from what the engine records: wrong positions, times or step numbers would make engine tests replay histories no run could have.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  ActivityFailure,
  defineActivity,
  defineSignal,
  defineWorkflow,
  HistoryBuilder,
  historyOf,
  replay,
  sideEffect,
  sleep,
} from "../src/index.ts";
import { replayFresh, Sim, short } from "./support/sim.ts";

const charge = defineActivity(
  { name: "payments.charge", input: z.object({ orderId: z.string() }), output: z.string() },
  async () => "ch",
);
const approve = defineSignal("order.approve", z.object({ by: z.string() }));

const order = defineWorkflow(
  { name: "order", input: z.object({ id: z.string() }), output: z.string(), signals: [approve] },
  async function* (input) {
    const chargeId = yield* charge({ orderId: input.id });
    const coin = yield* sideEffect(() => 0.25);
    yield* sleep("10m");
    const { by } = yield* approve.wait();
    return `${chargeId}/${coin}/${by}`;
  },
);

describe("history builder", () => {
  it("builds, event for event, the history the engine records for the same run", async () => {
    const sim = await Sim.start(order, { id: "o1" });
    await sim.complete(1, "ch_1");
    await sim.feed({ type: "TimerFired", step: 3 });
    await sim.feed({ type: "SignalReceived", name: "order.approve", payload: { by: "ann" } });
    expect(sim.status).toBe("completed");

    const built = historyOf("order", { id: "o1" }, { startTs: 1_000 })
      .activityScheduled(charge, { orderId: "o1" })
      .activityCompleted(1, "ch_1")
      .sideEffect(0.25)
      .timerStarted(600_000)
      .timerFired(3)
      .signalReceived("order.approve", { by: "ann" })
      .completed("ch_1/0.25/ann")
      .build();
    expect(built).toEqual(sim.history);
  });

  it("a built prefix replays to the next command, as engine tests use it", async () => {
    const b = historyOf("order", { id: "o1" }).activityScheduled(charge, { orderId: "o1" });
    expect(b.lastStep).toBe(1);
    const r = await replay(order, undefined, b.activityCompleted(1, "ch_1").build());
    expect(r.status).toBe("running");
    expect(r.newEvents.map(short)).toEqual(["SideEffect:2", "TimerStarted:3"]);
    expect(r.newEvents.map((e) => e.seq)).toEqual([4, 5]);
  });

  it("records a failure as history stores it, and replays it into the workflow as ActivityFailure", async () => {
    const caught = defineWorkflow(
      { name: "caught", input: z.null(), output: z.string() },
      async function* () {
        try {
          return yield* charge({ orderId: "x" });
        } catch (err) {
          return ActivityFailure.is(err) ? `failed: ${(err.cause as Error).message}` : "other";
        }
      },
    );
    const history = historyOf("caught", null)
      .activityScheduled(charge, { orderId: "x" })
      .activityFailed(1, new Error("card declined"), { attempt: 3 })
      .build();
    expect(history[2]).toMatchObject({ seq: 3, ts: 1, attempt: 3, reason: "retries-exhausted" });
    const r = await replayFresh(caught, history);
    expect(r.status).toBe("completed");
    expect(r.result).toBe("failed: card declined");
  });

  it("gives inbound events the next tick and commands the time of the event before them; at() moves time", () => {
    const events = new HistoryBuilder({ startTs: 10, tickMs: 5 })
      .started("t", null)
      .timerStarted(100)
      .at(110)
      .timerFired(1)
      .completed(null)
      .build();
    expect(events.map((e) => [e.seq, e.type, e.ts])).toEqual([
      [1, "WorkflowStarted", 10],
      [2, "TimerStarted", 10],
      [3, "TimerFired", 115],
      [4, "WorkflowCompleted", 115],
    ]);
    expect(events[1]).toMatchObject({ dueAt: 110, durationMs: 100 });
  });
});
