/**
 * `pnpm example state-machine`: drives an order through its lifecycle with signals, including
 * one event that is not allowed (ignored), and one run that continues as new along the way.
 */
import { withSpool } from "../shared.ts";
import { currentState, notify, orderEvent, orderLifecycle } from "./workflow.ts";

export async function main(opts: { path: string; quiet?: boolean }) {
  return withSpool(
    opts.path,
    { workflows: [orderLifecycle], activities: [notify] },
    async (client) => {
      const orderId = `fsm-${Date.now().toString(36)}`;
      const h = await client.start(orderLifecycle, { orderId, maxTransitionsPerRun: 2 }, { id: orderId });
      await h.signal(orderEvent, { event: "ship", by: "warehouse" }); // not allowed yet: ignored
      await h.signal(orderEvent, { event: "pay", by: "customer" });
      await h.signal(orderEvent, { event: "ship", by: "warehouse" });
      await h.signal(orderEvent, { event: "deliver", by: "courier" });
      const result = await h.result();
      console.log("final:", result, "state by query:", await h.query(currentState));
      return result;
    },
    { quiet: opts.quiet },
  );
}

if (import.meta.url === `file://${process.argv[1]}`)
  await main({ path: process.env.SPOOL_DB ?? "spool-fsm.db" });
