/**
 * Timers on PostgreSQL: the sweep that turns due timers into TimerFired inbox events (led by one
 * worker at a time through a transaction-scoped advisory lock), and the next wake-up time.
 */
import { compareDueTimers, eventChecksum } from "@spool/sql-store";
import type { PgConnection } from "./connection.ts";

/** The timer methods of the Backend contract; see there. */
export class Timers {
  constructor(private readonly db: PgConnection) {}

  /**
   * Moves up to `limit` due timers into their runs' inboxes as TimerFired; returns how many.
   * Cluster-wide, one worker sweeps at a time: the transaction first takes
   * `pg_try_advisory_xact_lock`, and a worker that does not get it returns 0 at once (the leader's
   * NOTIFY will wake it for the runs it made ready). The lock is released with the transaction, so
   * leadership moves freely and a crashed leader holds nothing.
   */
  async fireDueTimers(limit: number): Promise<number> {
    if (!(limit > 0)) return 0;
    const s = this.db.stmts;
    // Every pump of every worker calls this: with nothing due, one cheap read and no transaction.
    if ((await this.db.one(s.anyTimerDue.with({ offset: this.db.offset() }))).rowCount === 0) return 0;
    return this.db.tx(
      async (tx) => {
        if (!tx.leader) return 0;
        const taken = await tx.q<{ run_id: string; step: number; due_at: number }>(
          s.takeDueTimers.with({
            now: tx.now,
            limit: Math.floor(limit),
          }),
        );
        if (taken.rows.length === 0) return 0;
        // RETURNING gives rows in no particular order; sort so inbox order is due-time order.
        const fired = taken.rows.sort(compareDueTimers);
        await tx.q(
          s.deliverFiredTimers.with({
            now: tx.now,
            runIds: fired.map((t) => t.run_id),
            steps: fired.map((t) => t.step),
            crcs: fired.map((t) => eventChecksum(0, tx.now, "TimerFired", t.step, null)),
          }),
        );
        tx.out.workflowTask = true;
        return fired.length;
      },
      { leader: true },
    );
  }

  /** The earliest timer due time, task ready time or lease expiry; null when nothing is pending. */
  async nextWakeAt(): Promise<number | null> {
    const { rows } = await this.db.one<{ t: number | null }>(this.db.stmts.nextWakeAt.with({}));
    return rows[0]?.t ?? null;
  }
}
