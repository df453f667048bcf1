/**
 * Executes one activation commit on SQLite, inside a write-queue transaction: the guarded run
 * update (`planRunUpdate`), then the rest of the activation plan (`planActivation` in
 * @spool/sql-store decides what to write; this file only says how, in SQLite's SQL, and answers the
 * questions only the database can: does a child's workflow id have an open run, is the parent
 * open, do unseen events wait in the inbox). HOW_IT_WORKS.md describes the order of writes.
 */
import { type ActivationCommit, type ActivationResult, isOpenStatus } from "@spool/core";
import {
  type ActivationPlan,
  activationConflict,
  completedActivityConflict,
  conflictNeedsFence,
  consumedInboxConflict,
  inboxWaitingConflict,
  type PlannedClose,
  planActivation,
  planRunUpdate,
} from "@spool/sql-store";
import { createRun, deliver } from "./run-writes.ts";
import { activityTaskValues } from "./statement-values.ts";
import type { SqliteContext, SqliteOutbox } from "./write-context.ts";
import { EVENTS_PER_INSERT } from "./write-queue.ts";

/**
 * Commits `req`; throws (rolling the write back) when a guard fails.
 *
 * @param historySink where the batch collects history rows for its multi-row inserts; undefined:
 *   this activation writes its own.
 * @throws ConflictError when a guard fails (nothing written; discard the activation and re-read)
 */
export function commitActivationIn(
  ctx: SqliteContext,
  req: ActivationCommit,
  out: SqliteOutbox,
  historySink: unknown[] | undefined,
): ActivationResult {
  const s = ctx.stmts;
  const now = ctx.clock();
  const { runId, close } = req;
  const update = planRunUpdate(req, now);

  // 1. Guards and the run row, in one statement (the lean one when the run stays running).
  const fence = req.fence ?? null;
  const expectedLastSeq = req.expectedLastSeq;
  const run =
    (close === undefined
      ? s.advanceRun.get(update.lastSeq, now, update.bufferedSignals, runId, expectedLastSeq, fence, fence)
      : undefined) ??
    s.commitRun.get({
      runId,
      expectedLastSeq,
      fence,
      lastSeq: update.lastSeq,
      status: update.status,
      now,
      closedAt: update.closedAt,
      result: update.result,
      error: update.error,
      continuedTo: update.continuedTo,
      crc: update.crc,
      bufferedSignals: update.bufferedSignals,
    });
  if (run === undefined) throw guardConflict(ctx, req);
  const plan = planActivation(req, run, now, update.continuedTo, {
    activityLeaseMs: ctx.activityLeaseMs,
    timerShiftMs: out.frameShift,
  });

  // 2. Eager completion: the activity whose result is among the events must still be ours.
  if (plan.completedActivity !== null) {
    const done = s.finishActivity.get(plan.completedActivity.taskId, plan.completedActivity.fence);
    if (done === undefined || done.run_id !== runId)
      throw completedActivityConflict(runId, plan.completedActivity);
  }

  // 3. History (queued for the batch's multi-row statements, or written now in statements of up
  // to EVENTS_PER_INSERT rows) and the inbox rows it consumed.
  writeHistory(ctx, plan, historySink);
  ctx.faultHook?.("sqlite.commit.mid", { runId });
  for (const id of plan.consumedInbox) {
    if (s.consumeInbox.run(id, runId).changes !== 1) throw consumedInboxConflict(runId, [id]);
  }

  // An acknowledged signal is never lost: a run may not end while inbound events it has not seen
  // wait in its inbox (they arrived during this activation). The worker re-runs the activation
  // with them; they are then recorded, before or after the closing event. Continue-as-new is
  // exempt: those events move on to the next run below.
  if (plan.refuseIfInboxWaiting && s.selectInbox.all(runId).length > 0) throw inboxWaitingConflict(runId);

  // 4. Withdrawn work first, so a step cancelled and rescheduled in one activation ends up scheduled.
  for (const step of plan.cancelActivities) {
    for (const t of s.cancelActivity.all(runId, step))
      if (t.lease_owner !== null) out.cancelled.push(t.task_id);
  }
  for (const step of plan.cancelTimers) s.cancelTimer.run(runId, step);

  // 5. New work (none when closing: the run's outstanding work is withdrawn below).
  for (const a of plan.activities) s.insertActivity.run(...activityTaskValues(runId, plan.workflowId, a));
  for (const t of plan.timers) s.insertTimer.run(runId, t.step, t.dueAt);
  if (plan.notify.activityTask) out.activityTask = true;
  if (plan.notify.timer) out.timer = true;

  // 6. Children: a workflow id that already has an open run is reported back to this run as
  // ChildStartFailed rather than failing the commit, so the parent learns it deterministically.
  const createdRuns: ActivationResult["createdRuns"] = [];
  for (const c of plan.children) {
    if (s.getOpenRun.get(c.workflowId) !== undefined) {
      const r = c.startFailed;
      s.insertInbox.run(runId, r.ts, r.type, r.step, r.body, r.crc);
      continue;
    }
    createRun(ctx, c.rows, out);
    createdRuns.push({ step: c.step, runId: c.rows.run.runId, workflowId: c.workflowId });
  }
  for (const c of plan.cancelChildren) {
    // Only a run that is still this run's child: the id may have been reused by an unrelated run.
    const child = s.getOpenRun.get(c.workflowId);
    if (child !== undefined && child.parent_run_id === c.parentRunId) deliver(ctx, child.run_id, c.row, out);
  }

  // 7. The workflow task: gone with a closed run, else ready or idle depending on the inbox.
  if (plan.close !== null) {
    closeRun(ctx, plan, plan.close, out, createdRuns);
  } else {
    // Events still in the inbox (arrived during the activation, or a ChildStartFailed added above)
    // leave the task ready; otherwise it goes idle until something arrives.
    // Spared when the task was idle with an empty inbox and this activation added nothing to it
    // (a child start that failed would have): the settle would change nothing.
    const idle =
      "settled" in run && run.settled === 1 && plan.children.length === 0 && plan.consumedInbox.length === 0;
    if (!idle) {
      const task = s.settleWorkflowTask.get({ runId, now, fenced: plan.fenced ? 1 : 0 });
      if (task !== undefined && task.visible_at !== null) out.workflowTask = true;
    }
  }

  ctx.faultHook?.("sqlite.commit.end", { runId });
  return { lastSeq: plan.lastSeq, claimedActivities: plan.claimedActivities, createdRuns };
}

