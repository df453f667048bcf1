/**
 * The commit of one activation on PostgreSQL, inside a transaction: the guarded run update with
 * the activation's body in one round trip (history, consumed inbox, new work, eager completion,
 * settlement), withdrawn work, children, the "would end the run while inbound events wait"
 * refusal, closing (queues, continue-as-new successor with its carried signals, the parent's
 * event) and the explanation of a failed guard. HOW_IT_WORKS.md gives the order of writes.
 */
import {
  type ActivationCommit,
  type ActivationResult,
  attemptLeaseMs,
  type ClaimedActivityTask,
  ConflictError,
  isOpenStatus,
  newId,
  SpoolError,
} from "@spool/core";
import { activityChecksum, eventChecksum, runChecksum } from "@spool/sql-store";
import type { Tx } from "./connection.ts";
import { createRun, deliverTo, deliverToOpen } from "./deliveries.ts";
import type { Statements } from "./statements.ts";

/** Which parts of an activation's body a statement writes (see `bodyArgs`). */
interface BodyParts {
  events: boolean;
  work: NewWork | null;
  settle: boolean;
}

/** What applyActivation (and commitActivation) report about the body they wrote. */
interface BodyRow {
  finished: number;
  consumed: number;
  waiting: boolean;
  visible_at: number | null;
}

/** The new activity tasks and timers of an activation, as the column arrays of its body. */
interface NewWork {
  actTaskIds: string[];
  actSteps: number[];
  actNames: string[];
  actInputs: Uint8Array[];
  actOptions: Uint8Array[];
  actAttempts: number[];
  actFences: number[];
  actVisibleAt: number[];
  actOwners: (string | null)[];
  actLeaseExpiresAt: (number | null)[];
  actTimeoutMs: number[];
  actHeartbeatTimeoutMs: number[];
  timerSteps: number[];
  timerDueAt: number[];
}

/** The work columns of a body that creates no work. */
const NO_WORK: NewWork = {
  actTaskIds: [],
  actSteps: [],
  actNames: [],
  actInputs: [],
  actOptions: [],
  actAttempts: [],
  actFences: [],
  actVisibleAt: [],
  actOwners: [],
  actLeaseExpiresAt: [],
  actTimeoutMs: [],
  actHeartbeatTimeoutMs: [],
  timerSteps: [],
  timerDueAt: [],
};

/** Writes activations; one per backend. */
export class CommitExecutor {
  constructor(
    private readonly stmts: Statements,
    /** Lease of an attempt with neither timeout (the backend's `activityLeaseMs`). */
    private readonly activityLeaseMs: number,
  ) {}

