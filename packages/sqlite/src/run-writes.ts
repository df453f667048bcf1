/**
 * The SQLite backend's client-side transaction bodies: starting a run (or attaching to one),
 * signalling it, asking it to cancel — and the two writes every other body reuses: creating a
 * run's rows and delivering an event to a run's inbox. Each runs inside a write-queue transaction.
 */
import {
  type CancelRequest,
  type CancelResult,
  type EventType,
  isOpenStatus,
  newId,
  RunNotFoundError,
  SignalBufferFullError,
  type SignalRequest,
  type StartWorkflowRequest,
  type StartWorkflowResult,
} from "@spool/core";
import {
  attachOrConflict,
  type InboxRowValues,
  inboxRow,
  type NewRunRows,
  newRunRows,
  startedRun,
} from "@spool/sql-store";
import type { SqliteContext, SqliteOutbox } from "./write-context.ts";

/** Creates a run (WorkflowStarted + ready task), or attaches per `policy`. */
export function startIn(
  ctx: SqliteContext,
  req: StartWorkflowRequest,
  policy: StartWorkflowRequest["onConflict"],
  now: number,
  out: SqliteOutbox,
  checkInput = policy !== "useExisting",
): StartWorkflowResult {
  const s = ctx.stmts;
  const open = s.getOpenRun.get(req.workflowId);
  const existing = open ?? (policy === "startNewIfClosed" ? undefined : s.getNewestRun.get(req.workflowId));
  if (existing !== undefined) return attachOrConflict(req, existing, { fail: policy === "fail", checkInput });
  const runId = newId();
  const rows = newRunRows(startedRun(req, runId), now);
  createRun(ctx, rows, out);
  return { runId, created: true, workflowName: req.workflowName };
}

/** Puts a SignalReceived event in the open run's inbox (once per request id). @throws RunNotFoundError */
export function signalIn(ctx: SqliteContext, req: SignalRequest, out: SqliteOutbox): { runId: string } {
  const now = ctx.clock();
  const runId = openRunFor(ctx, req.workflowId, req.runId);
  if (firstSignal(ctx, runId, req.requestId)) {
    checkSignalRoom(ctx, req.workflowId, runId);
    deliver(ctx, runId, inboxRow(now, "SignalReceived", null, req.body), out);
  }
  return { runId };
}

/** Starts a run unless one is open (closed runs never block it), then signals it. */
export function signalWithStartIn(
  ctx: SqliteContext,
  start: StartWorkflowRequest,
  signalBody: Uint8Array,
  requestId: string | undefined,
  out: SqliteOutbox,
): StartWorkflowResult {
  const now = ctx.clock();
  const started = startIn(ctx, start, "startNewIfClosed", now, out, start.onConflict !== "useExisting");
  if (firstSignal(ctx, started.runId, requestId)) {
    if (!started.created) checkSignalRoom(ctx, start.workflowId, started.runId);
    deliver(ctx, started.runId, inboxRow(now, "SignalReceived", null, signalBody), out);
  }
  return started;
}

/** Puts CancelRequested in the open run's inbox, or reports the closed run's status. */
export function requestCancelIn(ctx: SqliteContext, req: CancelRequest, out: SqliteOutbox): CancelResult {
  const s = ctx.stmts;
  const run =
    req.runId !== undefined
      ? s.getRun.get(req.runId)
      : (s.getOpenRun.get(req.workflowId) ?? s.getNewestRun.get(req.workflowId));
  if (run === undefined || run.workflow_id !== req.workflowId) {
    throw new RunNotFoundError(req.workflowId, req.runId);
  }
  const status = run.status as CancelResult["status"];
  if (!isOpenStatus(run.status)) return { outcome: "alreadyClosed", runId: run.run_id, status };
  deliver(ctx, run.run_id, inboxRow(ctx.clock(), "CancelRequested", null, req.body), out);
  return { outcome: "requested", runId: run.run_id, status };
}

/** Inserts a run, its WorkflowStarted event (#1) and its ready workflow task. */
export function createRun(ctx: SqliteContext, rows: NewRunRows, out: SqliteOutbox): void {
  const s = ctx.stmts;
  const { run, started } = rows;
  s.insertRun.run(run);
  s.insertEvent.run({
    runId: run.runId,
    seq: started.seq,
    ts: started.ts,
    type: started.type,
    step: started.step,
    body: started.body,
    crc: started.crc,
  });
  s.insertWorkflowTask.run(run.runId, run.workflowName, run.now);
  out.workflowTask = true;
}

/** Appends an inbound event to a run's inbox and wakes its workflow task. */
export function deliver(ctx: SqliteContext, runId: string, row: InboxRowValues, out: SqliteOutbox): void {
  ctx.stmts.insertInbox.run(runId, row.ts, row.type, row.step, row.body, row.crc);
  ctx.stmts.wakeWorkflowTask.run({ runId, now: row.ts });
  out.workflowTask = true;
}

/** {@link deliver} of an event received now. */
export function deliverNow(
  ctx: SqliteContext,
  runId: string,
  now: number,
  type: EventType,
  step: number | null,
  body: Uint8Array | null,
  out: SqliteOutbox,
): void {
  deliver(ctx, runId, inboxRow(now, type, step, body), out);
}

/** True when the signal is to be delivered: it has no request id, or one this run has not seen. */
function firstSignal(ctx: SqliteContext, runId: string, requestId: string | undefined): boolean {
  if (requestId === undefined) return true;
  return ctx.stmts.rememberSignal.run(runId, requestId).changes === 1;
}

/**
 * Refuses a signal when the run already holds maxBufferedSignals unconsumed ones. Runs inside
 * the delivering write transaction: SQLite has one writer at a time, so concurrent senders
 * are counted one after another and cannot overshoot the cap.
 */
function checkSignalRoom(ctx: SqliteContext, workflowId: string, runId: string): void {
  const waiting = ctx.stmts.unconsumedSignals.get(runId)?.n ?? 0;
  const limit = ctx.maxBufferedSignals;
  if (waiting >= limit) throw new SignalBufferFullError({ workflowId, runId, waiting, limit });
}

/** The open run a signal targets. @throws RunNotFoundError */
function openRunFor(ctx: SqliteContext, workflowId: string, runId: string | undefined): string {
  const s = ctx.stmts;
  const run = runId !== undefined ? s.getRun.get(runId) : s.getOpenRun.get(workflowId);
  if (run === undefined || run.workflow_id !== workflowId || !isOpenStatus(run.status)) {
    throw new RunNotFoundError(workflowId, runId, "open run");
  }
  return run.run_id;
}
