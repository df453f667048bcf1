/**
 * The hello example: an order workflow of three activities — reserve stock, charge the card (a
 * flaky gateway that fails twice before it succeeds, retried with back-off), send a receipt —
 * with a durable timer between the charge and the receipt.
 */
import { defineActivity, defineWorkflow, NonRetryableError, sleep } from "spool";
import { z } from "zod";

const say = (line: string) => console.log(`  ${line}`);

export const reserveStock = defineActivity(
  {
    name: "hello.reserveStock",
    input: z.object({ orderId: z.string(), items: z.number().int().positive() }),
    output: z.object({ reservationId: z.string() }),
    timeout: "10s",
  },
  async ({ orderId, items }, ctx) => {
    say(`reserve ${items} item(s) for ${orderId} (attempt ${ctx.attempt})`);
    return { reservationId: `res-${orderId}` };
  },
);

export const chargeCard = defineActivity(
  {
    name: "hello.chargeCard",
    input: z.object({ orderId: z.string(), amount: z.number().positive() }),
    output: z.object({ chargeId: z.string() }),
    retry: { maxAttempts: 5, initialInterval: "300ms", backoffCoefficient: 2 },
    timeout: "10s",
  },
  async ({ orderId, amount }, ctx) => {
    if (amount > 10_000) throw new NonRetryableError("amount over the card limit");
    if (ctx.attempt < 3) {
      say(`charge $${amount} for ${orderId}: gateway timeout (attempt ${ctx.attempt}, will retry)`);
      throw new Error("payment gateway timed out");
    }
    say(
      `charge $${amount} for ${orderId}: ok (attempt ${ctx.attempt}, idempotency key ${ctx.idempotencyKey})`,
    );
    return { chargeId: `ch-${orderId}` };
  },
);

export const sendReceipt = defineActivity(
  {
    name: "hello.sendReceipt",
    input: z.object({ orderId: z.string(), chargeId: z.string() }),
    output: z.object({ receipt: z.string() }),
  },
  async ({ orderId, chargeId }) => {
    say(`send receipt for ${orderId} (charge ${chargeId})`);
    return { receipt: `receipt-${orderId}` };
  },
);

export const helloOrder = defineWorkflow(
  {
    name: "hello.order",
    input: z.object({
      orderId: z.string(),
      items: z.number().int().positive(),
      amount: z.number().positive(),
    }),
    output: z.object({ orderId: z.string(), chargeId: z.string(), receipt: z.string() }),
    version: "1",
  },
  async function* (input, ctx) {
    ctx.log.info("order started", { orderId: input.orderId });
    const { reservationId } = yield* reserveStock({ orderId: input.orderId, items: input.items });
    const { chargeId } = yield* chargeCard({ orderId: input.orderId, amount: input.amount });
    ctx.log.info("charged; waiting 3s before the receipt (a durable timer: try Ctrl+C now)", {
      reservationId,
    });
    yield* sleep("3s");
    const { receipt } = yield* sendReceipt({ orderId: input.orderId, chargeId });
    return { orderId: input.orderId, chargeId, receipt };
  },
);
