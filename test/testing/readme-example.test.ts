// Bug class: the @spool/testing README guide ("add one test per workflow") drifting from the API until it no longer compiles or passes.
import { defineActivity, defineSignal, defineWorkflow, sleep } from "@spool/core";
import { checkDeterminism, createTestEnv } from "@spool/testing";
import { expect, it } from "vitest";
import { z } from "zod";

// What the README imports from "../src/order.ts".
const charge = defineActivity(
  {
    name: "payments.charge",
    input: z.object({ orderId: z.string(), amount: z.number() }),
    output: z.object({ chargeId: z.string() }),
    retry: { maxAttempts: 3 },
  },
  async ({ orderId }) => ({ chargeId: `ch-${orderId}` }),
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
const order = defineWorkflow(
  {
    name: "order.process",
    input: z.object({ orderId: z.string(), amount: z.number() }),
    output: z.object({ approvedBy: z.string(), trackingId: z.string() }),
    signals: [approve],
  },
  async function* (input) {
    yield* charge({ orderId: input.orderId, amount: input.amount });
    const decision = yield* approve.wait({ timeout: "1d" });
    yield* sleep("30d");
    const { trackingId } = yield* ship({ orderId: input.orderId });
    return { approvedBy: decision?.by ?? "nobody", trackingId };
  },
);

it("order.process is deterministic", async () => {
  await checkDeterminism(order, { signals: [approve] }); // 100 worlds, about a second
});

it("order.process charges once and ships", async () => {
  const env = await createTestEnv({ workflows: [order], activities: [charge, ship] });
  try {
    const handle = await env.start(order, { orderId: "o-1", amount: 42 });
    await handle.signal(approve, { by: "ann" });
    expect(await handle.result()).toMatchObject({ approvedBy: "ann" }); // the 30-day sleep takes no time
    expect(env.ledgerOf(charge)).toHaveLength(1);
  } finally {
    await env.close();
  }
});

it("the environment example: mocks typed by definition, faults, ledger", async () => {
  const env = await createTestEnv({
    workflows: [order],
    activities: [charge, ship],
    mocks: [[charge, async ({ orderId }) => ({ chargeId: `test-${orderId}` })]],
    startTime: "2024-01-01T00:00:00Z",
  });
  try {
    env.mock(ship, async () => ({ trackingId: "t-1" }));
    env.failActivity(charge, { attempt: 1, error: new Error("gateway timeout") });
    const result = await env.run(order, { orderId: "o-2", amount: 1 });
    expect(result).toEqual({ approvedBy: "nobody", trackingId: "t-1" });
    expect(env.ledger.map((e) => [e.activity, e.attempt, e.outcome.status])).toEqual([
      ["payments.charge", 1, "failed"],
      ["payments.charge", 2, "completed"],
      ["shipping.ship", 1, "completed"],
    ]);
  } finally {
    await env.close();
  }
});
