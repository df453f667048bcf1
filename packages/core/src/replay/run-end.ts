/**
 * How a run ends and what reaches it as a whole: completion (the output checked by its schema),
 * failure, a requested cancellation, the history limit. A run that ends withdraws whatever it left
 * outstanding, so no pending timer or activity can keep a finished run open.
 */
import { serializeError } from "../codec/error-serialization.ts";
import { parseWith } from "../definitions/schema.ts";
import { CancelledError, HistoryLimitError } from "../errors.ts";
import { parksWhenThrownByCode } from "../failure-class.ts";
import type { EventDraft } from "../history/events.ts";
import type { Outcome } from "./fiber.ts";
import type { StepOps } from "./step-ops.ts";
import { executionTimeoutStep } from "./steps/timer.ts";

/** The root fiber ended: the run completes with its (schema-checked) output, or fails. */
export function completeRun(outcome: Outcome, ops: StepOps): void {
  const s = ops.s;
  if (outcome.ok) {
    let result: unknown;
    try {
      result = parseWith(
        s.definition.outputSchema,
        outcome.value,
        `output of workflow "${s.definition.name}"`,
      );
    } catch (err) {
      failRun(err, ops);
      return;
    }
    ops.withdrawAll();
    ops.rec.emit({ type: "WorkflowCompleted", result });
    s.closed = true;
    s.status = "completed";
    s.result = result;
    return;
  }
  if (parksWhenThrownByCode(outcome.error)) throw outcome.error;
  failRun(outcome.error, ops);
}

/** Ends the run as failed, or cancelled when the error is the cancellation that was requested. */
export function failRun(err: unknown, ops: StepOps): void {
  const s = ops.s;
  ops.withdrawAll();
  const cancelled = CancelledError.is(err) && s.cancelRequested;
  ops.rec.emit({
    type: cancelled ? "WorkflowCancelled" : "WorkflowFailed",
    error: serializeError(err),
  } as EventDraft);
  s.closed = true;
  s.status = cancelled ? "cancelled" : "failed";
  s.error = err;
}

/** A run that ends cancels whatever it left outstanding, so nothing keeps it open. */
export function withdrawOutstanding(ops: StepOps): void {
  const s = ops.s;
  const timeout = executionTimeoutStep(ops);
  const fibers = [...s.live].filter((f) => f.pending).sort((a, b) => a.id - b.id);
  for (const f of fibers) {
    f.detached = true;
    if (f.pending?.kind !== "group") ops.withdraw(f);
    else f.pending = null;
  }
  if (timeout !== undefined) {
    s.waitingSteps.delete(timeout);
    ops.rec.emit({ type: "TimerCancelled", step: timeout });
  }
}

/** CancelRequested: throws CancelledError at every step the run waits on, in fiber order. */
export function deliverCancellation(reason: string, ops: StepOps): void {
  const s = ops.s;
  if (s.cancelRequested) return;
  s.cancelRequested = true;
  const leaves = [...s.live].filter((f) => f.pending && f.pending.kind !== "group" && !f.detached);
  leaves.sort((a, b) => a.id - b.id);
  for (const f of leaves) {
    ops.withdraw(f);
    ops.resume(f, { ok: false, error: new CancelledError(reason) });
  }
}

/** Warns once the history is long, and fails the run at the limit. */
export function checkHistorySize(ops: StepOps): void {
  const s = ops.s;
  const n = s.lastSeq;
  if (n >= s.opts.historyWarnAt && !s.warned) {
    s.warned = true;
    ops.warn(
      `history has ${n} events; continue as new before ${s.opts.historyLimit} (the limit) to keep replay fast`,
    );
  }
  if (n >= s.opts.historyLimit && !s.closed) {
    failRun(new HistoryLimitError({ runId: s.runId, limit: s.opts.historyLimit }), ops);
  }
}
