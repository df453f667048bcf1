/**
 * The Worker: claims workflow and activity tasks from a backend, replays workflows, runs
 * activities, fires timers. It is a composition of parts, each in its own file:
 * - options.ts: the options, validated, with their defaults;
 * - registry.ts: the worker's entry in the backend's registry (heartbeat, dead-worker sweep);
 * - pump.ts: the claim loop (when to claim: notifications, freed slots, timers, polling);
 * - task-poller.ts: one generic poller per kind of task (slots, batches, starvation);
 * - workflow-task.ts and activation-pipeline.ts: a workflow task, and the one path from inbound
 *   events to a committed activation;
 * - activity-lane.ts, activity-runner.ts and activity-reporter.ts: the activity slots, an attempt
 *   (which returns its outcome), and the recording of that outcome (eagerly through the same
 *   pipeline when the run is cached here);
 * - backoff.ts and unknown-work.ts: storage-full and blocked-run back-off; unhosted work.
 * Data flows one way: each part returns to its caller; none calls back into the Worker.
 */
import {
  type ActivityDefinition,
  type Backend,
  type BackendNotification,
  type ClaimedWorkflowTask,
  DataConverter,
  InvalidOptionsError,
  type NewInboundEvent,
  type RunRecord,
  type WorkflowDefinition,
  type WorkflowExecutor,
} from "@spool/core";
import { ActivationPipeline } from "./activation-pipeline.ts";
import { ActivityLane } from "./activity-lane.ts";
import { ActivityReporter } from "./activity-reporter.ts";
import { BlockedRunBackoff, StorageBackoff } from "./backoff.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { type ResolvedWorkerOptions, resolveWorkerOptions, type WorkerOptions } from "./options.ts";
import { Pump } from "./pump.ts";
import { WorkerRegistry } from "./registry.ts";
import { RunCache } from "./run-cache.ts";
import { TaskPoller } from "./task-poller.ts";
import { UnknownWorkReporter } from "./unknown-work.ts";
import { processWorkflowTask, rebuildExecutor, type WorkflowTaskDeps } from "./workflow-task.ts";

/**
 * Workflow-task claims issued at once per round (they share one transaction on a group-committing
 * backend). Activity claims are not capped by it: see activity-lane.ts.
 */
const CLAIM_BATCH = 16;

/**
 * Runs workflows and activities from a backend until shut down.
 *
 * @example
 * ```ts
 * const worker = new Worker({ backend, workflows: [order], activities: [charge] });
 * await worker.start();
 * // ...
 * await worker.shutdown();
 * ```
 */
export class Worker {
  readonly workerId: string;
  private readonly backend: Backend;
  private readonly opts: ResolvedWorkerOptions;
  private readonly workflows: Map<string, WorkflowDefinition>;
  private readonly activities: Map<string, ActivityDefinition>;
  private readonly dc: DataConverter;
  private readonly log: Logger;
  private readonly cache: RunCache;
  private state: "new" | "running" | "draining" | "stopped" = "new";
  private readonly signals: (() => void)[] = [];
  private unsubscribe: (() => void) | null = null;
  private readonly storage: StorageBackoff;
  private readonly blocked: BlockedRunBackoff;
  private readonly registry: WorkerRegistry;
  private readonly unknownWork: UnknownWorkReporter;
  private readonly pump: Pump;
  private readonly workflowTasks: TaskPoller<ClaimedWorkflowTask>;
  private readonly activityTasks: ActivityLane;
  /** What every workflow task needs: built once, not per task. */
  private readonly taskDeps: WorkflowTaskDeps;

