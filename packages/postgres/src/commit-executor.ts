/**
 * The commit of one activation on PostgreSQL, inside a transaction: it executes the activation
 * plan of @spool/sql-store (what to write is decided there, once for both SQL backends) with
 * PostgreSQL's statements. The guarded run update and the first part of the plan (eager
 * completion, history, consumed inbox, new work, settlement) go in one round trip; then withdrawn
 * work, children, and either the close (queues, continue-as-new successor with its carried
 * signals, the parent's event) or the task's settlement. HOW_IT_WORKS.md gives the order of writes.
 */
import { type ActivationCommit, type ActivationResult, SpoolError } from "@spool/core";
import {
  type ActivationPlan,
  type ActivationRunRow,
  activationConflict,
  completedActivityConflict,
  conflictNeedsFence,
  consumedInboxConflict,
  type GuardedRunState,
  type HistoryRowValues,
  inboxWaitingConflict,
  type NewWork,
  type PlanOptions,
  planActivation,
  planHistoryRows,
  planNewWork,
  planRunUpdate,
} from "@spool/sql-store";
import type { Tx } from "./connection.ts";
import { createRun, deliverTo, deliverToOpen } from "./deliveries.ts";
import type { Statements } from "./statements.ts";

/** Which parts of an activation's body a statement writes (see `bodyArgs`). */
interface BodyParts {
  /** The eager completion, the history rows and the consumed inbox rows. */
  events: boolean;
  /** The new activity tasks and timers. */
  work: boolean;
  /** The workflow task's settlement. */
  settle: boolean;
}

/** What applyActivation (and commitActivation) report about the body they wrote. */
interface BodyRow {
  finished: number;
  consumed: number;
  waiting: boolean;
  visible_at: number | null;
}

/** What the guard statement returns: the run row the plan needs, and the body's report. */
type GuardRow = ActivationRunRow & BodyRow & { applied: boolean };

const NO_EVENTS: readonly HistoryRowValues[] = [];
const NO_WORK: NewWork = { activities: [], timers: [] };

/** Writes activations; one per backend. */
export class CommitExecutor {
  private readonly planOptions: PlanOptions;

  constructor(
    private readonly stmts: Statements,
    /** Lease of an attempt with neither timeout (the backend's `activityLeaseMs`). */
    activityLeaseMs: number,
  ) {
    // Event timestamps and due times are BIGINT columns here.
    this.planOptions = { activityLeaseMs, integerTimes: true };
  }

