/**
 * Signals and timers: an expense approval that waits for a manager's decision, sends a reminder
 * each time a reminder interval passes without one, and expires after a number of reminders.
 * (The guide's "human task with escalation" pattern.)
 */
import { defineActivity, defineQuery, defineSignal, defineWorkflow } from "spool";
import { z } from "zod";

export const decide = defineSignal(
  "expense.decide",
  z.object({ approved: z.boolean(), by: z.string(), note: z.string().optional() }),
);
export const status = defineQuery("expense.status", z.object({ reminders: z.number(), state: z.string() }));

export const sendReminder = defineActivity(
  {
    name: "expense.sendReminder",
    input: z.object({ expenseId: z.string(), n: z.number() }),
    output: z.object({}),
  },
  async ({ expenseId, n }) => {
    console.log(`  reminder #${n} sent for ${expenseId}`);
    return {};
  },
);

export const payOut = defineActivity(
  {
    name: "expense.payOut",
    input: z.object({ expenseId: z.string(), amount: z.number() }),
    output: z.string(),
  },
  async ({ expenseId, amount }) => {
    console.log(`  paid ${amount} for ${expenseId}`);
    return `payout-${expenseId}`;
  },
);

export const expenseApproval = defineWorkflow(
  {
    name: "expense.approval",
    input: z.object({
      expenseId: z.string(),
      amount: z.number().positive(),
      remindEvery: z.union([z.string(), z.number()]).default("1d"),
      maxReminders: z.number().int().min(0).default(3),
    }),
    output: z.object({ outcome: z.enum(["paid", "rejected", "expired"]), by: z.string().optional() }),
    signals: [decide],
  },
  async function* ({ expenseId, amount, remindEvery, maxReminders }, ctx) {
    let reminders = 0;
    let state = "waiting";
    ctx.onQuery(status, () => ({ reminders, state }));
    for (;;) {
      const decision = yield* decide.wait({ timeout: remindEvery });
      if (decision) {
        state = decision.approved ? "approved" : "rejected";
        if (!decision.approved) return { outcome: "rejected" as const, by: decision.by };
        yield* payOut({ expenseId, amount });
        state = "paid";
        return { outcome: "paid" as const, by: decision.by };
      }
      if (reminders >= maxReminders) {
        state = "expired";
        return { outcome: "expired" as const };
      }
      reminders++;
      yield* sendReminder({ expenseId, n: reminders });
    }
  },
);
