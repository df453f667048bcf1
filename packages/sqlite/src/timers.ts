/**
 * The SQLite backend's timer sweep: due timers move into their runs' inboxes as TimerFired, in
 * due-time order, and the next wake-up time the worker sleeps until.
 */
import { compareDueTimers } from "@spool/sql-store";
import { deliverNow } from "./run-writes.ts";
import type { SqliteStore } from "./write-context.ts";

/** Moves up to `limit` due timers into their runs' inboxes as TimerFired; returns how many. */
export async function fireDueTimers(store: SqliteStore, limit: number): Promise<number> {
  if (!(limit > 0)) return 0;
  const s = store.stmts;
  if (store.queue.read(() => s.anyTimerDue.get(store.clock())) === undefined) return 0;
  return store.queue.write((out) => {
    const now = store.clock();
    // RETURNING gives rows in no particular order; sort so inbox order is due-time order.
    const fired = s.fireDueTimers.all(now, Math.floor(limit)).sort(compareDueTimers);
    for (const t of fired) deliverNow(store, t.run_id, now, "TimerFired", t.step, null, out);
    return fired.length;
  });
}

/** The earliest timer due time, task ready time or lease expiry; null when nothing is pending. */
export function nextWakeAt(store: SqliteStore): number | null {
  return store.queue.read(() => store.stmts.nextWakeAt.get()?.t ?? null);
}
