/**
 * Errors of a run's life: what activity code throws to stop retrying, what workflow code sees at
 * a failed step or a divergence, what clients see when a run failed, was cancelled, is missing or
 * already exists, and the refusals a backend answers with (conflict, timeout, a full signal buffer).
 */
import { guard, isErrorLike, SpoolError, type SpoolErrorOptions } from "./spool-error.ts";

/**
 * Thrown by activity code to fail the activity at once, without further retries.
 *
 * @example
 * ```ts
 * if (amount > 10_000) throw new NonRetryableError("over limit");
 * ```
 */
export class NonRetryableError extends SpoolError {
  override name = "NonRetryableError";
  /** Extra data recorded with the failure, visible to the workflow through `ActivityFailure.cause`. */
  readonly details: unknown;
  constructor(message: string, options?: SpoolErrorOptions & { details?: unknown }) {
    super(message, options);
    this.details = options?.details;
  }
  static override is = guard(NonRetryableError, "NonRetryableError");
}

/** Details of the activity step that failed, carried by {@link ActivityFailure}. */
export interface ActivityFailureInfo {
  activityName: string;
  step: number;
  attempt: number;
  /** Why the activity gave up: retries exhausted, a non-retryable error, a timeout, or cancellation. */
  reason: "retries-exhausted" | "non-retryable" | "timeout" | "cancelled" | "validation";
}

/**
 * What workflow code sees at `yield*` when an activity has failed for good. The activity's own
 * error is `cause`.
 */
export class ActivityFailure extends SpoolError {
  override name = "ActivityFailure";
  readonly activityName: string;
  readonly step: number;
  readonly attempt: number;
  readonly reason: ActivityFailureInfo["reason"];
  constructor(info: ActivityFailureInfo, options?: SpoolErrorOptions) {
    const causeMsg = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(
      `activity "${info.activityName}" (step ${info.step}) failed after ${info.attempt} attempt(s), ${info.reason}${causeMsg}`,
      options,
    );
    this.activityName = info.activityName;
    this.step = info.step;
    this.attempt = info.attempt;
    this.reason = info.reason;
  }
  static override is = guard(ActivityFailure, "ActivityFailure");
}

/** Details carried by {@link NonDeterminismError}. */
export interface NonDeterminismInfo {
  /** The step number at which replay diverged. */
  step: number;
  /** The history position (event sequence number) at which replay diverged. */
  seq: number;
  /** What history recorded there, e.g. `activity "payments.charge"`, or `nothing`. */
  recorded: string;
  /** What the code produced now, e.g. `timer 10m`, or `nothing`. */
  produced: string;
}

/**
 * Replay diverged from the recorded history: the code now produces a different step (kind or
 * name, or input in strict mode) than the one recorded, or a step where history has none. The run
 * is parked as `blocked` with this error, its history untouched; deploy the previous code or guard
 * the change with `patched()` and the run continues.
 */
export class NonDeterminismError extends SpoolError {
  override name = "NonDeterminismError";
  readonly step: number;
  readonly seq: number;
  readonly recorded: string;
  readonly produced: string;
  constructor(info: NonDeterminismInfo, options?: SpoolErrorOptions & { hint?: string }) {
    super(
      `non-determinism at step ${info.step} (history event #${info.seq}): history recorded ${info.recorded}, ` +
        `but the code now produced ${info.produced}. ` +
        (options?.hint ??
          "Usual fixes: deploy the previous workflow code for runs already in flight; guard the change with " +
            '`if (yield* patched("change-id"))` so old runs keep the old path; or move non-deterministic ' +
            "work (Date.now, Math.random, I/O, env reads) into an activity or sideEffect()."),
      options,
    );
    this.step = info.step;
    this.seq = info.seq;
    this.recorded = info.recorded;
    this.produced = info.produced;
  }
  static override is = guard(NonDeterminismError, "NonDeterminismError");
}

/**
 * Workflow code awaited something other than a step (real I/O, a timer, a promise from outside),
 * which replay cannot reproduce. Move the work into an activity.
 */
export class WorkflowAwaitError extends SpoolError {
  override name = "WorkflowAwaitError";
  static override is = guard(WorkflowAwaitError, "WorkflowAwaitError");
}

/** Thrown by `handle.result()` when the run failed; the workflow's error is `cause`. */
export class WorkflowFailedError extends SpoolError {
  override name = "WorkflowFailedError";
  readonly workflowId: string;
  readonly runId: string;
  readonly status: string;
  constructor(info: { workflowId: string; runId: string; status: string }, options?: SpoolErrorOptions) {
    const causeMsg = isErrorLike(options?.cause) ? `: ${(options.cause as Error).message}` : "";
    super(`workflow "${info.workflowId}" (run ${info.runId}) ended ${info.status}${causeMsg}`, options);
    this.workflowId = info.workflowId;
    this.runId = info.runId;
    this.status = info.status;
  }
  static override is = guard(WorkflowFailedError, "WorkflowFailedError");
}

/**
 * Cancellation: delivered to workflow code at its current `yield*` after `handle.cancel()`, to
 * losing `race` branches, and to activities through their AbortSignal. Seen by clients as the
 * `cause` of a {@link WorkflowFailedError} with status `cancelled`.
 */