  /**
   * Commits `req` (already validated) in `tx`.
   * @throws ConflictError when a guard fails (the caller's transaction rolls back: nothing written)
   */
  async commitIn(tx: Tx, req: ActivationCommit): Promise<ActivationResult> {
    const s = this.stmts;
    const { now, out } = tx;
    const { runId } = req;
    const closing = req.close !== undefined;

    // 1. The run's lock, the guards, the run row and the body of the activation, in one
    // statement: eager completion, history, consumed inbox, new work, and (when nothing below can
    // add to the inbox) the task's settlement. The new work is planned before the guard for that
    // reason (it needs nothing from the run row). Withdrawn work goes first, so a step cancelled
    // and rescheduled in one activation ends up scheduled; then the body runs in two parts around
    // it, as in SQLite's order of writes.
    const update = planRunUpdate(req, now);
    const events = planHistoryRows(req, this.planOptions);
    const work = planNewWork(req, now, this.planOptions);
    const cancels = req.cancelActivities.length > 0 || req.cancelTimers.length > 0;
    const settleNow = !closing && req.children.length === 0 && req.cancelChildren.length === 0;
    const firstParts: BodyParts = { events: true, work: !closing && !cancels, settle: settleNow && !cancels };
    const guarded = await tx.q<GuardRow>(
      s.commitActivation.with({
        ...this.bodyArgs(tx, req, events, work, firstParts),
        expectedLastSeq: req.expectedLastSeq,
        fence: req.fence ?? null,
        lastSeq: update.lastSeq,
        status: update.status,
        closedAt: update.closedAt,
        result: update.result,
        error: update.error,
        continuedTo: update.continuedTo,
        runCrc: update.crc,
        bufferedSignals: update.bufferedSignals,
      }),
    );
    const run = guarded.rows[0];
    if (run === undefined) throw await this.commitConflict(tx, req);
    const plan = planActivation(req, run, now, update.continuedTo, { ...this.planOptions, work, events });
    if (plan.notify.activityTask) out.activityTask = true;
    if (plan.notify.timer) out.timer = true;
    // A delivery committed while the statement waited for the lock, so its snapshot missed it and
    // it wrote no body (see commitActivation): the body follows as a statement of its own.
    const first = run.applied
      ? this.checkBody(plan, true, run)
      : await this.applyBody(tx, req, plan, firstParts);
    if (cancels) {
      const { rows } = await tx.q<{ task_id: string }>(
        s.cancelWork.with({ runId, activitySteps: plan.cancelActivities, timerSteps: plan.cancelTimers }),
      );
      for (const r of rows) out.cancelled.push(r.task_id);
      if (!closing) {
        const second = await this.applyBody(tx, req, plan, {
          events: false,
          work: !closing,
          settle: settleNow,
        });
        first.visible_at = second.visible_at;
      }
    }
    if (settleNow && first.visible_at !== null) out.workflowTask = true;
    // An acknowledged signal is never lost: a run may not end while inbound events it has not seen
    // wait in its inbox (they arrived during this activation). Continue-as-new is exempt: those
    // events move on to the next run.
    if (plan.refuseIfInboxWaiting && first.waiting) throw inboxWaitingConflict(runId);

    // 3. Children: a workflow id that already has an open run is reported back to this run as
    // ChildStartFailed rather than failing the commit, so the parent learns it deterministically.
    const createdRuns: ActivationResult["createdRuns"] = [];
    for (const c of plan.children) {
      if (await createRun(tx, s, c.rows)) {
        createdRuns.push({ step: c.step, runId: c.rows.run.runId, workflowId: c.workflowId });
      } else {
        await deliverTo(tx, s, runId, c.startFailed);
      }
    }
    for (const c of plan.cancelChildren) {
      // Only a run that is still this run's child: the id may have been reused by an unrelated run.
      await deliverToOpen(tx, s, { workflowId: c.workflowId, parentRunId: c.parentRunId }, c.row, 1);
    }

    // 4. The workflow task: gone with a closed run, else ready or idle depending on the inbox.
    if (plan.close !== null) {
      const next = await this.close(tx, plan, plan.close, req.children.length > 0);
      if (next !== null) createdRuns.push({ step: null, runId: next, workflowId: plan.workflowId });
    } else if (!settleNow) {
      // Children may have added ChildStartFailed events to the inbox: settle after them.
      const { rows } = await tx.q<{ visible_at: number | null }>(
        s.settleWorkflowTask.with({ runId, now, fenced: plan.fenced }),
      );
      if (rows[0] !== undefined && rows[0].visible_at !== null) out.workflowTask = true;
    }

    return { lastSeq: plan.lastSeq, claimedActivities: plan.claimedActivities, createdRuns };
  }

  /** The close of a plan: queues emptied, the continued run, the parent's event; returns the continued run's id. */
  private async close(
    tx: Tx,
    plan: ActivationPlan,
    close: NonNullable<ActivationPlan["close"]>,
    hadChildren: boolean,
  ): Promise<string | null> {
    const s = this.stmts;
    const runId = plan.runId;
    const { rows } = await tx.q<{ task_id: string }>(s.closeRunQueues.with({ runId }));
    for (const r of rows) tx.out.cancelled.push(r.task_id);
    const continued = close.continued;
    if (continued !== null) {
      const nextRunId = continued.rows.run.runId;
      if (!(await createRun(tx, s, continued.rows))) {
        // Cannot happen: this transaction closed the id's only open run and holds its lock.
        throw new SpoolError(
          `continue-as-new of run ${runId}: workflow id ${plan.workflowId} has another open run`,
        );
      }
      // An acknowledged signal is never lost: signals the old run received but did not consume
      // come first, then inbox events it never saw, all in arrival order.
      const carried = continued.carriedSignals;
      if (carried.length === 0) {
        await tx.q(s.moveInboxToRun.with({ fromRunId: runId, toRunId: nextRunId }));
      } else {
        await tx.q(
          s.insertInboxRows.with({
            runId: nextRunId,
            now: tx.now,
            types: carried.map((r) => r.type),
            steps: carried.map((r) => r.step),
            bodies: carried.map((r) => r.body),
            crcs: carried.map((r) => r.crc),
          }),
        );
        // Inbox order is id order, so the unseen rows are re-inserted after the carried ones.
        await tx.q(s.copyInboxToRun.with({ fromRunId: runId, toRunId: nextRunId }));
      }
    } else if (hadChildren) {
      // A ChildStartFailed added above is all that can be left (the run holds its lock, and the
      // check before refused to close over anything else): it dies with the run.
      await tx.q(s.deleteInboxOfRun.with({ runId }));
    }
    if (close.parentEvent !== null) await deliverTo(tx, s, close.parentEvent.runId, close.parentEvent.row);
    tx.out.closed.push(close.closed);
    return continued === null ? null : continued.rows.run.runId;
  }

