/**
 * Records what an activity attempt came to (the runner's AttemptOutcome). A completion or a
 * failure goes, when the run's executor is cached on this worker, through the activation pipeline
 * together with the activation it triggers (the eager path: one commit instead of three); else
 * into the run's inbox. A retry or a hand-back goes to the task. A full disk is waited out where
 * the outcome must not be lost. A report the backend rejects (ConflictError: the lease was lost
 * while the attempt ran) fires the attempt's AbortSignal with that reason, as a late heartbeat
 * would, so work the activity left running learns that its result was discarded.
 */
import {
  type Backend,
  type ClaimedActivityTask,
  ConflictError,
  type NewInboundEvent,
  parksWhenThrownByEngine,
  StorageFullError,
  type WorkflowDefinition,
} from "@spool/core";
import type { ActivationPipeline } from "./activation-pipeline.ts";
import type { AttemptOutcome, RunningActivity } from "./activity-runner.ts";
import type { StorageBackoff } from "./backoff.ts";
import type { Logger } from "./logger.ts";
import type { RunCache } from "./run-cache.ts";

/** What the reporter needs from the worker. */
export interface ActivityReporterDeps {
  backend: Backend;
  log: Logger;
  storage: StorageBackoff;
  /**
   * When a failed attempt that will be retried is logged at WARN rather than DEBUG: from attempt
   * `after`, then every `every` attempts (see WorkerOptions.activityFailureWarn).
   */
  failureWarn?: { after: number; every: number };
  /** The eager path; absent when this worker runs no workflows. */
  eager?: {
    cache: RunCache;
    workflows: ReadonlyMap<string, WorkflowDefinition>;
    pipeline: ActivationPipeline;
  };
}

type Reported = AttemptOutcome & { kind: "completed" | "failed" };

/** Records attempt outcomes; see the file header. */
export class ActivityReporter {
  constructor(private readonly deps: ActivityReporterDeps) {}

  /**
   * Records an attempt's outcome. Resolves with the activity tasks an eager commit claimed for
   * this worker (to be run by the caller), else none.
   * @throws what the backend throws, except the conflicts and full disks handled here.
   */
  async record(running: RunningActivity, outcome: AttemptOutcome): Promise<readonly ClaimedActivityTask[]> {
    const { backend } = this.deps;
    const task = running.task;
    const ref = { taskId: task.taskId, fence: task.fence };
    switch (outcome.kind) {
      case "abandoned":
        return NONE;
      case "interrupted":
        // The error was encoded first: a time read from the backend's clock goes straight into the
        // call (a clock step reconciled across an await would leave it on the old anchor).
        await backend.retryActivityTask(ref, backend.now(), outcome.error).catch(() => undefined);
        return NONE;
      case "retry": {
        const retryAt = backend.now() + outcome.delayMs;
        this.logRetry(task, outcome, retryAt);
        try {
          await backend.retryActivityTask(ref, retryAt, outcome.error);
        } catch (err) {
          if (!ConflictError.is(err)) throw err;
          running.abort("lease-lost");
        }
        return NONE;
      }
      default:
        break;
    }
    if (outcome.delivery === "once") return (await this.deliver(task, outcome, undefined)).claimed;
    if (outcome.delivery === "best-effort") {
      return this.deliver(task, outcome, () => true).then(
        (r) => r.claimed,
        () => NONE,
      );
    }
    const r = await this.deliver(task, outcome, () => running.abortReason === "shutdown");
    if (!r.accepted) running.abort("lease-lost");
    return r.claimed;
  }

