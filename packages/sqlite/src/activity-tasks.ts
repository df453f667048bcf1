/**
 * The SQLite backend's activity-task operations: claiming an attempt (verified, marked when its row
 * is damaged), heartbeats, completion (the result goes to the run's inbox), retry and release —
 * each fenced, so an attempt that lost its lease cannot write.
 */
import { type ActivityAttemptRef, type ClaimedActivityTask, type EventType, isOpenStatus } from "@spool/core";
import { staleAttempt, toClaimedActivity } from "@spool/sql-store";
import { deliverNow } from "./run-writes.ts";
import type { SqliteStore } from "./write-context.ts";

/** Leases the oldest claimable activity task of these names (attempt + 1); null when none. */
export async function claimActivityTask(
  store: SqliteStore,
  req: { workerId: string; activityNames: string[] },
): Promise<ClaimedActivityTask | null> {
  if (req.activityNames.length === 0) return null;
  const s = store.stmts;
  if (store.queue.read(() => s.anyActivityTaskVisible.get(store.clock())) === undefined) return null;
  return store.queue.write(() => {
    const row = s.claimActivity.get(req.activityNames.length).get(...req.activityNames, {
      owner: req.workerId,
      now: store.clock(),
      defaultLeaseMs: store.activityLeaseMs,
    });
    return row === undefined ? null : toClaimedActivity(row);
  });
}

/** Extends the attempt's lease to now + leaseMs. @throws ConflictError (stale or cancelled) */
export function heartbeatActivityTask(
  store: SqliteStore,
  ref: ActivityAttemptRef,
  leaseMs: number,
): Promise<{ leaseExpiresAt: number }> {
  return store.queue.write(() => {
    const leaseExpiresAt = store.clock() + leaseMs;
    const changed = store.stmts.heartbeatActivity.run({
      leaseExpiresAt,
      taskId: ref.taskId,
      fence: ref.fence,
    });
    if (changed.changes !== 1) throw staleAttempt("heartbeat", ref);
    return { leaseExpiresAt };
  });
}

/** Removes the task and puts its result event in the run's inbox. @throws ConflictError */
export async function completeActivityTask(
  store: SqliteStore,
  ref: ActivityAttemptRef,
  event: { type: EventType; body: Uint8Array },
): Promise<void> {
  await store.queue.write((out) => {
    const s = store.stmts;
    const task = s.finishActivity.get(ref.taskId, ref.fence);
    if (task === undefined) throw staleAttempt("completion", ref);
    const run = s.runStatus.get(task.run_id);
    if (run !== undefined && isOpenStatus(run.status)) {
      deliverNow(store, task.run_id, store.clock(), event.type, task.step, event.body, out);
    }
  });
}

/** Releases the attempt and makes the task claimable at `retryAt`. @throws ConflictError */
export async function retryActivityTask(
  store: SqliteStore,
  ref: ActivityAttemptRef,
  retryAt: number,
  lastError: Uint8Array,
): Promise<void> {
  await store.queue.write((out) => {
    const changed = store.stmts.retryActivity.run({
      retryAt: retryAt + out.frameShift,
      lastError,
      taskId: ref.taskId,
      fence: ref.fence,
    });
    if (changed.changes !== 1) throw staleAttempt("retry", ref);
    out.activityTask = true;
  });
}

/** Gives back an attempt that never started, not counted. @throws ConflictError */
export async function releaseActivityTask(store: SqliteStore, ref: ActivityAttemptRef): Promise<void> {
  await store.queue.write((out) => {
    if (store.stmts.releaseActivity.run(store.clock(), ref.taskId, ref.fence).changes !== 1) {
      throw staleAttempt("release", ref);
    }
    out.activityTask = true;
  });
}