  /**
   * Commits `req` (already validated) in `tx`.
   * @throws ConflictError when a guard fails (the caller's transaction rolls back: nothing written)
   */
  async commitIn(tx: Tx, req: ActivationCommit): Promise<ActivationResult> {
    const s = this.stmts;
    const { now, out } = tx;
    const { runId, close } = req;
    const lastSeq = req.expectedLastSeq + req.events.length;
    const nextRunId = close?.continueAsNew !== undefined ? newId() : null;

    // 1. The run's lock, the guards, the run row and the body of the activation, in one
    // statement: eager completion, history, consumed inbox, new work, and (when nothing below can
    // add to the inbox) the task's settlement. Withdrawn work goes first, so a step cancelled and
    // rescheduled in one activation ends up scheduled; then the body runs in two parts around it,
    // as in SQLite's order of writes.
    const claimedActivities: ClaimedActivityTask[] = [];
    const work = close === undefined ? this.newWork(req, now, claimedActivities) : null;
    if (work !== null && req.activities.some((a) => !claimedActivities.some((c) => c.step === a.step))) {
      out.activityTask = true;
    }
    if (work !== null && req.timers.length > 0) out.timer = true;
    const cancels = req.cancelActivities.length > 0 || req.cancelTimers.length > 0;
    const settleNow = close === undefined && req.children.length === 0 && req.cancelChildren.length === 0;
    const firstParts = { events: true, work: cancels ? null : work, settle: settleNow && !cancels };
    const status = close?.status ?? "running";
    const result = close?.result ?? null;
    const error = close?.error ?? null;
    const guarded = await tx.q<
      BodyRow & {
        workflow_id: string;
        parent_run_id: string | null;
        parent_workflow_id: string | null;
        parent_step: number | null;
        applied: boolean;
      }
    >(
      s.commitActivation.with({
        ...this.bodyArgs(tx, req, firstParts),
        expectedLastSeq: req.expectedLastSeq,
        fence: req.fence ?? null,
        lastSeq,
        status,
        closedAt: close !== undefined ? now : null,
        result,
        error,
        continuedTo: nextRunId,
        runCrc: runChecksum(runId, status, result, error),
        bufferedSignals: req.bufferedSignals ?? null,
      }),
    );
    const run = guarded.rows[0];
    if (run === undefined) throw await this.commitConflict(tx, req);
    for (const c of claimedActivities) c.workflowId = run.workflow_id;
    // A delivery committed while the statement waited for the lock, so its snapshot missed it and
    // it wrote no body (see commitActivation): the body follows as a statement of its own.
    const first = run.applied
      ? this.checkBody(req, true, run)
      : await this.applyBody(tx, req, run.workflow_id, firstParts);
    if (cancels) {
      const { rows } = await tx.q<{ task_id: string }>(
        s.cancelWork.with({
          runId,
          activitySteps: req.cancelActivities,
          timerSteps: req.cancelTimers,
        }),
      );
      for (const r of rows) out.cancelled.push(r.task_id);
      if (work !== null || settleNow) {
        const second = await this.applyBody(tx, req, run.workflow_id, {
          events: false,
          work,
          settle: settleNow,
        });
        first.visible_at = second.visible_at;
      }
    }
    if (settleNow && first.visible_at !== null) out.workflowTask = true;
    // An acknowledged signal is never lost: a run may not end while inbound events it has not seen
    // wait in its inbox (they arrived during this activation). The worker re-runs the activation
    // with them. Continue-as-new is exempt: those events move on to the next run.
    if (close !== undefined && close.continueAsNew === undefined && first.waiting) {
      throw new ConflictError(
        `activation of run ${runId} discarded: it would end the run while new inbound events wait in its inbox. ` +
          "Nothing was written; re-read the run and replay with them.",
      );
    }

    // 3. Children: a workflow id that already has an open run is reported back to this run as
    // ChildStartFailed rather than failing the commit, so the parent learns it deterministically.
    const createdRuns: ActivationResult["createdRuns"] = [];
    for (const c of req.children) {
      const childRunId = newId();
      const created = await createRun(tx, s, {
        runId: childRunId,
        workflowId: c.workflowId,
        workflowName: c.workflowName,
        version: c.version,
        startedEventBody: c.startedEventBody,
        parentRunId: runId,
        parentWorkflowId: run.workflow_id,
        parentStep: c.step,
        continuedFrom: null,
        inputHash: c.inputHash ?? null,
      });
      if (created) createdRuns.push({ step: c.step, runId: childRunId, workflowId: c.workflowId });
      else await deliverTo(tx, s, runId, "ChildStartFailed", c.step, null);
    }
    for (const c of req.cancelChildren) {
      // Only a run that is still this run's child: the id may have been reused by an unrelated run.
      const target = { workflowId: c.workflowId, parentRunId: runId };
      await deliverToOpen(tx, s, target, "CancelRequested", c.body, 1);
    }

    // 4. The workflow task: gone with a closed run, else ready or idle depending on the inbox.
    if (close !== undefined) {
      const { rows } = await tx.q<{ task_id: string }>(s.closeRunQueues.with({ runId }));
      for (const r of rows) out.cancelled.push(r.task_id);
      if (close.continueAsNew !== undefined && nextRunId !== null) {
        // Inherits the parent link: the chain as a whole is the parent's child.
        const created = await createRun(tx, s, {
          runId: nextRunId,
          workflowId: run.workflow_id,
          workflowName: close.continueAsNew.workflowName,
          version: close.continueAsNew.version,
          startedEventBody: close.continueAsNew.startedEventBody,
          parentRunId: run.parent_run_id,
          parentWorkflowId: run.parent_workflow_id,
          parentStep: run.parent_step,
          continuedFrom: runId,
          inputHash: close.continueAsNew.inputHash ?? null,
        });
        if (!created) {
          // Cannot happen: this transaction closed the id's only open run and holds its lock.
          throw new SpoolError(
            `continue-as-new of run ${runId}: workflow id ${run.workflow_id} has another open run`,
          );
        }
        // An acknowledged signal is never lost: signals the old run received but did not consume
        // come first, then inbox events it never saw, all in arrival order.
        const carried = close.continueAsNew.carriedSignals ?? [];
        if (carried.length === 0) {
          await tx.q(s.moveInboxToRun.with({ fromRunId: runId, toRunId: nextRunId }));
        } else {
          await tx.q(
            s.insertInboxRows.with({
              runId: nextRunId,
              now,
              types: carried.map(() => "SignalReceived"),
              steps: carried.map(() => null),
              bodies: carried,
              crcs: carried.map((b) => eventChecksum(0, now, "SignalReceived", null, b)),
            }),
          );
          // Inbox order is id order, so the unseen rows are re-inserted after the carried ones.
          await tx.q(s.copyInboxToRun.with({ fromRunId: runId, toRunId: nextRunId }));
        }
        createdRuns.push({ step: null, runId: nextRunId, workflowId: run.workflow_id });
      } else if (req.children.length > 0) {
        // A ChildStartFailed added above is all that can be left (the run holds its lock, and the
        // check before refused to close over anything else): it dies with the run.
        await tx.q(s.deleteInboxOfRun.with({ runId }));
      }
      if (close.parentEvent !== undefined && run.parent_run_id !== null) {
        const { type, body } = close.parentEvent;
        await deliverTo(tx, s, run.parent_run_id, type, run.parent_step, body);
      }
      out.closed.push({ runId, workflowId: run.workflow_id });
    } else if (!settleNow) {
      // Children may have added ChildStartFailed events to the inbox: settle after them.
      const { rows } = await tx.q<{ visible_at: number | null }>(
        s.settleWorkflowTask.with({
          runId,
          now,
          fenced: req.fence !== undefined,
        }),
      );
      if (rows[0] !== undefined && rows[0].visible_at !== null) out.workflowTask = true;
    }

    return { lastSeq, claimedActivities, createdRuns };
  }

