/**
 * The order saga from the guide's order-processing case: reserve inventory, charge the payment,
 * create the shipment. Each step registers its compensation; when a later step fails, or the
 * order is cancelled, the compensations run in reverse order — refund the payment, release the
 * inventory, cancel the order — and the run ends failed (or cancelled).
 */
import { defineActivity, defineWorkflow, NonRetryableError, saga } from "spool";
import { z } from "zod";

/** What the compensations did, for the example's output and its test. */
export const ledger: string[] = [];
const note = (line: string) => {
  ledger.push(line);
  console.log(`  ${line}`);
};

const order = z.object({
  orderId: z.string(),
  sku: z.string(),
  quantity: z.number().int().positive(),
  amount: z.number().positive(),
  address: z.string(),
});

export const reserveInventory = defineActivity(
  {
    name: "saga.reserveInventory",
    input: order.pick({ orderId: true, sku: true, quantity: true }),
    output: z.object({ reservationId: z.string() }),
  },
  async ({ orderId, sku, quantity }) => {
    note(`reserve ${quantity} x ${sku} for ${orderId}`);
    return { reservationId: `rsv-${orderId}` };
  },
);
export const releaseInventory = defineActivity(
  { name: "saga.releaseInventory", input: z.object({ reservationId: z.string() }), output: z.object({}) },
  async ({ reservationId }) => {
    note(`release ${reservationId}`);
    return {};
  },
);
export const chargePayment = defineActivity(
  {
    name: "saga.chargePayment",
    input: order.pick({ orderId: true, amount: true }),
    output: z.object({ chargeId: z.string() }),
  },
  async ({ orderId, amount }, ctx) => {
    note(`charge ${amount} for ${orderId} (key ${ctx.idempotencyKey})`);
    return { chargeId: `ch-${orderId}` };
  },
);
export const refundPayment = defineActivity(
  { name: "saga.refundPayment", input: z.object({ chargeId: z.string() }), output: z.object({}) },
  async ({ chargeId }) => {
    note(`refund ${chargeId}`);
    return {};
  },
);
export const createShipment = defineActivity(
  {
    name: "saga.createShipment",
    input: order.pick({ orderId: true, address: true }),
    output: z.object({ trackingId: z.string() }),
    retry: { maxAttempts: 2, initialInterval: "20ms" },
  },
  async ({ orderId, address }) => {
    if (address.trim() === "") throw new NonRetryableError("no shipping address");
    note(`ship ${orderId} to ${address}`);
    return { trackingId: `trk-${orderId}` };
  },
);
export const cancelOrder = defineActivity(
  { name: "saga.cancelOrder", input: z.object({ orderId: z.string() }), output: z.object({}) },
  async ({ orderId }) => {
    note(`cancel order ${orderId}`);
    return {};
  },
);

export const orderSaga = defineWorkflow(
  { name: "saga.order", input: order, output: z.object({ trackingId: z.string(), chargeId: z.string() }) },
  async function* (input) {
    return yield* saga(async function* (s) {
      s.compensate(() => cancelOrder({ orderId: input.orderId }));
      const { reservationId } = yield* reserveInventory(input);
      s.compensate(() => releaseInventory({ reservationId }));
      const { chargeId } = yield* chargePayment(input);
      s.compensate(() => refundPayment({ chargeId }));
      const { trackingId } = yield* createShipment(input);
      return { trackingId, chargeId };
    });
  },
);
