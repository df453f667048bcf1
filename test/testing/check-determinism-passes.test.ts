// Bug class: a determinism checker that cries wolf on correct workflows, or that passes without exercising failures, signals, timers and orderings.
import {
  ActivityFailure,
  all,
  child,
  continueAsNew,
  defineActivity,
  defineSignal,
  defineWorkflow,
  NonRetryableError,
  patched,
  race,
  sideEffect,
  sleep,
} from "@spool/core";
import { checkDeterminism, DeterminismCheckError } from "@spool/testing";
import { describe, expect, it } from "vitest";
import { z } from "zod";

const reserve = defineActivity(
  {
    name: "stock.reserve",
    input: z.object({ sku: z.string(), qty: z.number().int().positive() }),
    output: z.object({ reservationId: z.string() }),
    retry: { maxAttempts: 2, initialInterval: "1s" },
  },
  async ({ sku }) => ({ reservationId: `res-${sku}` }),
);
const release = defineActivity(
  { name: "stock.release", input: z.object({ reservationId: z.string() }), output: z.null() },
  async () => null,
);
const charge = defineActivity(
  {
    name: "payments.charge",
    input: z.object({ orderId: z.string(), amount: z.number().positive() }),
    output: z.object({ chargeId: z.string(), fee: z.number().min(0).max(5) }),
    retry: { maxAttempts: 4, initialInterval: "2s", backoffCoefficient: 2 },
    timeout: "30s",
  },
  async ({ orderId, amount }) => {
    if (amount > 10_000) throw new NonRetryableError("over limit");
    return { chargeId: `ch-${orderId}`, fee: 1 };
  },
);
const refund = defineActivity(
  { name: "payments.refund", input: z.object({ chargeId: z.string() }), output: z.boolean() },
  async () => true,
);
const notify = defineActivity(
  {
    name: "mail.notify",
    input: z.object({ to: z.string(), template: z.enum(["approved", "expired", "receipt"]) }),
    output: z.object({ messageId: z.string().nullable() }),
  },
  async () => ({ messageId: "m-1" }),
);
const approve = defineSignal("order.approve", z.object({ by: z.string().min(1) }));
const cancel = defineSignal("order.cancel", z.object({ reason: z.string() }));

const receipt = defineWorkflow(
  { name: "order.receipt", input: z.object({ chargeId: z.string() }), output: z.string() },
  async function* (input) {
    yield* notify({ to: "billing", template: "receipt" });
    return `receipt-${input.chargeId}`;
  },
);

const order = defineWorkflow(
  {
    name: "order.process",
    input: z.object({
      id: z.string(),
      total: z.number().int().min(1).max(20_000),
      items: z.array(z.string()).min(1).max(3),
    }),
    output: z.object({
      status: z.enum(["approved", "expired", "cancelled", "payment-failed"]),
      detail: z.string().optional(),
    }),
    signals: [approve, cancel],
  },
  async function* (input, ctx) {
    // Sanctioned non-determinism: recorded once, replayed from history.
    const startedAtWall = yield* sideEffect(() => Date.now());
    const traceId = ctx.uuid();
    ctx.log.info("order started", { traceId, startedAtWall, at: ctx.now().toISOString() });

    const reservations = yield* all(input.items.map((sku) => reserve({ sku, qty: 1 })));
    let chargeId: string;
    try {
      ({ chargeId } = yield* charge({ orderId: input.id, amount: input.total }));
    } catch (err) {
      if (!ActivityFailure.is(err)) throw err;
      for (const r of reservations) yield* release({ reservationId: r.reservationId });
      return { status: "payment-failed" as const, detail: err.reason };
    }

    const decision = yield* race([
      (async function* () {
        const a = yield* approve.wait({ timeout: "1d" });
        return a ? { kind: "approved" as const, by: a.by } : { kind: "expired" as const };
      })(),
      (async function* () {
        const c = yield* cancel.wait();
        return { kind: "cancelled" as const, reason: c.reason };
      })(),
    ]);
    if (decision.kind !== "approved") {
      yield* refund({ chargeId });
      return { status: decision.kind, detail: decision.kind === "cancelled" ? decision.reason : undefined };
    }
    if (yield* patched("notify-on-approve")) yield* notify({ to: decision.by, template: "approved" });
    const [, receiptId] = yield* all([
      sleep("10m"),
      (async function* () {
        yield* sleep("5m");
        return yield* child(receipt, { chargeId });
      })(),
    ]);
    return { status: "approved" as const, detail: `${receiptId}:${ctx.random() < 2 ? "ok" : "?"}` };
  },
);