  constructor(options: WorkerOptions) {
    const o = resolveWorkerOptions(options);
    this.opts = o;
    this.backend = o.backend;
    this.workerId = o.workerId;
    this.workflows = o.workflows;
    this.activities = o.activities;
    this.log = o.log;
    this.dc = new DataConverter({ codec: o.codec, maxPayloadBytes: o.maxPayloadBytes });
    this.cache = new RunCache(o.maxCachedRuns);
    this.storage = new StorageBackoff(this.log, this.workerId);
    this.blocked = new BlockedRunBackoff(o.blockedRetry);
    this.registry = new WorkerRegistry(
      this.backend,
      this.log,
      {
        workerId: this.workerId,
        workflowNames: [...this.workflows.keys()],
        activityNames: o.activityNames,
        liveness: o.liveness,
      },
      () => this.pump.wake(),
    );
    this.unknownWork = new UnknownWorkReporter(this.backend, this.log, o.unknownWorkCheck, () =>
      this.registry.registration(),
    );
    const isRunning = () => this.state === "running";
    this.pump = new Pump({
      backend: this.backend,
      log: this.log,
      storage: this.storage,
      pollIntervalMs: o.pollIntervalMs,
      round: () => this.claimRound(),
      isRunning,
    });
    const wake = () => this.pump.wake();
    const probing = () => this.storage.probing;
    const workflowNames = [...this.workflows.keys()];
    this.workflowTasks = new TaskPoller<ClaimedWorkflowTask>(
      {
        maxConcurrent: o.maxConcurrentWorkflowTasks,
        maxBatch: CLAIM_BATCH,
        claim: () =>
          this.backend.claimWorkflowTask({
            workerId: this.workerId,
            workflowNames,
            leaseMs: o.workflowTaskLeaseMs,
          }),
        beforeRun: (task) => o.faultHook?.("workflow.after-claim", { runId: task.run.runId }),
        run: (task) => this.runWorkflowTask(task),
      },
      wake,
      isRunning,
      probing,
    );
    const pipeline = new ActivationPipeline({
      backend: this.backend,
      dc: this.dc,
      cache: this.cache,
      workflows: this.workflows,
      workerId: this.workerId,
      activityNames: o.activityNames,
      // A draining worker claims nothing new, eagerly or not.
      eagerSlots: () =>
        this.activities.size > 0 && this.state === "running"
          ? Math.max(0, Math.min(o.eagerActivities, this.activityTasks.free))
          : 0,
      fault: o.faultHook,
    });
    this.taskDeps = {
      backend: this.backend,
      dc: this.dc,
      log: this.log,
      cache: this.cache,
      workflows: this.workflows,
      strict: o.strictDeterminism,
      blockedBackoff: (runId) => this.blocked.next(runId),
      historyLimits: o.historyLimits,
      pipeline,
    };
    const reporter = new ActivityReporter({
      backend: this.backend,
      log: this.log,
      storage: this.storage,
      failureWarn: o.activityFailureWarn,
      eager: this.workflows.size > 0 ? { cache: this.cache, workflows: this.workflows, pipeline } : undefined,
    });
    this.activityTasks = new ActivityLane({
      backend: this.backend,
      log: this.log,
      workerId: this.workerId,
      activities: this.activities,
      activityNames: o.activityNames,
      maxConcurrent: o.maxConcurrentActivities,
      // What every attempt needs: built once, not per attempt (the hot path).
      runner: { backend: this.backend, dc: this.dc, log: this.log, fault: o.faultHook },
      reporter,
      wake,
      isRunning,
      probing,
    });
  }

  /** Starts claiming work. Resolves once the worker is running; work continues until shutdown(). */
  async start(): Promise<void> {
    if (this.state !== "new") throw new InvalidOptionsError(`worker ${this.workerId} was already started`);
    await this.backend.init();
    await this.registry.register();
    this.state = "running";
    this.unsubscribe = this.backend.subscribe((n) => this.onNotification(n));
    // New code may fix runs that were parked: offer them again now rather than after their back-off.
    const retried = await this.backend.retryBlockedRuns([...this.workflows.keys()]);
    if (retried > 0) this.log.info("re-offering blocked runs to the new code", { count: retried });
    this.unknownWork.start();
    await this.registry.start();
    // Say what this worker runs: work of any other name waits for another worker.
    const { workflowNames, activityNames } = this.registry.registration();
    this.log.info("worker started", {
      workerId: this.workerId,
      workflows: workflowNames,
      activities: activityNames,
    });
    this.pump.wake();
  }

  /**
   * Stops claiming, waits up to the grace period for in-flight activations and activities, then
   * aborts what is left and hands its tasks back so another worker can take them.
   */
  async shutdown(): Promise<void> {
    if (this.state === "stopped" || this.state === "new") {
      this.state = "stopped";
      return;
    }
    this.state = "draining";
    this.unsubscribe?.();
    this.pump.stop();
    this.unknownWork.stop();
    this.registry.stop();
    const all = () => Promise.all([this.workflowTasks.settled(), this.activityTasks.settled()]);
    const grace = new Promise<"timeout">((r) => {
      const t = setTimeout(() => r("timeout"), this.opts.shutdownGraceMs);
      t.unref?.();
    });
    const outcome = await Promise.race([all().then(() => "done" as const), grace]);
    if (outcome === "timeout") {
      this.log.warn("shutdown grace period over: aborting running activities", {
        running: this.activityTasks.size,
      });
      this.activityTasks.abortAll("shutdown");
      await all();
    }
    this.cache.clear();
    await this.registry.unregister();
    this.state = "stopped";
    for (const s of this.signals.splice(0)) s();
  }

