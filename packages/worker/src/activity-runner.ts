/**
 * Runs one activity attempt: decodes its input, gives the function an AbortSignal, a heartbeat
 * and an idempotency key, enforces the start-to-close and heartbeat timeouts, checks the output
 * against its schema, and reports the outcome: completed, retry later (per the retry policy), or
 * failed for good. A report from an attempt whose lease was lost is rejected by the backend's
 * fencing token and dropped here.
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
  type NewInboundEvent,
  parseWith,
  type RecordedActivityOptions,
  type ResolvedRetryPolicy,
  retryDecision,
  StorageFullError,
  serializeError,
  TimeoutError,
  ValidationError,
} from "@spool/core";
import type { Logger } from "./logger.ts";

/** Why a running attempt was aborted by the worker. */
export type AbortReason = "timeout" | "heartbeat-timeout" | "cancelled" | "lease-lost" | "shutdown";

/** A running attempt, as the worker tracks it. */
export interface RunningActivity {
  task: ClaimedActivityTask;
  abort(reason: AbortReason): void;
  done: Promise<void>;
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
  /**
   * Tries to record the outcome together with the activation it triggers (the eager path);
   * resolves false when the normal path (the run's inbox) must be used.
   */
  completeEagerly?: (task: ClaimedActivityTask, event: NewInboundEvent) => Promise<boolean>;
  /** Told when an outcome could not be stored for lack of space, and when storing works again. */
  storage?: { full(err: unknown): void; ok(): void };
  /**
   * When a failed attempt that will be retried is logged at WARN rather than DEBUG: from attempt
   * `after`, then every `every` attempts (see WorkerOptions.activityFailureWarn).
   */
  failureWarn?: { after: number; every: number };
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

/** Starts an attempt; the returned handle lets the worker abort it. */
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
  const done = runAttempt(def, task, deps, state, abort);
  return { task, abort, done };
}

async function runAttempt(
  def: ActivityDefinition,
  task: ClaimedActivityTask,
  deps: ActivityRunnerDeps,
  state: AttemptAbort,
  abort: (r: AbortReason) => void,
): Promise<void> {
  const reasonOf = () => state.reason;
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
    await report(deps, task, { ok: false, error: task.corruption, reason: "validation" });
    return;
  }
  let input: unknown;
  try {
    // A synchronous codec (the default) spares a promise per attempt. The options (the retry
    // policy: timeouts come with the task) are decoded only when an attempt fails.
    input = dc.isSync ? dc.decodeSync(task.input) : await dc.decode(task.input);
  } catch (err) {
    await report(deps, task, { ok: false, error: err, reason: "validation" });
    return;
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
      const outcome = { ok: false, error, reason: "retries-exhausted", attempt: last } as const;
      if (!(await reportDurably(deps, task, outcome, () => state.reason === "shutdown"))) abort("lease-lost");
      return;
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
  const reason = reasonOf();
  if (reason === "cancelled" || reason === "lease-lost") {
    // The step was withdrawn or another worker owns the attempt now: nothing to report.
    log.debug("activity attempt abandoned", { activity: task.name, step: task.step, reason });
    return;
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
      await reportDurably(deps, task, { ok: false, error, reason: "retries-exhausted" }, () => true).catch(
        () => undefined,
      );
      return;
    }
    // The error is encoded first: a time read from the backend's clock goes straight into the call
    // (a clock step reconciled across an await would leave it on the old anchor).
    const error = await encodeError(dc, outcome.error);
    await backend.retryActivityTask(ref, backend.now(), error).catch(() => undefined);
    return;
  }
  await deps.fault?.("activity.before-complete", {
    taskId: task.taskId,
    runId: task.runId,
    workflowId: task.workflowId,
    step: task.step,
    attempt: task.attempt,
    name: task.name,
  });
  // A report the backend rejects (ConflictError) means the lease was lost while the attempt ran:
  // fire the attempt's AbortSignal with that reason, as a late heartbeat would, so work the
  // activity left running on ctx.signal learns that its result was discarded.
  const shuttingDown = () => reasonOf() === "shutdown";
  if (outcome.ok) {
    if (!(await reportDurably(deps, task, outcome, shuttingDown))) abort("lease-lost");
    return;
  }
  let policy: ResolvedRetryPolicy;
  try {
    policy = await policyOf(dc, task);
  } catch (err) {
    // Unreadable options: no retry policy to follow, so the step fails for good, saying why.
    if (!(await reportDurably(deps, task, { ok: false, error: err, reason: "validation" }, shuttingDown)))
      abort("lease-lost");
    return;
  }
  const decision = retryDecision(policy, task.attempt, outcome.error);
  if (decision.retry) {
    // The error is encoded before the clock is read: a time read from the backend's clock goes
    // straight into the call (a clock step reconciled across an await would leave it on the old
    // anchor).
    const error = await encodeError(dc, outcome.error);
    const retryAt = backend.now() + decision.delayMs;
    // A step failing again and again looks healthy from outside unless someone says so: from
    // the threshold on (and every Nth attempt after) it is a warning, with when it runs next.
    const warn = deps.failureWarn ?? { after: 3, every: 10 };
    const loud = task.attempt >= warn.after && (task.attempt - warn.after) % Math.max(1, warn.every) === 0;
    (loud ? log.warn : log.debug).call(log, "activity attempt failed; retrying", {
      activity: task.name,
      workflowId: task.workflowId,
      step: task.step,
      attempt: task.attempt,
      maxAttempts: Number.isFinite(policy.maxAttempts) ? policy.maxAttempts : "unlimited",
      error: errorMessage(outcome.error),
      nextAttemptAt: new Date(retryAt).toISOString(),
    });
    try {
      await backend.retryActivityTask(ref, retryAt, error);
    } catch (err) {
      if (!ConflictError.is(err)) throw err;
      abort("lease-lost");
    }
    return;
  }
  const failReason = TimeoutError.is(outcome.error)
    ? "timeout"
    : ValidationError.is(outcome.error)
      ? "validation"
      : decision.reason;
  if (
    !(await reportDurably(deps, task, { ok: false, error: outcome.error, reason: failReason }, shuttingDown))
  )
    abort("lease-lost");
}

