/**
 * Activity tasks on PostgreSQL: claiming an attempt, heartbeats, completion (the result goes to
 * the run's inbox under the run's lock), retry with back-off, and giving back an attempt that
 * never started. Every method is fenced: a stale attempt gets ConflictError and changes nothing.
 */
import type { ActivityAttemptRef, ClaimedActivityTask, EventType } from "@spool/core";
import { eventChecksum, staleAttempt, toClaimedActivity } from "@spool/sql-store";
import type { PgConnection } from "./connection.ts";
import { Outbox } from "./notifier.ts";
import type { ActivityRow } from "./statements.ts";

/** The activity-task methods of the Backend contract; see there. */
export class ActivityTasks {
  constructor(
    private readonly db: PgConnection,
    /** Lease of an attempt with neither timeout. */
    private readonly activityLeaseMs: number,
  ) {}

  /** Leases the oldest claimable activity task of these names (attempt + 1); null when none. */
  async claimActivityTask(req: {
    workerId: string;
    activityNames: string[];
  }): Promise<ClaimedActivityTask | null> {
    if (req.activityNames.length === 0) return null;
    const { rows } = await this.db.one<ActivityRow>(
      this.db.stmts.claimActivity.with({
        offset: this.db.offset(),
        owner: req.workerId,
        names: req.activityNames,
        defaultLeaseMs: this.activityLeaseMs,
      }),
    );
    return rows[0] === undefined ? null : toClaimedActivity(rows[0]);
  }

  /** Extends the attempt's lease to now + leaseMs. @throws ConflictError (stale or cancelled) */
  async heartbeatActivityTask(ref: ActivityAttemptRef, leaseMs: number): Promise<{ leaseExpiresAt: number }> {
    const { rows } = await this.db.one<{ lease_expires_at: number }>(
      this.db.stmts.heartbeatActivity.with({
        offset: this.db.offset(),
        taskId: ref.taskId,
        fence: ref.fence,
        leaseMs: Math.ceil(leaseMs),
      }),
    );
    if (rows[0] === undefined) throw staleAttempt("heartbeat", ref);
    return { leaseExpiresAt: rows[0].lease_expires_at };
  }

  /** Removes the task and puts its result event in the run's inbox. @throws ConflictError */
  async completeActivityTask(
    ref: ActivityAttemptRef,
    event: { type: EventType; body: Uint8Array },
  ): Promise<void> {
    const s = this.db.stmts;
    await this.db.tx(async (tx) => {
      // run_id and step never change for a task, so reading them before locking the run is safe;
      // the fence is checked again, under the run's lock, by the delete.
      const { rows } = await tx.q<{ run_id: string; step: number }>(
        s.liveAttempt.with({
          taskId: ref.taskId,
          fence: ref.fence,
        }),
      );
      const task = rows[0];
      if (task === undefined) throw staleAttempt("completion", ref);
      const done = await tx.q<{ n: number }>(
        s.completeActivity.with({
          runId: task.run_id,
          taskId: ref.taskId,
          fence: ref.fence,
          now: tx.now,
          type: event.type,
          step: task.step,
          body: event.body,
          crc: eventChecksum(0, tx.now, event.type, task.step, event.body),
        }),
      );
      // Rolling back also undoes the wake the statement applied before it could check the fence.
      if (done.rows[0]?.n !== 1) throw staleAttempt("completion", ref);
      tx.out.workflowTask = true;
    });
  }

  /** Releases the attempt and makes the task claimable at `retryAt`. @throws ConflictError */
  async retryActivityTask(ref: ActivityAttemptRef, retryAt: number, lastError: Uint8Array): Promise<void> {
    const out = new Outbox();
    out.activityTask = true;
    const res = await this.db.one(
      this.db.stmts.retryActivity.with({
        taskId: ref.taskId,
        fence: ref.fence,
        retryAt: Math.floor(retryAt),
        lastError,
        ...this.db.notice(out),
      }),
    );
    if (res.rowCount !== 1) throw staleAttempt("retry", ref);
    this.db.emit(out);
  }

  /** Gives back an attempt that never started, not counted. @throws ConflictError */
  async releaseActivityTask(ref: ActivityAttemptRef): Promise<void> {
    const out = new Outbox();
    out.activityTask = true;
    const res = await this.db.one(
      this.db.stmts.releaseActivity.with({
        offset: this.db.offset(),
        taskId: ref.taskId,
        fence: ref.fence,
        ...this.db.notice(out),
      }),
    );
    if (res.rowCount !== 1) throw staleAttempt("release", ref);
    this.db.emit(out);
  }
}