  /**
   * The body's arguments shared by commitActivation and applyActivation, as column arrays: with
   * `events`, the eager completion, the history rows and the consumed inbox rows; with `work`, the
   * new tasks (with their checksums) and timers; with `settle`, the task's settlement.
   */
  private bodyArgs(
    tx: Tx,
    req: ActivationCommit,
    events: readonly HistoryRowValues[],
    work: NewWork,
    parts: BodyParts,
  ) {
    const e = parts.events ? events : NO_EVENTS;
    const done = parts.events ? req.completedActivity : undefined;
    const a = parts.work ? work.activities : NO_WORK.activities;
    const t = parts.work ? work.timers : NO_WORK.timers;
    return {
      runId: req.runId,
      now: tx.now,
      doneTaskId: done?.taskId ?? null,
      doneFence: done?.fence ?? null,
      eventSeqs: e.map((x) => x.seq),
      eventTs: e.map((x) => x.ts),
      eventTypes: e.map((x) => x.type),
      eventSteps: e.map((x) => x.step),
      eventBodies: e.map((x) => x.body),
      eventCrcs: e.map((x) => x.crc),
      consumedIds: parts.events ? req.consumedInbox : [],
      actTaskIds: a.map((x) => x.taskId),
      actSteps: a.map((x) => x.step),
      actNames: a.map((x) => x.name),
      actInputs: a.map((x) => x.input),
      actOptions: a.map((x) => x.options),
      actAttempts: a.map((x) => x.attempt),
      actFences: a.map((x) => x.fence),
      actVisibleAt: a.map((x) => x.visibleAt),
      actOwners: a.map((x) => x.leaseOwner),
      actLeaseExpiresAt: a.map((x) => x.leaseExpiresAt),
      actTimeoutMs: a.map((x) => x.timeoutMs),
      actHeartbeatTimeoutMs: a.map((x) => x.heartbeatTimeoutMs),
      activityCrcs: a.map((x) => x.crc),
      timerSteps: t.map((x) => x.step),
      timerDueAt: t.map((x) => x.dueAt),
      settle: parts.settle,
      fenced: req.fence !== undefined,
    };
  }

  /** Runs applyActivation with the plan's rows (see bodyArgs and checkBody). */
  private async applyBody(
    tx: Tx,
    req: ActivationCommit,
    plan: ActivationPlan,
    parts: BodyParts,
  ): Promise<{ waiting: boolean; visible_at: number | null }> {
    const work = { activities: plan.activities, timers: plan.timers };
    const { rows } = await tx.q<BodyRow>(
      this.stmts.applyActivation.with({
        ...this.bodyArgs(tx, req, plan.events, work, parts),
        workflowId: plan.workflowId,
      }),
    );
    return this.checkBody(plan, parts.events, rows[0]!);
  }

  /**
   * Rolls the transaction back (by throwing ConflictError) when the completed activity or a
   * consumed inbox row of an activation's body was gone.
   */
  private checkBody(
    plan: ActivationPlan,
    events: boolean,
    r: BodyRow,
  ): { waiting: boolean; visible_at: number | null } {
    const consumed = events ? plan.consumedInbox : [];
    const done = events ? plan.completedActivity : null;
    if (done !== null && r.finished !== 1) throw completedActivityConflict(plan.runId, done);
    if (r.consumed !== consumed.length) throw consumedInboxConflict(plan.runId, consumed);
    return { waiting: r.waiting, visible_at: r.visible_at };
  }

  /** Explains which activation guard failed (read inside the same transaction). */
  private async commitConflict(tx: Tx, req: ActivationCommit): Promise<Error> {
    const s = this.stmts;
    const run = (await tx.q<GuardedRunState>(s.runState.with({ runId: req.runId }))).rows[0];
    const fence = conflictNeedsFence(req, run)
      ? (await tx.q<{ fence: number }>(s.workflowTaskFence.with({ runId: req.runId }))).rows[0]?.fence
      : undefined;
    return activationConflict(req, run, fence);
  }
}
