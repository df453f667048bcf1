/**
 * Runs one activity attempt: decodes its input, gives the function an AbortSignal, a heartbeat
 * and an idempotency key, enforces the start-to-close and heartbeat timeouts, checks the output
 * against its schema, and returns the outcome with its payloads encoded (once, as they will be
 * stored): completed, failed for good, retry later (per the retry policy), interrupted by the
 * shutdown, or abandoned. Recording the outcome is its caller's job (activity-reporter.ts): the
 * runner talks to the backend only to heartbeat.
 */
import {
  type ActivityContext,
  type ActivityDefinition,
  ActivityInterruptedError,
  attemptLeaseMs,
  type Backend,
  CancelledError,
  type ClaimedActivityTask,
  ConflictError,
  type DataConverter,
  decodeRetryPolicy,
  encodeBody,
  parseWith,
  type RecordedActivityOptions,
  type ResolvedRetryPolicy,
  retryDecision,
  type SerializedError,
  serializeError,
  TimeoutError,
  ValidationError,
} from "@spool/core";
import type { Logger } from "./logger.ts";

/** Why a running attempt was aborted by the worker. */
export type AbortReason = "timeout" | "heartbeat-timeout" | "cancelled" | "lease-lost" | "shutdown";

/** Why a step failed for good, as recorded in its ActivityFailed event. */
export type ActivityFailReason =
  | "retries-exhausted"
  | "non-retryable"
  | "timeout"
  | "cancelled"
  | "validation";

/**
 * How an outcome must be recorded:
 * - `durable`: wait out a full disk (the side effect has happened; dropping the outcome would
 *   make another attempt repeat it), giving up only on shutdown;
 * - `once`: one try (the activity never ran: its task was damaged or its input unreadable);
 * - `best-effort`: one try, failures ignored (the worker is shutting down).
 */
export type OutcomeDelivery = "durable" | "once" | "best-effort";

/**
 * What an attempt came to, with its payloads encoded as they will be stored (`body` is the
 * ActivityCompleted or ActivityFailed event body), so recording it encodes nothing again.
 */
export type AttemptOutcome =
  | { kind: "completed"; result: unknown; attempt: number; body: Uint8Array; delivery: "durable" }
  | {
      kind: "failed";
      /** The error as stored (shrunk to fit the payload limit when it must be). */
      error: SerializedError;
      /** The attempt to record (not always the claim's: see a claim past the last allowed attempt). */
      attempt: number;
      reason: ActivityFailReason;
      body: Uint8Array;
      delivery: OutcomeDelivery;
    }
  /** Try again at `delayMs` from now (per the retry policy); `error` is encoded. */
  | {
      kind: "retry";
      error: Uint8Array;
      delayMs: number;
      attempt: number;
      /** For the log line: the policy's limit and the error in one line. */
      maxAttempts: number;
      message: string;
    }
  /** Cut short by the shutdown with attempts left: hand the task back now (best effort). */
  | { kind: "interrupted"; error: Uint8Array }
  /** The step was withdrawn or another worker owns the attempt now: nothing to record. */
  | { kind: "abandoned"; reason: AbortReason };

/** A running attempt, as the worker tracks it. */
export interface RunningActivity {
  task: ClaimedActivityTask;
  abort(reason: AbortReason): void;
  /** Why the attempt was aborted, if it was (the first reason). */
  readonly abortReason: AbortReason | undefined;
  /** The attempt's outcome; rejects only when an outcome could not even be encoded. */
  outcome: Promise<AttemptOutcome>;
}

/** What the runner needs from the worker. */
export interface ActivityRunnerDeps {
  backend: Backend;
  dc: DataConverter;
  log: Logger;
  /** Called after an attempt's heartbeat; for fault injection and tests. */
  onHeartbeat?: (task: ClaimedActivityTask) => void;
  /** Fault points (tests only). */
  fault?: (point: string, info: Record<string, unknown>) => Promise<void> | void;
}

