// Bug class: a test environment that hangs, spends real time on durable timers, or hides lost and duplicated activity effects across crashes.
import {
  ActivityFailure,
  defineActivity,
  defineQuery,
  defineSignal,
  defineWorkflow,
  type HistoryEvent,
  NonRetryableError,
  sleep,
  WorkflowFailedError,
} from "@spool/core";
import { createTestEnv, TestEnvError } from "@spool/testing";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";

const DAY = 86_400_000;
const START = Date.UTC(2024, 0, 1);

const sideEffects: string[] = [];
const charge = defineActivity(
  {
    name: "payments.charge",
    input: z.object({ orderId: z.string(), amount: z.number() }),
    output: z.object({ chargeId: z.string() }),
    retry: { maxAttempts: 3, initialInterval: "10s" },
    timeout: "1m",
  },
  async ({ orderId }, ctx) => {
    sideEffects.push(`charge ${orderId} key=${ctx.idempotencyKey}`);
    return { chargeId: `ch-${orderId}` };
  },
);
const ship = defineActivity(
  {
    name: "shipping.ship",
    input: z.object({ orderId: z.string() }),
    output: z.object({ trackingId: z.string() }),
  },
  async ({ orderId }) => ({ trackingId: `tr-${orderId}` }),
);
const approve = defineSignal("order.approve", z.object({ by: z.string() }));
const stage = defineQuery<string>("order.stage");

const order = defineWorkflow(
  {
    name: "order.process",
    input: z.object({ orderId: z.string(), amount: z.number() }),
    output: z.object({
      chargeId: z.string(),
      trackingId: z.string(),
      approvedBy: z.string(),
      at: z.string(),
    }),
    signals: [approve],
  },
  async function* (input, ctx) {
    let where = "charging";
    ctx.onQuery(stage, () => where);
    const { chargeId } = yield* charge({ orderId: input.orderId, amount: input.amount });
    where = "cooling off";
    yield* sleep("30d");
    where = "awaiting approval";
    const decision = yield* approve.wait({ timeout: "1d" });
    const { trackingId } = yield* ship({ orderId: input.orderId });
    where = "done";
    return { chargeId, trackingId, approvedBy: decision?.by ?? "nobody", at: ctx.now().toISOString() };
  },
);

const envs: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.close();
  sideEffects.length = 0;
});
async function env(options: Parameters<typeof createTestEnv>[0]) {
  const e = await createTestEnv(options);
  envs.push(e);
  return e;
}

const commandsOf = (h: HistoryEvent[]) =>
  h
    .filter((e) => !["ActivityCompleted", "ActivityFailed", "TimerFired", "SignalReceived"].includes(e.type))
    .map((e) => `${e.type}${"step" in e ? `:${e.step}` : ""}${"name" in e ? `:${e.name}` : ""}`);

