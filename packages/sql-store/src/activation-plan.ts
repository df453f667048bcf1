/**
 * The activation plan: what committing one activation writes, computed as plain data by pure
 * functions, so SQLite and PostgreSQL agree on it by construction. A backend guards and updates
 * the run row ({@link planRunUpdate}), builds the plan from the row its guard returned
 * ({@link planActivation}), then only executes it — with its own transaction mechanics, its own
 * SQL, and the few reads only the database can answer (does a child's workflow id already have an
 * open run? is the parent still open? do unseen events wait in the inbox?), for which the plan
 * carries both outcomes' rows.
 *
 * The order a backend executes a plan in (see each backend's HOW_IT_WORKS.md): run guard and
 * update; eager completion; history; consumed inbox; the inbox-waiting refusal; withdrawn work;
 * new work; children; child cancellations; then the close (queues emptied, continued run, parent
 * notified) or the workflow task's settlement.
 */
import {
  type ActivationCommit,
  attemptLeaseMs,
  type ClaimedActivityTask,
  type ClosedStatus,
  newId as coreNewId,
} from "@spool/core";
import { type NewRunRows, newRunRows } from "./new-run.ts";
import { type HistoryRowValues, historyRow, type InboxRowValues, inboxRow } from "./planned-rows.ts";
import { activityChecksum, runChecksum } from "./row-checksum.ts";

/** The values of the guarded update of the run row (the guard itself is the backend's SQL). */
export interface RunUpdate {
  /** The run's last seq after this activation. */
  lastSeq: number;
  status: "running" | ClosedStatus;
  /** `now` when the activation closes the run, else null. */
  closedAt: number | null;
  result: Uint8Array | null;
  error: Uint8Array | null;
  /** The id of the run a continue-as-new creates (its row is in the plan's close), else null. */
  continuedTo: string | null;
  /** {@link runChecksum} of the updated row. */
  crc: number;
  /** Signals the code holds unconsumed (ActivationCommit.bufferedSignals); null: unchanged. */
  bufferedSignals: number | null;
}

/** The columns of the run row an activation's guard returns: all the plan needs from the database. */
export interface ActivationRunRow {
  workflow_id: string;
  parent_run_id: string | null;
  parent_workflow_id: string | null;
  parent_step: number | null;
}

/** An `activity_tasks` row to insert (run id and workflow id are the run's). */
export interface PlannedActivityTask {
  taskId: string;
  step: number;
  name: string;
  input: Uint8Array;
  options: Uint8Array;
  /** 1 when claimed eagerly for the committing worker, else 0 (the first claim makes it 1). */
  attempt: number;
  fence: number;
  visibleAt: number;
  /** The committing worker when claimed eagerly, else null. */
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
  scheduledAt: number;
  /** {@link activityChecksum} of the task. */
  crc: number;
}

/** A `timers` row to insert (the run id is the run's). */
export interface PlannedTimer {
  step: number;
  dueAt: number;
}

/** The activity tasks and timers an activation creates (none when it closes its run). */
export interface NewWork {
  activities: PlannedActivityTask[];
  timers: PlannedTimer[];
}

/**
 * A child to start. When its workflow id already has an open run the backend writes `startFailed`
 * to the parent's inbox instead, so the parent learns it deterministically.
 */
export interface PlannedChild {
  step: number;
  workflowId: string;
  rows: NewRunRows;
  /** ChildStartFailed for the parent's own inbox. */
  startFailed: InboxRowValues;
}

/** A cancellation for the open run of `workflowId`, delivered only if that run is still this run's child. */
export interface PlannedChildCancellation {
  workflowId: string;
  /** The parent link the open run must carry (the id may have been reused by an unrelated run). */
  parentRunId: string;
  /** CancelRequested. */
  row: InboxRowValues;
}

/** What a closing activation writes besides the run update. */
export interface PlannedClose {
  /** For the `run-closed` notification. */
  closed: { runId: string; workflowId: string };
  /** The next run of a continue-as-new (it inherits the parent link), else null. */
  continued: {
    rows: NewRunRows;
    /**
     * Signals the old run received but did not consume, for the new run's inbox, first and in
     * arrival order; the old inbox's unseen signals and cancel requests follow them (an
     * acknowledged signal is never lost).
     */
    carriedSignals: InboxRowValues[];
  } | null;
  /** The event for the parent's inbox, delivered only if the parent is still open; else null. */
  parentEvent: { runId: string; row: InboxRowValues } | null;
}