function twentySteps() {
  const step = defineActivity(
    {
      name: "bench.step",
      input: z.object({ i: z.number().int() }),
      output: z.object({ n: z.number().int().min(0).max(9) }),
      retry: { maxAttempts: 3, initialInterval: "1s" },
    },
    async ({ i }) => ({ n: i % 10 }),
  );
  return defineWorkflow(
    { name: "bench.twenty", input: z.object({}), output: z.number() },
    async function* () {
      let sum = 0;
      for (let i = 0; i < 20; i++) {
        try {
          sum += (yield* step({ i })).n;
        } catch {
          sum -= 1;
        }
      }
      return sum;
    },
  );
}

describe("checkDeterminism passes correct workflows", () => {
  it("all, race, signals with timeout, retries, child, sideEffect, patched, ctx.now/random/uuid", async () => {
    const report = await checkDeterminism(order, { numRuns: 100, cancellation: true });
    expect(report.ok).toBe(true);
    expect(report.numRuns).toBe(100);
    const x = report.exercised;
    expect(x.retries).toBeGreaterThan(0);
    expect(x.activityFailures).toBeGreaterThan(0);
    expect(x.signals).toBeGreaterThan(0);
    expect(x.timers).toBeGreaterThan(0);
    expect(x.children).toBeGreaterThan(0);
    expect(x.batches).toBeGreaterThan(0);
    expect(x.reordered).toBeGreaterThan(0);
    expect(x.cancellations).toBeGreaterThan(0);
    expect(Object.keys(report.outcomes)).toEqual(expect.arrayContaining(["completed"]));
    expect(report.replays).toBeGreaterThan(100);
  });

  it("a 20-step workflow: 100 worlds, every prefix of every history replayed", async () => {
    const report = await checkDeterminism(twentySteps(), { numRuns: 100 });
    // 20 activities → at least 42 events per history, each prefix replayed once.
    expect(report.replays).toBeGreaterThanOrEqual(100 * 42);
    console.info(`checkDeterminism: 100 worlds of a 20-step workflow in ${report.durationMs} ms`);
  });

  it("the same seed generates the same worlds", async () => {
    const a = await checkDeterminism(order, { numRuns: 20, seed: 42 });
    const b = await checkDeterminism(order, { numRuns: 20, seed: 42 });
    expect(b.exercised).toEqual(a.exercised);
    expect(b.outcomes).toEqual(a.outcomes);
  });

  it("the printed seed and path replay the failing world", async () => {
    const flaky = defineWorkflow(
      { name: "pass.reproduce", input: z.object({ n: z.number().int() }), output: z.number() },
      async function* (i) {
        if (Math.random() < 0.5) yield* sleep("1m");
        return i.n;
      },
    );
    const first = (await checkDeterminism(flaky, { numRuns: 20 }).catch(
      (e: unknown) => e,
    )) as DeterminismCheckError;
    expect(first).toBeInstanceOf(DeterminismCheckError);
    const { seed, path } = first.failure;
    const again = (await checkDeterminism(flaky, { seed, path }).catch(
      (e: unknown) => e,
    )) as DeterminismCheckError;
    expect(again).toBeInstanceOf(DeterminismCheckError);
    expect(again.failure.world).toEqual(first.failure.world);
  });

  it("randomness inside sideEffect and allowed env reads are not flagged", async () => {
    const wf = defineWorkflow(
      { name: "pass.side-effects", input: z.object({}), output: z.string() },
      async function* (_i, ctx) {
        const coin = yield* sideEffect(() => Math.random() < 0.5);
        const id = yield* sideEffect(() => crypto.randomUUID());
        const region = process.env.SPOOL_TEST_REGION ?? "eu";
        if (coin) yield* sleep("1h");
        yield* notify({ to: `${id}@${region}`, template: "receipt" });
        return `${ctx.now().getTime()}`;
      },
    );
    const report = await checkDeterminism(wf, { numRuns: 30, allow: ["process.env"] });
    expect(report.ok).toBe(true);
  });

  it("continue-as-new and cancellation end runs without false alarms", async () => {
    const loop = defineWorkflow(
      { name: "pass.loop", input: z.object({ round: z.number().int().min(0).max(3) }), output: z.number() },
      async function* (i) {
        yield* sleep("1d");
        yield* notify({ to: "ops", template: "receipt" });
        if (i.round < 3) yield* continueAsNew({ round: i.round + 1 });
        return i.round;
      },
    );
    const report = await checkDeterminism(loop, { numRuns: 40, cancellation: true });
    expect(report.outcomes.continued ?? 0).toBeGreaterThan(0);
  });
});
