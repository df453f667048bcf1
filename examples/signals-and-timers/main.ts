/**
 * `pnpm example signals-and-timers`: two expense approvals with 200 ms reminder intervals — one
 * approved after two reminders, one that expires.
 */
import { withSpool } from "../shared.ts";
import { decide, expenseApproval, payOut, sendReminder, status } from "./workflow.ts";

export async function main(opts: { path: string; quiet?: boolean }) {
  return withSpool(
    opts.path,
    { workflows: [expenseApproval], activities: [sendReminder, payOut] },
    async (client) => {
      const suffix = Date.now().toString(36);
      const approved = await client.start(
        expenseApproval,
        { expenseId: `exp-a-${suffix}`, amount: 120, remindEvery: "200ms", maxReminders: 5 },
        { id: `exp-a-${suffix}` },
      );
      const expired = await client.start(
        expenseApproval,
        { expenseId: `exp-b-${suffix}`, amount: 80, remindEvery: "100ms", maxReminders: 2 },
        { id: `exp-b-${suffix}` },
      );
      while ((await approved.query(status)).reminders < 2) await new Promise((r) => setTimeout(r, 20));
      console.log(`status of ${approved.workflowId}:`, await approved.query(status));
      await approved.signal(decide, { approved: true, by: "maria" });
      const results = { approved: await approved.result(), expired: await expired.result() };
      console.log("results:", results);
      return results;
    },
    { quiet: opts.quiet },
  );
}

if (import.meta.url === `file://${process.argv[1]}`)
  await main({ path: process.env.SPOOL_DB ?? "spool-signals.db" });
