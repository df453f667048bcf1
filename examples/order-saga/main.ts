/**
 * `pnpm example order-saga`: one order that ships, and one whose shipment fails, so its payment
 * is refunded, its stock released and the order cancelled — in that order.
 */
import { withSpool } from "../shared.ts";
import {
  cancelOrder,
  chargePayment,
  createShipment,
  orderSaga,
  refundPayment,
  releaseInventory,
  reserveInventory,
} from "./workflow.ts";

export async function main(opts: { path: string; quiet?: boolean }) {
  return withSpool(
    opts.path,
    {
      workflows: [orderSaga],
      activities: [
        reserveInventory,
        releaseInventory,
        chargePayment,
        refundPayment,
        createShipment,
        cancelOrder,
      ],
    },
    async (client) => {
      const suffix = Date.now().toString(36);
      const base = { sku: "book-42", quantity: 1, amount: 25 };
      console.log("order that ships:");
      const ok = await client.start(orderSaga, { ...base, orderId: `ok-${suffix}`, address: "1 Main St" });
      const shipped = await ok.result();
      console.log("  →", shipped);
      console.log("order whose shipment fails:");
      const bad = await client.start(orderSaga, { ...base, orderId: `bad-${suffix}`, address: " " });
      const failure = await bad.result().catch((e: Error) => e);
      console.log(`  → ${(failure as Error).message}`);
      return { shipped, failed: (await bad.describe()).status };
    },
    { quiet: opts.quiet },
  );
}

if (import.meta.url === `file://${process.argv[1]}`)
  await main({ path: process.env.SPOOL_DB ?? "spool-saga.db" });