  /**
   * Shuts down gracefully on SIGTERM and SIGINT (for long-running processes such as the demo and
   * the CLI). Returns a function that removes the handlers.
   */
  handleSignals(onStopped?: () => void): () => void {
    const handler = () => {
      this.log.info("signal received: draining in-flight work", { workerId: this.workerId });
      void this.shutdown().then(() => onStopped?.());
    };
    process.once("SIGTERM", handler);
    process.once("SIGINT", handler);
    return () => {
      process.off("SIGTERM", handler);
      process.off("SIGINT", handler);
    };
  }

  /** Resolves when the worker has stopped. */
  stopped(): Promise<void> {
    if (this.state === "stopped") return Promise.resolve();
    return new Promise((r) => this.signals.push(r));
  }

  /** Counters for monitoring and tests. */
  stats(): {
    cachedRuns: number;
    evictions: number;
    runningActivities: number;
    workflowTasksInFlight: number;
  } {
    return {
      cachedRuns: this.cache.size,
      evictions: this.cache.evictions,
      runningActivities: this.activityTasks.size,
      workflowTasksInFlight: this.workflowTasks.size,
    };
  }

  /**
   * The live executor of a run, from the cache or rebuilt from history (read-only use: queries).
   * With `at` (a client's consistent snapshot), the state at `at.run.lastSeq` with the waiting
   * inbox events applied, so a query reads every acknowledged signal. Returns undefined when this
   * worker does not have the run's workflow code.
   */
  async executorFor(
    runId: string,
    at?: { run: RunRecord; inbox: readonly NewInboundEvent[] },
  ): Promise<WorkflowExecutor | undefined> {
    const cached = this.cache.peek(runId)?.executor;
    const run = at?.run ?? (await this.backend.inspect.getRun(runId));
    if (!run) return undefined;
    const inbox = at?.inbox ?? [];
    if (cached && cached.seq === run.lastSeq && inbox.length === 0) return cached;
    const def = this.workflows.get(run.workflowName);
    if (!def) return undefined;
    // A throwaway executor: applying the inbox runs the code live, which must neither touch the
    // cached executor nor log as if the run had moved.
    const ex = await rebuildExecutor(run, def, {
      backend: this.backend,
      dc: this.dc,
      log: inbox.length > 0 ? silentLogger : this.log,
      strict: false,
      historyLimits: this.opts.historyLimits,
    });
    if (inbox.length > 0) await ex.apply(inbox, this.backend.now());
    return ex;
  }

  /**
   * True when nothing is in flight: no activation being processed, no activity running, the
   * claim loop at rest. Test environments use it to decide when to skip virtual time ahead.
   */
  isIdle(): boolean {
    return !this.pump.busy && this.workflowTasks.size === 0 && this.activityTasks.size === 0;
  }

  /** Runs the claim loop now (e.g. after moving a virtual clock forward). */
  wakeNow(): void {
    this.pump.wake();
  }

  /** The workflow definitions this worker runs. */
  get workflowDefinitions(): ReadonlyMap<string, WorkflowDefinition> {
    return this.workflows;
  }

  /**
   * Runs and steps wait forever for a worker that has their code; say so, once per name every
   * ten minutes, naming the fix. (Claims are filtered by name, so such work never blocks others.)
   */
  reportUnknownWork(): Promise<{ kind: string; name: string; count: number }[]> {
    return this.unknownWork.report();
  }

  // ── The parts at work ────────────────────────────────────────────────────────────────────

  private onNotification(n: BackendNotification): void {
    if (n.kind === "activity-cancelled") {
      this.activityTasks.abort(n.taskId, "cancelled");
      return;
    }
    if (n.kind === "run-closed") return;
    this.pump.wake();
  }

  /** One round of the pump: due timers fire, then each kind of task is claimed into free slots. */
  private async claimRound(): Promise<boolean> {
    let found = (await this.backend.fireDueTimers(500)) > 0;
    if (this.workflows.size > 0) found = (await this.workflowTasks.poll()) || found;
    if (this.activities.size > 0) found = (await this.activityTasks.poll()) || found;
    return found;
  }

  /** Processes a workflow task to its end (never rejects: a failed task is handed back). */
  private async runWorkflowTask(task: ClaimedWorkflowTask): Promise<void> {
    try {
      const result = await processWorkflowTask(task, this.taskDeps);
      if (!result) return;
      this.storage.ok();
      this.blocked.clear(task.run.runId);
      await this.activityTasks.runClaimed(result.claimedActivities);
    } catch (err) {
      this.storage.full(err);
      this.log.error("workflow task failed; it will be retried", {
        runId: task.run.runId,
        error: String(err),
      });
      await this.backend
        .releaseWorkflowTask({ runId: task.run.runId, fence: task.fence, retryAt: this.backend.now() + 1000 })
        .catch(() => undefined);
    }
  }
}