  /**
   * Reports an outcome: eagerly with the activation it triggers, else into the run's inbox. With
   * `giveUp` (a durable report), a full disk (StorageFullError) is waited out with back-off: the
   * side effect has already happened, so dropping the outcome would make another attempt repeat
   * it once the lease runs out; it gives up on `giveUp()` (the lease then hands the step to
   * another worker) and on any other error. Without, one try. One function, not one per layer:
   * the eager path is the step path, and each async layer is a few microtask hops per step.
   */
  private async deliver(
    task: ClaimedActivityTask,
    outcome: Reported,
    giveUp: (() => boolean) | undefined,
  ): Promise<{ accepted: boolean; claimed: readonly ClaimedActivityTask[] }> {
    for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2000)) {
      try {
        const claimed = await this.completeEagerly(task, outcome);
        const r = claimed !== null ? { accepted: true, claimed } : await this.completeInInbox(task, outcome);
        if (giveUp !== undefined) this.deps.storage.ok();
        return r;
      } catch (err) {
        if (giveUp === undefined || !StorageFullError.is(err) || giveUp()) throw err;
        this.deps.storage.full(err);
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  /** The normal path: the outcome goes into the run's inbox, for a workflow task to apply. */
  private async completeInInbox(
    task: ClaimedActivityTask,
    outcome: Reported,
  ): Promise<{ accepted: boolean; claimed: readonly ClaimedActivityTask[] }> {
    const type = outcome.kind === "completed" ? "ActivityCompleted" : "ActivityFailed";
    try {
      await this.deps.backend.completeActivityTask(
        { taskId: task.taskId, fence: task.fence },
        { type, body: outcome.body },
      );
    } catch (err) {
      if (ConflictError.is(err)) {
        this.deps.log.debug("late activity completion rejected (stale attempt)", {
          activity: task.name,
          step: task.step,
        });
        return { accepted: false, claimed: NONE };
      }
      throw err;
    }
    return { accepted: true, claimed: NONE };
  }

  /**
   * The eager path: the run's executor is cached here, so the outcome and the activation it
   * triggers commit in ONE transaction (guarded by the run's sequence number and the attempt's
   * fence) instead of three (completion, claim, activation). Returns the tasks the commit claimed,
   * or null when the normal path must be taken (not cached, or the guard failed — nothing was
   * written then, and the pipeline dropped the cached executor).
   */
  private async completeEagerly(
    task: ClaimedActivityTask,
    outcome: Reported,
  ): Promise<readonly ClaimedActivityTask[] | null> {
    const eager = this.deps.eager;
    if (eager === undefined) return null;
    const cached = eager.cache.take(task.runId);
    if (!cached) return null;
    const { executor, run } = cached;
    const definition = eager.workflows.get(run.workflowName);
    if (executor.seq !== run.lastSeq || executor.isClosed || !definition) {
      eager.cache.put(cached);
      return null;
    }
    const ts = this.deps.backend.now();
    const event: NewInboundEvent =
      outcome.kind === "completed"
        ? { type: "ActivityCompleted", step: task.step, ts, result: outcome.result, attempt: outcome.attempt }
        : {
            type: "ActivityFailed",
            step: task.step,
            ts,
            error: outcome.error,
            attempt: outcome.attempt,
            reason: outcome.reason,
          };
    try {
      const result = await eager.pipeline.run({
        executor,
        run,
        definition,
        inbound: [event],
        stored: [{ event, body: outcome.body }],
        fence: undefined,
        completedActivity: { taskId: task.taskId, fence: task.fence },
      });
      return result.claimedActivities;
    } catch (err) {
      if (ConflictError.is(err) || parksWhenThrownByEngine(err)) return null;
      throw err;
    }
  }

  /**
   * A step failing again and again looks healthy from outside unless someone says so: from the
   * threshold on (and every Nth attempt after) it is a warning, with when it runs next.
   */
  private logRetry(
    task: ClaimedActivityTask,
    outcome: AttemptOutcome & { kind: "retry" },
    retryAt: number,
  ): void {
    const { log } = this.deps;
    const warn = this.deps.failureWarn ?? { after: 3, every: 10 };
    const loud = task.attempt >= warn.after && (task.attempt - warn.after) % Math.max(1, warn.every) === 0;
    (loud ? log.warn : log.debug).call(log, "activity attempt failed; retrying", {
      activity: task.name,
      workflowId: task.workflowId,
      step: task.step,
      attempt: task.attempt,
      maxAttempts: Number.isFinite(outcome.maxAttempts) ? outcome.maxAttempts : "unlimited",
      error: outcome.message,
      nextAttemptAt: new Date(retryAt).toISOString(),
    });
  }
}

const NONE: readonly ClaimedActivityTask[] = [];