/**
 * An attempt's abort state. The AbortController behind `ctx.signal` is made only when the activity
 * reads the signal: most activities never do, and a controller (an EventTarget plus its signal)
 * per attempt was 3% of a busy worker's CPU. An abort before the first read hands out a signal
 * that is already aborted, with the same reason.
 */
class AttemptAbort {
  reason: AbortReason | undefined;
  error: Error | undefined;
  private controller: AbortController | undefined;
  private rejectRace: ((err: Error) => void) | undefined;

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.error !== undefined) this.controller.abort(this.error);
    }
    return this.controller.signal;
  }

  /** Aborts once; later calls are ignored (the first reason is the one reported). */
  abort(reason: AbortReason, error: Error): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.error = error;
    this.controller?.abort(error);
    this.rejectRace?.(error);
  }

  /**
   * Runs `work` and settles with its outcome — or rejects at the abort, whichever comes first: an
   * activity that ignores its AbortSignal is not waited for.
   */
  race<T>(work: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.error !== undefined) {
        reject(this.error);
        return;
      }
      this.rejectRace = reject;
      Promise.resolve().then(work).then(resolve, reject);
    });
  }
}

/** Starts an attempt; the returned handle lets the worker abort it and await its outcome. */
export function startActivity(
  def: ActivityDefinition,
  task: ClaimedActivityTask,
  deps: ActivityRunnerDeps,
): RunningActivity {
  const state = new AttemptAbort();
  const abort = (reason: AbortReason) => {
    if (state.reason !== undefined) return;
    state.abort(
      reason,
      reason === "timeout"
        ? new TimeoutError(
            `activity "${task.name}" attempt ${task.attempt} exceeded its ${task.timeoutMs} ms timeout`,
            task.timeoutMs,
          )
        : reason === "heartbeat-timeout"
          ? new TimeoutError(
              `activity "${task.name}" attempt ${task.attempt} sent no heartbeat for ${task.heartbeatTimeoutMs} ms`,
              task.heartbeatTimeoutMs,
            )
          : new CancelledError(
              reason === "cancelled"
                ? "the activity's step was cancelled"
                : reason === "lease-lost"
                  ? "this attempt's lease was lost to another worker"
                  : "the worker is shutting down",
            ),
    );
  };
  const outcome = runAttempt(def, task, deps, state, abort);
  return {
    task,
    abort,
    get abortReason() {
      return state.reason;
    },
    outcome,
  };
}