  /**
   * The activity tasks and timers an activation creates, as the column arrays of its body. The
   * first `eagerActivities.maxTasks` tasks of names the worker runs are created leased to it
   * (attempt 1, fence 1) and returned in `claimed` (the caller sets their `workflowId`).
   */
  private newWork(req: ActivationCommit, now: number, claimed: ClaimedActivityTask[]): NewWork {
    const eager = req.eagerActivities;
    const w: NewWork = {
      actTaskIds: [],
      actSteps: [],
      actNames: [],
      actInputs: [],
      actOptions: [],
      actAttempts: [],
      actFences: [],
      actVisibleAt: [],
      actOwners: [],
      actLeaseExpiresAt: [],
      actTimeoutMs: [],
      actHeartbeatTimeoutMs: [],
      timerSteps: req.timers.map((t) => t.step),
      timerDueAt: req.timers.map((t) => Math.floor(t.dueAt)),
    };
    let eagerLeft = eager?.maxTasks ?? 0;
    for (const a of req.activities) {
      const taskId = newId();
      const leased = eager !== undefined && eagerLeft > 0 && eager.activityNames.includes(a.name);
      const leaseExpiresAt = leased
        ? now + attemptLeaseMs(a.timeoutMs, a.heartbeatTimeoutMs, this.activityLeaseMs)
        : null;
      if (leased) {
        eagerLeft--;
        claimed.push({
          taskId,
          runId: req.runId,
          workflowId: "", // set once the commit's guard statement has returned the run
          step: a.step,
          name: a.name,
          input: a.input,
          options: a.options,
          attempt: 1,
          fence: 1,
          timeoutMs: a.timeoutMs,
          heartbeatTimeoutMs: a.heartbeatTimeoutMs,
          scheduledAt: now,
          leaseExpiresAt: leaseExpiresAt!,
        });
      }
      w.actTaskIds.push(taskId);
      w.actSteps.push(a.step);
      w.actNames.push(a.name);
      w.actInputs.push(a.input);
      w.actOptions.push(a.options);
      w.actAttempts.push(leased ? 1 : 0);
      w.actFences.push(leased ? 1 : 0);
      w.actVisibleAt.push(leaseExpiresAt ?? now);
      w.actOwners.push(leased ? eager!.workerId : null);
      w.actLeaseExpiresAt.push(leaseExpiresAt);
      w.actTimeoutMs.push(a.timeoutMs);
      w.actHeartbeatTimeoutMs.push(a.heartbeatTimeoutMs);
    }
    return w;
  }