export class CancelledError extends SpoolError {
  override name = "CancelledError";
  readonly reason: string;
  constructor(reason = "cancelled", options?: SpoolErrorOptions) {
    super(reason === "cancelled" ? "cancelled" : `cancelled: ${reason}`, options);
    this.reason = reason;
  }
  static override is = guard(CancelledError, "CancelledError");
}

/** No run with that workflow id (or run id), or the run has finished when an open one was needed. */
export class RunNotFoundError extends SpoolError {
  override name = "RunNotFoundError";
  readonly workflowId: string;
  readonly runId: string | undefined;
  constructor(workflowId: string, runId?: string, detail?: string) {
    super(
      `no ${detail ?? "run"} for workflow id "${workflowId}"${runId ? ` (run ${runId})` : ""}. ` +
        "Check the id, or start the workflow first (client.start / client.signalWithStart).",
    );
    this.workflowId = workflowId;
    this.runId = runId;
  }
  static override is = guard(RunNotFoundError, "RunNotFoundError");
}

/** `client.start` with `onConflict: "fail"` found an existing run, or the id belongs to another workflow. */
export class WorkflowAlreadyStartedError extends SpoolError {
  override name = "WorkflowAlreadyStartedError";
  readonly workflowId: string;
  readonly runId: string;
  constructor(workflowId: string, runId: string, message?: string) {
    super(
      message ??
        `workflow id "${workflowId}" is already used by run ${runId}. Use onConflict: "attach" to get its handle.`,
    );
    this.workflowId = workflowId;
    this.runId = runId;
  }
  static override is = guard(WorkflowAlreadyStartedError, "WorkflowAlreadyStartedError");
}

/**
 * An optimistic-concurrency guard failed: another worker advanced the run, or a task's lease and
 * fencing token were taken over. The caller's write was rejected whole; nothing was changed.
 */
export class ConflictError extends SpoolError {
  override name = "ConflictError";
  static override is = guard(ConflictError, "ConflictError");
}

/** An activity attempt, or a workflow run, took longer than its timeout. */
export class TimeoutError extends SpoolError {
  override name = "TimeoutError";
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number) {
    super(message);
    this.timeoutMs = timeoutMs;
  }
  static override is = guard(TimeoutError, "TimeoutError");
}

/**
 * An activity attempt that never reported its outcome: the worker running it shut down before
 * it finished (it ignored its AbortSignal past the drain), or the worker died or stalled and the
 * attempt's lease ran out. Such an attempt counts against `maxAttempts` (as Temporal counts a
 * timed-out attempt): when it was the last one allowed, the step fails with this error instead
 * of running once more. The side effect may or may not have happened — that is what the
 * idempotency key is for.
 */
export class ActivityInterruptedError extends SpoolError {
  override name = "ActivityInterruptedError";
  static override is = guard(ActivityInterruptedError, "ActivityInterruptedError");
}

/** A child workflow failed; its error is `cause`. Seen by the parent at `yield* child(...)`. */
export class ChildWorkflowFailure extends SpoolError {
  override name = "ChildWorkflowFailure";
  readonly workflowName: string;
  readonly workflowId: string;
  constructor(info: { workflowName: string; workflowId: string }, options?: SpoolErrorOptions) {
    const causeMsg = isErrorLike(options?.cause) ? `: ${(options.cause as Error).message}` : "";
    super(`child workflow "${info.workflowName}" (id ${info.workflowId}) failed${causeMsg}`, options);
    this.workflowName = info.workflowName;
    this.workflowId = info.workflowId;
  }
  static override is = guard(ChildWorkflowFailure, "ChildWorkflowFailure");
}

/**
 * A signal was refused because its run already holds as many unconsumed signals as its backend
 * allows (`maxBufferedSignals`, 1,000 by default): signals delivered to the run that its code has
 * not taken with `signal.wait()`. Nothing was delivered; the run is unaffected. Signalling a run
 * that never waits would otherwise grow its history until the run fails at the history limit.
 *
 * @example
 * ```ts
 * try { await handle.signal(tick, {}); } catch (err) {
 *   if (SignalBufferFullError.is(err)) await sleep(1000); // let the workflow catch up, or stop sending
 * }
 * ```
 */
export class SignalBufferFullError extends SpoolError {
  override name = "SignalBufferFullError";
  readonly workflowId: string;
  readonly runId: string;
  /** Unconsumed signals the run holds (waiting in its inbox or buffered by its code). */
  readonly waiting: number;
  /** The cap (`maxBufferedSignals`). */
  readonly limit: number;
  constructor(info: { workflowId: string; runId: string; waiting: number; limit: number }) {
    super(
      `signal to workflow "${info.workflowId}" (run ${info.runId}) refused: ${info.waiting} signals already wait ` +
        `unconsumed by its code, the cap is ${info.limit} (maxBufferedSignals). Nothing was delivered and the run ` +
        "is unaffected. Retry once the workflow has consumed some with signal.wait(), stop sending signals it " +
        "never waits for, or raise maxBufferedSignals on the backend.",
    );
    this.workflowId = info.workflowId;
    this.runId = info.runId;
    this.waiting = info.waiting;
    this.limit = info.limit;
  }
  static override is = guard(SignalBufferFullError, "SignalBufferFullError");
}