async function runAttempt(
  def: ActivityDefinition,
  task: ClaimedActivityTask,
  deps: ActivityRunnerDeps,
  state: AttemptAbort,
  abort: (r: AbortReason) => void,
): Promise<AttemptOutcome> {
  const { backend, dc, log } = deps;
  const ref = { taskId: task.taskId, fence: task.fence };
  const timers: ReturnType<typeof setTimeout>[] = [];
  let heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  const armHeartbeatTimeout = () => {
    if (task.heartbeatTimeoutMs <= 0) return;
    if (heartbeatTimer) clearTimeout(heartbeatTimer);
    heartbeatTimer = setTimeout(() => abort("heartbeat-timeout"), task.heartbeatTimeoutMs);
  };
  if (task.corruption) {
    // The stored task failed its checksum: never run the activity on a damaged input.
    log.error("activity task is damaged in storage; its step fails without running", {
      runId: task.runId,
      step: task.step,
      activity: task.name,
      error: task.corruption.message,
    });
    return failed(dc, task, task.corruption, "validation", task.attempt, "once");
  }
  let input: unknown;
  try {
    // A synchronous codec (the default) spares a promise per attempt. The options (the retry
    // policy: timeouts come with the task) are decoded only when an attempt fails.
    input = dc.isSync ? dc.decodeSync(task.input) : await dc.decode(task.input);
  } catch (err) {
    return failed(dc, task, err, "validation", task.attempt, "once");
  }
  // An attempt past the first may follow one that never reported (its worker died, stalled past
  // its lease or shut down): that attempt counted, so the policy may not allow this one. Checked
  // only past the first attempt, so the common case decodes no options.
  if (task.attempt > 1) {
    const policy = await policyOf(dc, task).catch(() => undefined);
    if (policy !== undefined && task.attempt > policy.maxAttempts) {
      const last = policy.maxAttempts;
      const error = new ActivityInterruptedError(
        `activity "${task.name}" attempt ${last} of ${last} never reported an outcome: its lease ran out ` +
          "(the worker running it died, was killed, stalled, or shut down without finishing it). An attempt " +
          "that does not finish counts, and no attempt is left, so the step fails rather than run again. " +
          "The attempt's side effect may have happened: check it by the idempotency key " +
          `"${task.workflowId}/${task.step}".`,
      );
      log.warn("activity attempts exhausted by an attempt that never reported; the step fails", {
        activity: task.name,
        workflowId: task.workflowId,
        step: task.step,
        maxAttempts: last,
      });
      return failed(dc, task, error, "retries-exhausted", last, "durable");
    }
  }
  await deps.fault?.("activity.start", { taskId: task.taskId, runId: task.runId, step: task.step });
  if (task.timeoutMs > 0) timers.push(setTimeout(() => abort("timeout"), task.timeoutMs));
  armHeartbeatTimeout();

  let lastBeat = 0;
  let beating: Promise<void> | null = null;
  const ctx: ActivityContext = {
    attempt: task.attempt,
    get signal() {
      return state.signal;
    },
    idempotencyKey: `${task.workflowId}/${task.step}`,
    info: {
      activityName: task.name,
      workflowId: task.workflowId,
      runId: task.runId,
      step: task.step,
      attempt: task.attempt,
      scheduledAt: task.scheduledAt,
      deadline: task.timeoutMs > 0 ? Date.now() + task.timeoutMs : undefined,
    },
    heartbeat: () => {
      if (state.error !== undefined) throw state.error;
      armHeartbeatTimeout();
      deps.onHeartbeat?.(task);
      // Throttle: at most one backend write in flight, and not more often than a third of the lease.
      const lease = attemptLeaseMs(task.timeoutMs, task.heartbeatTimeoutMs, 300_000);
      const now = Date.now();
      if (beating || now - lastBeat < lease / 3) return;
      lastBeat = now;
      beating = backend
        .heartbeatActivityTask(ref, lease)
        .then(
          () => undefined,
          (err) => {
            if (ConflictError.is(err)) abort("lease-lost");
            else log.warn("activity heartbeat failed", { activity: task.name, error: String(err) });
          },
        )
        .finally(() => {
          beating = null;
        });
    },
  };

  let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
  try {
    const value = await state.race(() => def.handler(input as never, ctx));
    outcome = { ok: true, value: parseWith(def.outputSchema, value, `output of activity "${def.name}"`) };
  } catch (err) {
    outcome = { ok: false, error: err };
  } finally {
    for (const t of timers) clearTimeout(t);
    if (heartbeatTimer) clearTimeout(heartbeatTimer);
  }
  const reason = state.reason;
  if (reason === "cancelled" || reason === "lease-lost") {
    // The step was withdrawn or another worker owns the attempt now: nothing to report.
    log.debug("activity attempt abandoned", { activity: task.name, step: task.step, reason });
    return { kind: "abandoned", reason };
  }
  if (reason === "shutdown" && !outcome.ok) {
    // The attempt was cut short by the shutdown: it counts against maxAttempts (it may have done
    // its side effect). With attempts left, hand it back at once so another worker can take it;
    // with none left, fail the step saying why, rather than run it once more than allowed.
    const policy = await policyOf(dc, task).catch(() => undefined);
    if (policy !== undefined && task.attempt >= policy.maxAttempts) {
      const error = new ActivityInterruptedError(
        `activity "${task.name}" attempt ${task.attempt} of ${policy.maxAttempts} was interrupted by worker ` +
          "shutdown (it had not finished when the shutdown grace period ran out, and did not stop on its " +
          "AbortSignal). An interrupted attempt counts, and no attempt is left, so the step fails rather " +
          "than run again. Its side effect may have happened: check it by the idempotency key " +
          `"${task.workflowId}/${task.step}".`,
        { cause: outcome.error },
      );
      return failed(dc, task, error, "retries-exhausted", task.attempt, "best-effort").catch(
        (): AttemptOutcome => ({ kind: "abandoned", reason }),
      );
    }
    return { kind: "interrupted", error: await encodeError(dc, outcome.error) };
  }
  await deps.fault?.("activity.before-complete", {
    taskId: task.taskId,
    runId: task.runId,
    workflowId: task.workflowId,
    step: task.step,
    attempt: task.attempt,
    name: task.name,
  });
  if (outcome.ok) return completed(dc, task, outcome.value);
  let policy: ResolvedRetryPolicy;
  try {
    policy = await policyOf(dc, task);
  } catch (err) {
    // Unreadable options: no retry policy to follow, so the step fails for good, saying why.
    return failed(dc, task, err, "validation", task.attempt, "durable");
  }
  const decision = retryDecision(policy, task.attempt, outcome.error);
  if (decision.retry) {
    return {
      kind: "retry",
      error: await encodeError(dc, outcome.error),
      delayMs: decision.delayMs,
      attempt: task.attempt,
      maxAttempts: policy.maxAttempts,
      message: errorMessage(outcome.error),
    };
  }
  const failReason = TimeoutError.is(outcome.error)
    ? "timeout"
    : ValidationError.is(outcome.error)
      ? "validation"
      : decision.reason;
  return failed(dc, task, outcome.error, failReason, task.attempt, "durable");
}