/** Writes (or queues, see historySink) the plan's history rows. */
function writeHistory(ctx: SqliteContext, plan: ActivationPlan, historySink: unknown[] | undefined): void {
  const events = plan.events;
  for (let from = 0; from < events.length; from += EVENTS_PER_INSERT) {
    const to = Math.min(from + EVENTS_PER_INSERT, events.length);
    const values: unknown[] = historySink ?? [];
    for (let i = from; i < to; i++) {
      const e = events[i]!;
      values.push(plan.runId, e.seq, e.ts, e.type, e.step, e.body, e.crc);
    }
    if (historySink === undefined) ctx.stmts.insertEvents.get(to - from).run(...values);
  }
}

/** The close of a run: its queues emptied, the continued run created, the parent told. */
function closeRun(
  ctx: SqliteContext,
  plan: ActivationPlan,
  close: PlannedClose,
  out: SqliteOutbox,
  createdRuns: ActivationResult["createdRuns"],
): void {
  const s = ctx.stmts;
  const runId = plan.runId;
  s.deleteWorkflowTask.run(runId);
  for (const t of s.deleteActivitiesOfRun.all(runId))
    if (t.lease_owner !== null) out.cancelled.push(t.task_id);
  s.deleteTimersOfRun.run(runId);
  s.forgetSignalsOfRun.run(runId);
  const next = close.continued;
  if (next !== null) {
    const nextRunId = next.rows.run.runId;
    createRun(ctx, next.rows, out);
    // An acknowledged signal is never lost: signals the old run received but did not consume
    // come first, then inbox events it never saw, all in arrival order.
    if (next.carriedSignals.length === 0) {
      s.moveInboxToRun.run(nextRunId, runId);
    } else {
      // Inbox order is id order, so unseen rows are re-inserted after the carried signals.
      const unseen = s.selectInbox
        .all(runId)
        .filter((r) => r.type === "SignalReceived" || r.type === "CancelRequested");
      for (const row of next.carriedSignals) deliver(ctx, nextRunId, row, out);
      for (const r of unseen) {
        // Copied as stored (checksum included): rows are verified when they are read.
        const row = r as {
          ts: number;
          type: string;
          step: number | null;
          body: Uint8Array | null;
          crc: number;
        };
        s.insertInbox.run(nextRunId, row.ts, row.type, row.step, row.body, row.crc);
      }
      s.deleteInboxOfRun.run(runId);
    }
    createdRuns.push({ step: null, runId: nextRunId, workflowId: plan.workflowId });
  }
  s.deleteInboxOfRun.run(runId);
  const parent = close.parentEvent;
  if (parent !== null) {
    const status = s.runStatus.get(parent.runId)?.status;
    if (status !== undefined && isOpenStatus(status)) deliver(ctx, parent.runId, parent.row, out);
  }
  out.closed.push(close.closed);
}

/** Explains which activation guard failed (read inside the same transaction, so it is exact). */
function guardConflict(ctx: SqliteContext, req: ActivationCommit) {
  const run = ctx.stmts.runStatus.get(req.runId);
  const fence = conflictNeedsFence(req, run) ? ctx.stmts.workflowTaskState.get(req.runId)?.fence : undefined;
  return activationConflict(req, run, fence);
}