describe("createTestEnv", () => {
  it("completes a 30-day sleep and a 1-day signal timeout at once, on virtual time", async () => {
    const e = await env({ workflows: [order], activities: [charge, ship] });
    const result = await e.run(order, { orderId: "o1", amount: 5 });
    expect(result).toEqual({
      chargeId: "ch-o1",
      trackingId: "tr-o1",
      approvedBy: "nobody",
      at: new Date(START + 31 * DAY).toISOString(),
    });
    expect(e.now()).toBe(START + 31 * DAY);
    expect(e.stats.timeSkips).toBeGreaterThanOrEqual(2);
  });

  it("moves time by hand with advance(), firing timers at their own time", async () => {
    const e = await env({ workflows: [order], activities: [charge, ship], timeSkipping: "manual" });
    const h = await e.start(order, { orderId: "o2", amount: 5 });
    await e.advance("29d");
    expect(await h.query(stage)).toBe("cooling off");
    await e.advance("1d");
    expect(await h.query(stage)).toBe("awaiting approval");
    await h.signal(approve, { by: "ann" });
    await e.settle();
    expect(await h.query(stage)).toBe("done");
    const r = await h.result();
    expect(r.approvedBy).toBe("ann");
    expect(r.at).toBe(new Date(START + 30 * DAY).toISOString());
    const fired = (await h.history()).find((x) => x.type === "TimerFired");
    expect(fired?.ts).toBe(START + 30 * DAY);
  });

  it("skips time until a condition holds, so a test can signal a run mid-way", async () => {
    const e = await env({ workflows: [order], activities: [charge, ship] });
    const h = await e.start(order, { orderId: "o8", amount: 5 });
    await e.waitUntil(async () => (await h.query(stage)) === "awaiting approval", "the approval step");
    expect(e.now()).toBe(START + 30 * DAY);
    await h.signal(approve, { by: "bob" });
    const plain = e.client.getHandle<typeof order>(h.workflowId);
    expect((await e.result(plain)).approvedBy).toBe("bob");
  });

  it("mocks activities by definition, from options and with env.mock()", async () => {
    const e = await env({
      workflows: [order],
      activities: [charge, ship],
      mocks: [[charge, async ({ orderId }, ctx) => ({ chargeId: `mock-${orderId}-${ctx.attempt}` })]],
    });
    e.mock(ship, async ({ orderId }) => ({ trackingId: `mock-tr-${orderId}` }));
    const r = await e.run(order, { orderId: "o3", amount: 5 });
    expect(r.chargeId).toBe("mock-o3-1");
    expect(r.trackingId).toBe("mock-tr-o3");
    expect(sideEffects).toEqual([]);
    expect(e.ledger.map((x) => [x.activity, x.mocked])).toEqual([
      ["payments.charge", true],
      ["shipping.ship", true],
    ]);
  });

  it("fails an activity at a chosen attempt: retried on the virtual clock, recorded in the ledger", async () => {
    const e = await env({ workflows: [order], activities: [charge, ship] });
    e.failActivity(charge, { attempt: 1, error: new Error("gateway timeout") });
    const r = await e.run(order, { orderId: "o4", amount: 5 });
    expect(r.chargeId).toBe("ch-o4");
    const attempts = e.ledgerOf(charge);
    expect(attempts.map((a) => [a.attempt, a.outcome.status])).toEqual([
      [1, "failed"],
      [2, "completed"],
    ]);
    expect(attempts[0]?.outcome).toMatchObject({ status: "failed", injected: true });
    expect(attempts[1]?.at).toBe(START + 10_000); // the 10 s back-off passed on the virtual clock
    expect(sideEffects).toEqual(["charge o4 key=order.process-1/1"]);
  });

  it("a non-retryable injected failure fails the run with ActivityFailure", async () => {
    const e = await env({ workflows: [order], activities: [charge, ship] });
    e.failActivity(charge, { attempt: "every", error: new NonRetryableError("card declined") });
    const err = await e.run(order, { orderId: "o5", amount: 5 }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(ActivityFailure.is((err as Error).cause)).toBe(true);
    expect(String((err as Error).cause)).toContain("card declined");
    expect(e.ledgerOf(charge)).toHaveLength(1);
  });

  it("recovers from a worker crash after history event K by replay, with the same result", async () => {
    const reference = await env({ workflows: [order], activities: [charge, ship] });
    const expected = await reference.run(order, { orderId: "o6", amount: 5 }, { id: "order-o6" });
    const expectedCommands = commandsOf(await reference.history("order-o6"));

    for (const k of [2, 4, 6]) {
      const e = await env({ workflows: [order], activities: [charge, ship] });
      e.crashAfterEvent(k);
      const first = e.worker.workerId;
      const result = await e.run(order, { orderId: "o6", amount: 5 }, { id: "order-o6" });
      // The same outcome; only later, since the work the crashed worker held had to wait for its lease.
      expect({ ...result, at: undefined }).toEqual({ ...expected, at: undefined });
      expect(Date.parse(result.at)).toBeGreaterThanOrEqual(Date.parse(expected.at));
      expect(e.stats.workerRestarts).toBe(1);
      expect(e.worker.workerId).not.toBe(first);
      expect(commandsOf(await e.history("order-o6"))).toEqual(expectedCommands);
    }
  });

  it("a crash after an activity's side effect runs it again with the same idempotency key; history records it once", async () => {
    const e = await env({ workflows: [order], activities: [charge, ship] });
    e.crashAfterActivity(charge, { attempt: 1 });
    const r = await e.run(order, { orderId: "o7", amount: 5 }, { id: "order-o7" });
    expect(r.chargeId).toBe("ch-o7");
    // At least once: the side effect happened twice, under one key.
    expect(sideEffects).toEqual(["charge o7 key=order-o7/1", "charge o7 key=order-o7/1"]);
    const runs = e.ledgerOf(charge);
    expect(runs.map((x) => [x.attempt, x.completionDropped, x.idempotencyKey])).toEqual([
      [1, true, "order-o7/1"],
      [2, false, "order-o7/1"],
    ]);
    // The second attempt started once the first attempt's lease ran out on the virtual clock.
    expect(runs[1]?.at).toBeGreaterThanOrEqual(START + 60_000);
    // Exactly once in history.
    const completions = (await e.history("order-o7")).filter(
      (x) => x.type === "ActivityCompleted" && x.step === 1,
    );
    expect(completions).toHaveLength(1);
  });

  it("fails with the open runs listed instead of hanging when nothing can progress", async () => {
    const waitsForever = defineWorkflow(
      { name: "order.waits", input: z.object({}), output: z.string(), signals: [approve] },
      async function* () {
        const d = yield* approve.wait();
        return d.by;
      },
    );
    const e = await env({ workflows: [waitsForever], stallTimeoutMs: 300 });
    const err = await e.run(waitsForever, {}, { id: "stuck-1" }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(TestEnvError);
    expect(String(err)).toContain("nothing progressed for 300 ms");
    expect(String(err)).toContain('"stuck-1" (order.waits');
    expect(String(err)).toContain("waits for a signal");
  });

  it("fails at once when the awaited run is blocked by a code error", async () => {
    const broken = defineWorkflow(
      { name: "order.broken", input: z.object({}), output: z.string() },
      async function* () {
        yield* ship({ orderId: "x" });
        const missing = undefined as unknown as { field: string };
        return missing.field;
      },
    );
    const e = await env({ workflows: [broken], activities: [ship], stallTimeoutMs: 3000 });
    const err = await e.run(broken, {}, { id: "broken-1" }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(TestEnvError);
    expect(String(err)).toContain('run "broken-1" (order.broken) is blocked: TypeError');
  });
});