/**
 * A completed attempt, its ActivityCompleted body encoded. A result that cannot be stored (too
 * large, not serialisable) fails the step for good with that reason instead.
 */
async function completed(
  dc: DataConverter,
  task: ClaimedActivityTask,
  result: unknown,
): Promise<AttemptOutcome> {
  let body: Uint8Array;
  try {
    body = await encodeBody(
      { type: "ActivityCompleted", result, attempt: task.attempt },
      dc,
      `result of activity "${task.name}"`,
    );
  } catch (err) {
    return failed(dc, task, err, "validation", task.attempt, "durable");
  }
  return { kind: "completed", result, attempt: task.attempt, body, delivery: "durable" };
}

/**
 * A failed step, its ActivityFailed body encoded. The error is kept as stored (shrunk to fit the
 * payload limit when it must be): the eager path keeps the event in the cached executor, which
 * must hold what a replay would read.
 */
async function failed(
  dc: DataConverter,
  task: ClaimedActivityTask,
  err: unknown,
  reason: ActivityFailReason,
  attempt: number,
  delivery: OutcomeDelivery,
): Promise<AttemptOutcome> {
  const encoded = await dc.encodeError(
    serializeError(err),
    (e) => ({ error: e, attempt, reason }),
    `error of activity "${task.name}"`,
  );
  return { kind: "failed", error: encoded.error, attempt, reason, body: encoded.bytes, delivery };
}

/** The attempt's retry policy, as recorded with its step. @throws when the options cannot be decoded */
async function policyOf(dc: DataConverter, task: ClaimedActivityTask): Promise<ResolvedRetryPolicy> {
  const options = (await dc.decode(task.options)) as RecordedActivityOptions;
  return decodeRetryPolicy(options.retry);
}

async function encodeError(dc: DataConverter, err: unknown): Promise<Uint8Array> {
  return (await dc.encodeError(serializeError(err), (e) => e, "activity error")).bytes;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