/** Everything one activation writes, as plain data; see the module comment for the order. */
export interface ActivationPlan {
  runId: string;
  workflowId: string;
  lastSeq: number;
  /** The commit carries a task fence (not the eager path). */
  fenced: boolean;
  /** The eager completion's attempt, removed if its fence still holds; else null. */
  completedActivity: { taskId: string; fence: number } | null;
  events: HistoryRowValues[];
  consumedInbox: readonly number[];
  /** Refuse (inboxWaitingConflict) if inbound events wait in the inbox: the run ends, not continued. */
  refuseIfInboxWaiting: boolean;
  cancelActivities: readonly number[];
  cancelTimers: readonly number[];
  activities: PlannedActivityTask[];
  timers: PlannedTimer[];
  /** The tasks of `activities` claimed eagerly, as the commit's result returns them. */
  claimedActivities: ClaimedActivityTask[];
  children: PlannedChild[];
  cancelChildren: PlannedChildCancellation[];
  close: PlannedClose | null;
  /** Notifications the new work calls for (the backend adds what its reads find). */
  notify: { activityTask: boolean; timer: boolean };
}

/** How a backend stores times and ids, and how long an eager lease is. */
export interface PlanOptions {
  /** The lease of an attempt with neither timeout (see attemptLeaseMs). */
  activityLeaseMs: number;
  /** Added to timer due times: SQLite's clock-frame shift since the worker read the clock. Default 0. */
  timerShiftMs?: number;
  /** Store event timestamps and due times as integers (PostgreSQL's BIGINT columns). Default false. */
  integerTimes?: boolean;
  /** Id source for tasks and runs (default: core's `newId`); tests pass a deterministic one. */
  newId?: () => string;
}

/**
 * The run row's new values. Call before the guard: a continue-as-new's next run id is decided
 * here, since the guarded update records it (`continuedTo`); pass it on to {@link planActivation}.
 */
export function planRunUpdate(
  req: ActivationCommit,
  now: number,
  newId: () => string = coreNewId,
): RunUpdate {
  const close = req.close;
  const status = close?.status ?? "running";
  const result = close?.result ?? null;
  const error = close?.error ?? null;
  return {
    lastSeq: req.expectedLastSeq + req.events.length,
    status,
    closedAt: close !== undefined ? now : null,
    result,
    error,
    continuedTo: close?.continueAsNew !== undefined ? newId() : null,
    crc: runChecksum(req.runId, status, result, error),
    bufferedSignals: req.bufferedSignals ?? null,
  };
}

/**
 * The activity tasks and timers an activation creates. The first `eagerActivities.maxTasks` tasks
 * of names the worker runs are created leased to it (attempt 1, fence 1). A closing activation
 * creates nothing: the run's outstanding work is withdrawn. Needs nothing from the run row, so a
 * backend that writes the work in its guard statement can plan it first and pass it to
 * {@link planActivation}.
 */
export function planNewWork(req: ActivationCommit, now: number, opts: PlanOptions): NewWork {
  if (req.close !== undefined) return { activities: [], timers: [] };
  const newId = opts.newId ?? coreNewId;
  const eager = req.eagerActivities;
  let eagerLeft = eager?.maxTasks ?? 0;
  const activities: PlannedActivityTask[] = new Array(req.activities.length);
  for (let i = 0; i < req.activities.length; i++) {
    const a = req.activities[i]!;
    const leased = eager !== undefined && eagerLeft > 0 && eager.activityNames.includes(a.name);
    if (leased) eagerLeft--;
    const leaseExpiresAt = leased
      ? now + attemptLeaseMs(a.timeoutMs, a.heartbeatTimeoutMs, opts.activityLeaseMs)
      : null;
    activities[i] = {
      taskId: newId(),
      step: a.step,
      name: a.name,
      input: a.input,
      options: a.options,
      attempt: leased ? 1 : 0,
      fence: leased ? 1 : 0,
      visibleAt: leaseExpiresAt ?? now,
      leaseOwner: leased ? eager.workerId : null,
      leaseExpiresAt,
      timeoutMs: a.timeoutMs,
      heartbeatTimeoutMs: a.heartbeatTimeoutMs,
      scheduledAt: now,
      crc: activityChecksum(req.runId, a.step, a.name, a.input),
    };
  }
  const shift = opts.timerShiftMs ?? 0;
  const timers = req.timers.map((t) => ({
    step: t.step,
    dueAt: opts.integerTimes ? Math.floor(t.dueAt + shift) : t.dueAt + shift,
  }));
  return { activities, timers };
}

/**
 * The history rows an activation appends (checksums computed). Needs nothing from the run row, so
 * a backend that writes them in its guard statement can plan them first and pass them to
 * {@link planActivation} as `events` (each checksum is then computed once).
 */
export function planHistoryRows(
  req: ActivationCommit,
  opts: Pick<PlanOptions, "integerTimes">,
): HistoryRowValues[] {
  const floor = opts.integerTimes === true;
  return req.events.map((e) => historyRow(e.seq, floor ? Math.floor(e.ts) : e.ts, e.type, e.step, e.body));
}