/**
 * Reports an outcome, waiting out a full disk (StorageFullError) with back-off: the side effect
 * has already happened, so dropping the outcome would make another attempt repeat it once the
 * lease runs out. Gives up on shutdown (the lease then hands the step to another worker) and on
 * any other error.
 */
async function reportDurably(
  deps: ActivityRunnerDeps,
  task: ClaimedActivityTask,
  outcome: Parameters<typeof report>[2],
  giveUp: () => boolean,
): Promise<boolean> {
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2000)) {
    try {
      const accepted = await report(deps, task, outcome);
      deps.storage?.ok();
      return accepted;
    } catch (err) {
      if (!StorageFullError.is(err) || giveUp()) throw err;
      deps.storage?.full(err);
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

/** The attempt's retry policy, as recorded with its step. @throws when the options cannot be decoded */
async function policyOf(dc: DataConverter, task: ClaimedActivityTask): Promise<ResolvedRetryPolicy> {
  const options = (await dc.decode(task.options)) as RecordedActivityOptions;
  return decodeRetryPolicy(options.retry);
}

async function encodeError(dc: DataConverter, err: unknown): Promise<Uint8Array> {
  return (await dc.encodeError(serializeError(err), (e) => e, "activity error")).bytes;
}

async function report(
  deps: ActivityRunnerDeps,
  task: ClaimedActivityTask,
  outcome:
    | { ok: true; value: unknown }
    | {
        ok: false;
        error: unknown;
        reason: "retries-exhausted" | "non-retryable" | "timeout" | "cancelled" | "validation";
        /** The attempt to record, when not this claim's (a claim past the last allowed attempt). */
        attempt?: number;
      },
): Promise<boolean> {
  const { backend, dc, log } = deps;
  const ref = { taskId: task.taskId, fence: task.fence };
  const attempt = (!outcome.ok && outcome.attempt) || task.attempt;
  // The error as it will be stored (shrunk to fit the payload limit when it must be): the eager
  // path keeps the event in the cached executor, which must hold what a replay would read.
  const error = outcome.ok
    ? undefined
    : (
        await dc.encodeError(
          serializeError(outcome.error),
          (e) => ({ error: e, attempt, reason: outcome.reason }),
          `error of activity "${task.name}"`,
        )
      ).error;
  if (deps.completeEagerly) {
    const ts = backend.now();
    const event: NewInboundEvent = outcome.ok
      ? { type: "ActivityCompleted", step: task.step, ts, result: outcome.value, attempt: task.attempt }
      : {
          type: "ActivityFailed",
          step: task.step,
          ts,
          error: error!,
          attempt,
          reason: outcome.reason,
        };
    if (await deps.completeEagerly(task, event)) return true;
  }
  let body: Uint8Array;
  let type: "ActivityCompleted" | "ActivityFailed";
  try {
    if (outcome.ok) {
      type = "ActivityCompleted";
      body = await encodeBody(
        { type, result: outcome.value, attempt: task.attempt },
        dc,
        `result of activity "${task.name}"`,
      );
    } else {
      type = "ActivityFailed";
      body = await encodeBody({ type, error: error!, attempt, reason: outcome.reason }, dc);
    }
  } catch (err) {
    // The result cannot be stored (too large, not serialisable): fail the step for good with that reason.
    type = "ActivityFailed";
    body = await encodeBody({ type, error: serializeError(err), attempt, reason: "validation" }, dc);
  }
  try {
    await backend.completeActivityTask(ref, { type, body });
  } catch (err) {
    if (ConflictError.is(err)) {
      log.debug("late activity completion rejected (stale attempt)", {
        activity: task.name,
        step: task.step,
      });
      return false;
    }
    throw err;
  }
  return true;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
