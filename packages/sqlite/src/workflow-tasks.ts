/**
 * The SQLite backend's workflow-task operations: claiming a run's task (with its run record and
 * inbox, verified after the claim commits), reading its history and inbox, and the fenced ways a
 * holder gives the task back (blockRun, releaseWorkflowTask), plus waking blocked runs.
 */
import {
  type BlockRequest,
  type ClaimedWorkflowTask,
  HistoryCorruptError,
  type InboxEvent,
  type RawEvent,
} from "@spool/core";
import {
  runChecksum,
  runRowCorruption,
  runRowError,
  staleTaskConflict,
  toInboxEvents,
  toRawEvents,
  toRunRecordUnchecked,
  withRunStatus,
} from "@spool/sql-store";
import type { SqliteContext, SqliteStore } from "./write-context.ts";

/** Leases the oldest claimable workflow task of these workflows; null when there is none. */
export async function claimWorkflowTask(
  store: SqliteStore,
  req: { workerId: string; workflowNames: string[]; leaseMs: number },
): Promise<ClaimedWorkflowTask | null> {
  if (req.workflowNames.length === 0) return null;
  const s = store.stmts;
  if (store.queue.read(() => s.anyWorkflowTaskVisible.get(store.clock())) === undefined) return null;
  const leaseMs = req.leaseMs > 0 ? req.leaseMs : store.workflowLeaseMs;
  const claimed = await store.queue.write(() => {
    const now = store.clock();
    const task = s.claimWorkflowTask
      .get(req.workflowNames.length)
      .get(req.workerId, now + leaseMs, now + leaseMs, now, ...req.workflowNames);
    if (task === undefined) return null;
    return { run: s.getRun.get(task.run_id)!, fence: task.fence, inbox: s.selectInbox.all(task.run_id) };
  });
  if (claimed === null) return null;
  // Verified after the claim commits: throwing inside would roll the claim back and leave the
  // corrupt run at the head of the queue, starving every run behind it. This way the bad run
  // sits out its lease and the others keep flowing.
  // A damaged run record goes the same way as a damaged inbox row: the worker parks the run.
  const run = toRunRecordUnchecked(claimed.run);
  const damaged = runRowCorruption(claimed.run);
  if (damaged !== null) {
    return { run, fence: claimed.fence, inbox: [], inboxError: runRowError(claimed.run, damaged) };
  }
  try {
    return { run, fence: claimed.fence, inbox: toInboxEvents(claimed.run.run_id, claimed.inbox) };
  } catch (err) {
    if (!HistoryCorruptError.is(err)) throw err;
    return { run, fence: claimed.fence, inbox: [], inboxError: err };
  }
}

/** History events with seq > afterSeq, checksums verified. @throws HistoryCorruptError */
export function readHistory(store: SqliteStore, runId: string, afterSeq: number): RawEvent[] {
  return store.queue.read(() => {
    const rows = store.stmts.selectHistory.all(runId, afterSeq);
    try {
      return toRawEvents(runId, afterSeq, rows);
    } catch (err) {
      throw withRunStatus(err, store.stmts.runStatus.get(runId)?.status);
    }
  });
}

/** The run's unconsumed inbox, in consumption order. @throws HistoryCorruptError */
export function readInbox(store: SqliteStore, runId: string): InboxEvent[] {
  return store.queue.read(() => toInboxEvents(runId, store.stmts.selectInbox.all(runId)));
}

/** Parks the run as blocked until `retryAt`; history untouched. @throws ConflictError (stale fence) */
export async function blockRun(store: SqliteStore, req: BlockRequest): Promise<void> {
  await store.queue.write((out) => {
    const s = store.stmts;
    if (s.releaseWorkflowTask.run(req.retryAt + out.frameShift, req.runId, req.fence).changes !== 1) {
      throw staleTask(store, "blockRun", req.runId, req.fence);
    }
    s.blockRun.run({
      error: req.error,
      reason: req.reason,
      now: store.clock(),
      crc: runChecksum(req.runId, "blocked", null, req.error),
      runId: req.runId,
    });
    out.workflowTask = true;
  });
}

/** Gives the task back, claimable at `retryAt` (default now). @throws ConflictError (stale fence) */
export async function releaseWorkflowTask(
  store: SqliteStore,
  req: { runId: string; fence: number; retryAt?: number },
): Promise<void> {
  await store.queue.write((out) => {
    const at = req.retryAt !== undefined ? req.retryAt + out.frameShift : store.clock();
    if (store.stmts.releaseWorkflowTask.run(at, req.runId, req.fence).changes !== 1) {
      throw staleTask(store, "releaseWorkflowTask", req.runId, req.fence);
    }
    out.workflowTask = true;
  });
}

/** Makes the unleased tasks of blocked runs of these workflows claimable now; returns how many. */
export async function retryBlockedRuns(store: SqliteStore, workflowNames: string[]): Promise<number> {
  if (workflowNames.length === 0) return 0;
  return store.queue.write((out) => {
    const n = store.stmts.retryBlockedRuns
      .get(workflowNames.length)
      .run(store.clock(), ...workflowNames).changes;
    if (n > 0) out.workflowTask = true;
    return n;
  });
}

function staleTask(ctx: SqliteContext, op: string, runId: string, fence: number) {
  return staleTaskConflict(op, runId, fence, ctx.stmts.workflowTaskState.get(runId)?.fence);
}
