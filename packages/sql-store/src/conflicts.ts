/**
 * The ConflictErrors of a SQL backend's guarded writes, with their texts written once: an
 * activation whose guard failed, whose completed activity or consumed inbox row was gone, or that
 * would end its run over unseen inbound events; a stale workflow-task fence; a stale activity
 * attempt. Each says what was rejected, why, and that nothing was written. The backend reads the
 * state a text needs (inside the failed transaction, so it is exact) and passes it as plain data.
 */
import { type ActivationCommit, type ActivityAttemptRef, ConflictError, isOpenStatus } from "@spool/core";

/** The run's state as read after an activation's guard failed; undefined when there is no such run. */
export interface GuardedRunState {
  status: string;
  last_seq: number;
}

/**
 * The ConflictError of an activation whose guard (open run, expected last seq, task fence) failed,
 * explaining which guard it was.
 *
 * @param run the run's status and last seq, read in the same transaction (undefined: no such run).
 * @param currentFence the run's workflow-task fence as read now (undefined: no task); only used
 *   when the run is open and at the expected seq, so a backend may skip reading it otherwise.
 */
export function activationConflict(
  req: Pick<ActivationCommit, "runId" | "expectedLastSeq" | "fence">,
  run: GuardedRunState | undefined,
  currentFence: number | undefined,
): ConflictError {
  let why: string;
  if (run === undefined) why = "there is no such run";
  else if (!isOpenStatus(run.status)) why = `the run is already ${run.status}`;
  else if (run.last_seq !== req.expectedLastSeq) {
    why =
      `expected last seq ${req.expectedLastSeq} but the run is at ${run.last_seq} ` +
      "(another activation committed first)";
  } else {
    why =
      `workflow task fence ${req.fence} is stale (current fence ${currentFence ?? "none"}: ` +
      "the lease expired and another worker claimed the task)";
  }
  return discarded(req.runId, why);
}

/**
 * True when {@link activationConflict} needs the current fence for this run state: a backend
 * reads the fence only then.
 */
export function conflictNeedsFence(
  req: Pick<ActivationCommit, "expectedLastSeq">,
  run: GuardedRunState | undefined,
): boolean {
  return run !== undefined && isOpenStatus(run.status) && run.last_seq === req.expectedLastSeq;
}

/** An eager completion whose activity attempt is no longer current. */
export function completedActivityConflict(
  runId: string,
  done: { taskId: string; fence: number },
): ConflictError {
  return discarded(
    runId,
    `activity task ${done.taskId} with fence ${done.fence} is no longer current (retried elsewhere, cancelled or ` +
      "already completed)",
  );
}

/** Consumed inbox rows that were not (all) in the run's inbox. */
export function consumedInboxConflict(runId: string, ids: readonly number[]): ConflictError {
  const what =
    ids.length === 1
      ? `inbox event ${ids[0]} is not in this run's inbox`
      : `inbox events [${ids.join(", ")}] are not all in this run's inbox`;
  return discarded(runId, `${what} (already consumed?)`);
}

/**
 * An activation that would end its run while inbound events it has not seen wait in the inbox (they
 * arrived during the activation). An acknowledged signal is never lost: the worker re-runs the
 * activation with them.
 */
export function inboxWaitingConflict(runId: string): ConflictError {
  return new ConflictError(
    `activation of run ${runId} discarded: it would end the run while new inbound events wait in its inbox. ` +
      "Nothing was written; re-read the run and replay with them.",
  );
}

/**
 * A fenced workflow-task operation (blockRun, releaseWorkflowTask) from a holder that lost the task.
 * @param currentFence the task's fence as read now; undefined when the run has no workflow task.
 */
export function staleTaskConflict(
  op: string,
  runId: string,
  fence: number,
  currentFence: number | undefined,
): ConflictError {
  const why =
    currentFence === undefined
      ? "the run has no workflow task (it is closed or unknown)"
      : `its current fence is ${currentFence} (the lease expired and another worker claimed the task)`;
  return new ConflictError(
    `${op} of run ${runId} with fence ${fence} rejected: ${why}. Nothing was changed.`,
  );
}

/** The ConflictError of a heartbeat, completion or retry from an attempt that no longer holds its task. */
export function staleAttempt(what: string, ref: ActivityAttemptRef): ConflictError {
  return new ConflictError(
    `activity ${what} rejected: task ${ref.taskId} has no live attempt with fence ${ref.fence} (a stale attempt ` +
      "whose lease was taken over, an attempt already completed or retried, or the activity was cancelled). " +
      "Nothing was written; stop this attempt.",
  );
}

function discarded(runId: string, why: string): ConflictError {
  return new ConflictError(
    `activation of run ${runId} discarded: ${why}. Nothing was written; re-read the run and replay.`,
  );
}