/**
 * Everything the activation writes after its guarded run update, as plain data.
 *
 * @param run the row the guard returned (the run's workflow id and parent link).
 * @param continuedTo {@link RunUpdate.continuedTo} of the same commit.
 * @param opts `work`: the commit's {@link planNewWork}, and `events`: its {@link planHistoryRows},
 *   when the backend planned them before the guard.
 * @example
 * ```ts
 * const update = planRunUpdate(req, now);
 * const run = guardAndUpdate(req, update); // the backend's SQL; a conflict when no row
 * const plan = planActivation(req, run, now, update.continuedTo, { activityLeaseMs: 300_000 });
 * ```
 */
export function planActivation(
  req: ActivationCommit,
  run: ActivationRunRow,
  now: number,
  continuedTo: string | null,
  opts: PlanOptions & { work?: NewWork; events?: HistoryRowValues[] },
): ActivationPlan {
  const { runId, close } = req;
  const workflowId = run.workflow_id;
  const newId = opts.newId ?? coreNewId;
  const work = opts.work ?? planNewWork(req, now, opts);
  const claimedActivities: ClaimedActivityTask[] = [];
  let unclaimed = false;
  for (const t of work.activities) {
    if (t.leaseOwner === null) {
      unclaimed = true;
      continue;
    }
    claimedActivities.push({
      taskId: t.taskId,
      runId,
      workflowId,
      step: t.step,
      name: t.name,
      input: t.input,
      options: t.options,
      attempt: t.attempt,
      fence: t.fence,
      timeoutMs: t.timeoutMs,
      heartbeatTimeoutMs: t.heartbeatTimeoutMs,
      scheduledAt: t.scheduledAt,
      leaseExpiresAt: t.leaseExpiresAt!,
    });
  }
  const events = opts.events ?? planHistoryRows(req, opts);
  return {
    runId,
    workflowId,
    lastSeq: req.expectedLastSeq + req.events.length,
    fenced: req.fence !== undefined,
    completedActivity: req.completedActivity ?? null,
    events,
    consumedInbox: req.consumedInbox,
    refuseIfInboxWaiting: close !== undefined && close.continueAsNew === undefined,
    cancelActivities: req.cancelActivities,
    cancelTimers: req.cancelTimers,
    activities: work.activities,
    timers: work.timers,
    claimedActivities,
    children: req.children.map((c) => ({
      step: c.step,
      workflowId: c.workflowId,
      rows: newRunRows(
        {
          runId: newId(),
          workflowId: c.workflowId,
          workflowName: c.workflowName,
          version: c.version,
          startedEventBody: c.startedEventBody,
          parentRunId: runId,
          parentWorkflowId: workflowId,
          parentStep: c.step,
          continuedFrom: null,
          inputHash: c.inputHash ?? null,
        },
        now,
      ),
      startFailed: inboxRow(now, "ChildStartFailed", c.step, null),
    })),
    cancelChildren: req.cancelChildren.map((c) => ({
      workflowId: c.workflowId,
      parentRunId: runId,
      row: inboxRow(now, "CancelRequested", null, c.body),
    })),
    close: close === undefined ? null : planClose(req, run, now, continuedTo),
    notify: { activityTask: unclaimed, timer: work.timers.length > 0 },
  };
}

/** The close part of a plan: the continued run and the parent's event. */
function planClose(
  req: ActivationCommit,
  run: ActivationRunRow,
  now: number,
  continuedTo: string | null,
): PlannedClose {
  const close = req.close!;
  const can = close.continueAsNew;
  const continued =
    can !== undefined && continuedTo !== null
      ? {
          // Inherits the parent link: the chain as a whole is the parent's child.
          rows: newRunRows(
            {
              runId: continuedTo,
              workflowId: run.workflow_id,
              workflowName: can.workflowName,
              version: can.version,
              startedEventBody: can.startedEventBody,
              parentRunId: run.parent_run_id,
              parentWorkflowId: run.parent_workflow_id,
              parentStep: run.parent_step,
              continuedFrom: req.runId,
              inputHash: can.inputHash ?? null,
            },
            now,
          ),
          carriedSignals: (can.carriedSignals ?? []).map((body) =>
            inboxRow(now, "SignalReceived", null, body),
          ),
        }
      : null;
  const parentEvent =
    close.parentEvent !== undefined && run.parent_run_id !== null
      ? {
          runId: run.parent_run_id,
          row: inboxRow(now, close.parentEvent.type, run.parent_step, close.parentEvent.body),
        }
      : null;
  return { closed: { runId: req.runId, workflowId: run.workflow_id }, continued, parentEvent };
}