  /**
   * The body's arguments shared by commitActivation and applyActivation: with `events`, the eager
   * completion, the history rows and the consumed inbox rows; with `work`, the new tasks and
   * timers (and their checksums); with `settle`, the task's settlement.
   */
  private bodyArgs(tx: Tx, req: ActivationCommit, parts: BodyParts) {
    const e = parts.events ? req.events : [];
    const done = parts.events ? req.completedActivity : undefined;
    return {
      runId: req.runId,
      now: tx.now,
      doneTaskId: done?.taskId ?? null,
      doneFence: done?.fence ?? null,
      eventSeqs: e.map((x) => x.seq),
      eventTs: e.map((x) => Math.floor(x.ts)),
      eventTypes: e.map((x) => x.type),
      eventSteps: e.map((x) => x.step),
      eventBodies: e.map((x) => x.body),
      eventCrcs: e.map((x) => eventChecksum(x.seq, Math.floor(x.ts), x.type, x.step, x.body)),
      consumedIds: parts.events ? req.consumedInbox : [],
      ...(parts.work ?? NO_WORK),
      settle: parts.settle,
      fenced: req.fence !== undefined,
      activityCrcs:
        parts.work === null
          ? []
          : req.activities.map((a) => activityChecksum(req.runId, a.step, a.name, a.input)),
    };
  }

  /** Runs applyActivation (see bodyArgs and checkBody). */
  private async applyBody(
    tx: Tx,
    req: ActivationCommit,
    workflowId: string,
    parts: BodyParts,
  ): Promise<{ waiting: boolean; visible_at: number | null }> {
    const { rows } = await tx.q<BodyRow>(
      this.stmts.applyActivation.with({
        ...this.bodyArgs(tx, req, parts),
        workflowId,
      }),
    );
    return this.checkBody(req, parts.events, rows[0]!);
  }

  /**
   * Rolls the transaction back (by throwing ConflictError) when the completed activity or a
   * consumed inbox row of an activation's body was gone.
   */
  private checkBody(
    req: ActivationCommit,
    events: boolean,
    r: BodyRow,
  ): { waiting: boolean; visible_at: number | null } {
    const consumed = events ? req.consumedInbox : [];
    const done = events ? req.completedActivity : undefined;
    if (done !== undefined && r.finished !== 1) {
      throw new ConflictError(
        `activation of run ${req.runId} discarded: activity task ${done.taskId} with fence ${done.fence} is no ` +
          "longer current (retried elsewhere, cancelled or already completed). Nothing was written; re-read the " +
          "run and replay.",
      );
    }
    if (r.consumed !== consumed.length) {
      throw new ConflictError(
        `activation of run ${req.runId} discarded: inbox events [${consumed.join(", ")}] are not all in this ` +
          "run's inbox (already consumed?). Nothing was written; re-read the run and replay.",
      );
    }
    return { waiting: r.waiting, visible_at: r.visible_at };
  }

  /** Explains which activation guard failed (read inside the same transaction). */
  private async commitConflict(tx: Tx, req: ActivationCommit): Promise<ConflictError> {
    const s = this.stmts;
    const run = (await tx.q<{ status: string; last_seq: number }>(s.runState.with({ runId: req.runId })))
      .rows[0];
    let why: string;
    if (run === undefined) why = "there is no such run";
    else if (!isOpenStatus(run.status)) why = `the run is already ${run.status}`;
    else if (run.last_seq !== req.expectedLastSeq) {
      why =
        `expected last seq ${req.expectedLastSeq} but the run is at ${run.last_seq} ` +
        "(another activation committed first)";
    } else {
      const task = (await tx.q<{ fence: number }>(s.workflowTaskFence.with({ runId: req.runId }))).rows[0];
      why =
        `workflow task fence ${req.fence} is stale (current fence ${task?.fence ?? "none"}: ` +
        "the lease expired and another worker claimed the task)";
    }
    return new ConflictError(
      `activation of run ${req.runId} discarded: ${why}. Nothing was written; re-read the run and replay.`,
    );
  }
}
