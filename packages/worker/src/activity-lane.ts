/**
 * The activity side of a worker: claims activity tasks into its slots (a TaskPoller), runs each
 * attempt (activity-runner.ts), has its outcome recorded (activity-reporter.ts), and runs the
 * tasks an eager commit claimed for this worker. It aborts attempts whose step was cancelled, and
 * those still running when the shutdown grace period is over.
 */
import type { ActivityDefinition, Backend, ClaimedActivityTask } from "@spool/core";
import type { ActivityReporter } from "./activity-reporter.ts";
import {
  type AbortReason,
  type ActivityRunnerDeps,
  type RunningActivity,
  startActivity,
} from "./activity-runner.ts";
import type { Logger } from "./logger.ts";
import { TaskPoller } from "./task-poller.ts";

/** What the lane needs from the worker. */
export interface ActivityLaneDeps {
  backend: Backend;
  log: Logger;
  workerId: string;
  activities: ReadonlyMap<string, ActivityDefinition>;
  /** Names of the registered activities (sent with every claim). */
  activityNames: string[];
  maxConcurrent: number;
  runner: ActivityRunnerDeps;
  reporter: ActivityReporter;
  /** Asks the pump for a round. */
  wake: () => void;
  /** False once the worker drains. */
  isRunning: () => boolean;
  /** True while storage is full (a claim round is a probe). */
  probing: () => boolean;
}

/** Claims, runs and reports activity attempts; see the file header. */
export class ActivityLane {
  private readonly poller: TaskPoller<ClaimedActivityTask>;
  /** Running attempts by task id, to abort them (cancellation, shutdown). */
  private readonly running = new Map<string, RunningActivity>();

  constructor(private readonly deps: ActivityLaneDeps) {
    const { backend, workerId, activityNames, maxConcurrent } = deps;
    this.poller = new TaskPoller<ClaimedActivityTask>(
      {
        maxConcurrent,
        // Capped by the free slots only: one activation can make hundreds of tasks ready (a
        // fan-out), and with 16 claims per round the loop waited for a group commit (an fsync at
        // full durability) per 16 tasks while slots sat free.
        maxBatch: maxConcurrent,
        claim: () => backend.claimActivityTask({ workerId, activityNames }),
        run: (task) => this.run(task),
      },
      deps.wake,
      deps.isRunning,
      deps.probing,
    );
  }

  /** Attempts running now. */
  get size(): number {
    return this.poller.size;
  }

  /** Slots free now. */
  get free(): number {
    return this.poller.free;
  }

  /** Claims into the free slots; resolves true when something was claimed. */
  poll(): Promise<boolean> {
    return this.poller.poll();
  }

  /** Aborts the attempt of a task, if it runs here. */
  abort(taskId: string, reason: AbortReason): void {
    this.running.get(taskId)?.abort(reason);
  }

  /** Aborts every attempt running here. */
  abortAll(reason: AbortReason): void {
    for (const r of this.running.values()) r.abort(reason);
  }

  /** Resolves when every attempt running now has been reported. */
  settled(): Promise<unknown> {
    return this.poller.settled();
  }

  /**
   * Runs the activity tasks an activation claimed for this worker — unless it is draining: then
   * they are handed back at once (awaited by the caller, so shutdown waits for it). Started
   * during a drain, they would be missed by shutdown and left leased, to be re-run elsewhere
   * only when the lease ran out.
   */
  async runClaimed(tasks: readonly ClaimedActivityTask[]): Promise<void> {
    if (tasks.length === 0) return;
    if (this.deps.isRunning()) {
      for (const t of tasks) this.poller.start(t);
      return;
    }
    // Never started, so not counted: the next claim gets the same attempt number (a counted
    // hand-back would use up a `maxAttempts: 1` step that never ran).
    await Promise.all(
      tasks.map((t) =>
        this.deps.backend.releaseActivityTask({ taskId: t.taskId, fence: t.fence }).catch(() => undefined),
      ),
    );
  }

  /** Runs an attempt and records its outcome (never rejects: a failed report is logged). */
  private async run(task: ClaimedActivityTask): Promise<void> {
    const def = this.deps.activities.get(task.name);
    if (!def) return; // claimed only by name; cannot happen
    const running = startActivity(def, task, this.deps.runner);
    this.running.set(task.taskId, running);
    try {
      const claimed = await this.deps.reporter.record(running, await running.outcome);
      await this.runClaimed(claimed);
    } catch (err) {
      this.deps.log.error("activity report failed", { activity: task.name, error: String(err) });
    } finally {
      this.running.delete(task.taskId);
    }
  }
}
