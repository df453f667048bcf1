/**
 * The Worker: claims workflow and activity tasks from a backend, replays workflows, runs
 * activities, fires timers. One loop (the pump) does the claiming; it runs when woken by the
 * backend's notifications (immediately, in-process), when a task finishes, when the next timer
 * or retry falls due, and otherwise at a bounded back-off poll for work other processes added.
 */
import {
  type ActivityDefinition,
  type Backend,
  type BackendNotification,
  type ClaimedActivityTask,
  type ClaimedWorkflowTask,
  ConfigurationError,
  DataConverter,
  type NewInboundEvent,
  newId,
  type PayloadCodec,
  type RunRecord,
  StorageFullError,
  unhostedWork,
  type WorkerInfo,
  type WorkerRegistration,
  type WorkflowDefinition,
  type WorkflowExecutor,
} from "@spool/core";
import { type ActivityRunnerDeps, type RunningActivity, startActivity } from "./activity-runner.ts";
import { consoleLogger, type Logger, silentLogger } from "./logger.ts";
import { RunCache } from "./run-cache.ts";
import {
  completeEagerly,
  processWorkflowTask,
  rebuildExecutor,
  type WorkflowTaskDeps,
} from "./workflow-task.ts";

/**
 * Workflow-task claims issued at once per round (they share one transaction on a group-committing
 * backend). Activity claims are not capped by it: see claimActivityTasks.
 */
const CLAIM_BATCH = 16;

/** Options of a Worker. */
export interface WorkerOptions {
  backend: Backend;
  // biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
  workflows?: readonly WorkflowDefinition<any, any>[];
  // biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
  activities?: readonly ActivityDefinition<any, any>[];
  /** A stable id for logs and leases (default: a new ULID). */
  workerId?: string;
  /** Workflow activations processed at once (default 10). */
  maxConcurrentWorkflowTasks?: number;
  /** Activity attempts running at once (default 100). */
  maxConcurrentActivities?: number;
  /** Live runs kept in memory (default 1,000); 0 replays every activation from history. */
  maxCachedRuns?: number;
  /** Lease of a workflow task (default 30 s). */
  workflowTaskLeaseMs?: number;
  /**
   * Polling back-off bounds for work added by other processes (default 20 ms to 1 s; to 5 s when
   * the backend's notifications reach every process, as PostgreSQL's do).
   */
  pollIntervalMs?: { min: number; max: number };
  /** How long shutdown() waits for in-flight work (default 10 s). */
  shutdownGraceMs?: number;
  /** Wraps every stored payload (e.g. aesGcmCodec); must match the client's. */
  codec?: PayloadCodec;
  /** Largest encoded payload accepted (default 2 MiB). */
  maxPayloadBytes?: number;
  logger?: Logger;
  /** Compare activity inputs with history on replay too (default false). */
  strictDeterminism?: boolean;
  /** Activity tasks an activation claims for this worker at once, to run without a round trip (default 10). */
  eagerActivities?: number;
  /** Back-off for re-offering blocked runs (default 1 s doubling to 5 min). */
  blockedRetry?: { initialMs: number; maxMs: number };
  /**
   * How often to look for ready work that no worker claims because this worker (and, it seems,
   * every other) lacks its code, and how old such work must be to be reported (default 30 s each).
   */
  unknownWorkCheck?: { intervalMs: number; minAgeMs: number };
  /**
   * History length at which a run logs a warning (default 10,000) and at which it fails with a
   * message telling the author to continue as new (default 50,000).
   */
  historyLimits?: { historyWarnAt?: number; historyLimit?: number };
  /**
   * How this worker proves it is alive (see the worker registry in the backends' HOW_IT_WORKS.md):
   * it heartbeats every `heartbeatIntervalMs` (default 1 s) and is presumed dead by the other
   * workers after `deadAfterMs` without one (default 5 s; on SQLite a worker on the same machine
   * is known dead at once, when its process is gone). Every `sweepIntervalMs` (default 250 ms) it
   * looks for dead workers and releases their leases, so their runs resume without waiting for
   * the leases to run out. A worker whose event loop is blocked for longer than `deadAfterMs` may be
   * presumed dead while alive: its leases are then taken over (activities run at least once; its
   * late results are rejected by the fences).
   */
  liveness?: { heartbeatIntervalMs?: number; deadAfterMs?: number; sweepIntervalMs?: number };
  /**
   * When a failed activity attempt that will be retried is logged at WARN (otherwise DEBUG): from
   * the `after`-th consecutive failure of a step, then every `every` failures (default 3 and 10:
   * attempts 3, 13, 23...). Each line names the activity, the run, the attempt, the error and the
   * next attempt's time. A step that fails for ever (retries are unlimited by default) is then
   * visible in the logs, not only in `spool describe`.
   */
  activityFailureWarn?: { after: number; every: number };
  /** Fault points, for crash tests only: called at named moments with details. */
  faultHook?: (point: string, info: Record<string, unknown>) => Promise<void> | void;
}

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
  private readonly workflows = new Map<string, WorkflowDefinition>();
  private readonly activities = new Map<string, ActivityDefinition>();
  private readonly dc: DataConverter;
  private readonly log: Logger;
  private readonly cache: RunCache;
  private readonly opts: Required<
    Pick<
      WorkerOptions,
      | "maxConcurrentWorkflowTasks"
      | "maxConcurrentActivities"
      | "workflowTaskLeaseMs"
      | "pollIntervalMs"
      | "shutdownGraceMs"
      | "strictDeterminism"
      | "eagerActivities"
      | "blockedRetry"
    >
  >;
  private readonly faultHook: WorkerOptions["faultHook"];
  private readonly historyLimits: WorkerOptions["historyLimits"];
  private state: "new" | "running" | "draining" | "stopped" = "new";
  private workflowInFlight = new Set<Promise<unknown>>();
  private readonly running = new Map<string, RunningActivity>();
  private unsubscribe: (() => void) | null = null;
  private pumping = false;
  private pumpAgain = false;
  private wakeTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeScheduled = false;
  /** Claiming stopped because every slot was busy; a freed slot must wake the pump. */
  private starved = false;
  private pollDelay: number;
  /** While storage is full (StorageFullError) nothing is claimed until this time; 0 = healthy. */
  private storageBlockedUntil = 0;
  private storageBackoffMs = 0;
  private readonly blockedAttempts = new Map<string, number>();
  private readonly signals: (() => void)[] = [];
  private lastError: unknown;
  private unknownTimer: ReturnType<typeof setInterval> | null = null;
  private readonly unknownReported = new Map<string, number>();
  private readonly unknownWorkCheck: { intervalMs: number; minAgeMs: number };
  /** Names of the registered activities (fixed at construction; sent with every claim). */
  private readonly activityNames: string[];
  /** What every attempt needs from this worker: built once, not per attempt (the hot path). */
  private readonly runnerDeps: ActivityRunnerDeps;
  /** New per Worker object: tells the registry this is not an earlier process with the same id. */
  private readonly incarnation = newId();
  private readonly liveness: { heartbeatIntervalMs: number; deadAfterMs: number; sweepIntervalMs: number };
  private livenessTimers: ReturnType<typeof setInterval>[] = [];
  private heartbeating = false;
  private sweeping = false;

  constructor(options: WorkerOptions) {
    if (!options?.backend) throw new ConfigurationError("new Worker() needs { backend }");
    this.backend = options.backend;
    this.workerId = options.workerId ?? `worker-${newId()}`;
    for (const w of options.workflows ?? []) {
      if (w?.kind !== "workflow")
        throw new ConfigurationError("workflows: pass definitions made by defineWorkflow()");
      if (this.workflows.has(w.name))
        throw new ConfigurationError(`workflow "${w.name}" is registered twice`);
      this.workflows.set(w.name, w);
    }
    for (const a of options.activities ?? []) {
      if (a?.kind !== "activity")
        throw new ConfigurationError("activities: pass definitions made by defineActivity()");
      if (this.activities.has(a.name))
        throw new ConfigurationError(`activity "${a.name}" is registered twice`);
      this.activities.set(a.name, a);
    }
    if (this.workflows.size === 0 && this.activities.size === 0) {
      throw new ConfigurationError("new Worker() needs at least one workflow or activity definition");
    }
    this.activityNames = [...this.activities.keys()];
    this.dc = new DataConverter({ codec: options.codec, maxPayloadBytes: options.maxPayloadBytes });
    this.log = options.logger ?? consoleLogger("info");
    this.cache = new RunCache(options.maxCachedRuns ?? 1000);
    this.opts = {
      maxConcurrentWorkflowTasks: options.maxConcurrentWorkflowTasks ?? 10,
      maxConcurrentActivities: options.maxConcurrentActivities ?? 100,
      workflowTaskLeaseMs: options.workflowTaskLeaseMs ?? 30_000,
      // With notifications that cross processes (PostgreSQL) polling is only the fallback.
      pollIntervalMs: options.pollIntervalMs ?? {
        min: 20,
        max: options.backend.notifiesAcrossProcesses ? 5000 : 1000,
      },
      shutdownGraceMs: options.shutdownGraceMs ?? 10_000,
      strictDeterminism: options.strictDeterminism ?? false,
      eagerActivities: options.eagerActivities ?? 10,
      blockedRetry: options.blockedRetry ?? { initialMs: 1000, maxMs: 300_000 },
    };
    this.faultHook = options.faultHook;
    this.historyLimits = options.historyLimits;
    this.unknownWorkCheck = options.unknownWorkCheck ?? { intervalMs: 30_000, minAgeMs: 30_000 };
    const heartbeatIntervalMs = positiveMs(
      options.liveness?.heartbeatIntervalMs,
      1000,
      "heartbeatIntervalMs",
    );
    this.liveness = {
      heartbeatIntervalMs,
      deadAfterMs: positiveMs(options.liveness?.deadAfterMs, 5 * heartbeatIntervalMs, "deadAfterMs"),
      sweepIntervalMs: positiveMs(options.liveness?.sweepIntervalMs, 250, "sweepIntervalMs"),
    };
    if (this.liveness.deadAfterMs < 2 * heartbeatIntervalMs) {
      throw new ConfigurationError(
        `liveness.deadAfterMs (${this.liveness.deadAfterMs}) must be at least twice heartbeatIntervalMs ` +
          `(${heartbeatIntervalMs}): one late heartbeat must not make a live worker look dead.`,
      );
    }
    this.pollDelay = this.opts.pollIntervalMs.min;
    this.runnerDeps = {
      backend: this.backend,
      dc: this.dc,
      log: this.log,
      fault: this.faultHook,
      completeEagerly: this.workflows.size > 0 ? (t, e) => this.completeEagerly(t, e) : undefined,
      storage: { full: (err) => this.storageFull(err), ok: () => this.storageOk() },
      failureWarn: options.activityFailureWarn,
    };
  }

  /** Starts claiming work. Resolves once the worker is running; work continues until shutdown(). */
  async start(): Promise<void> {
    if (this.state !== "new") throw new ConfigurationError(`worker ${this.workerId} was already started`);
    await this.backend.init();
    await this.backend.registerWorker(this.registration());
    this.state = "running";
    this.unsubscribe = this.backend.subscribe((n) => this.onNotification(n));
    // New code may fix runs that were parked: offer them again now rather than after their back-off.
    const retried = await this.backend.retryBlockedRuns([...this.workflows.keys()]);
    if (retried > 0) this.log.info("re-offering blocked runs to the new code", { count: retried });
    this.unknownTimer = setInterval(() => void this.reportUnknownWork(), this.unknownWorkCheck.intervalMs);
    this.unknownTimer.unref?.();
    this.livenessTimers = [
      setInterval(() => void this.heartbeat(), this.liveness.heartbeatIntervalMs),
      setInterval(() => void this.sweepDeadWorkers(), this.liveness.sweepIntervalMs),
    ];
    for (const t of this.livenessTimers) t.unref?.();
    // A worker restarted after a crash frees what its predecessor (or any dead worker) held at once,
    // before its first claim, rather than a sweep interval later.
    await this.sweepDeadWorkers();
    // Say what this worker runs: work of any other name waits for another worker.
    const { workflowNames, activityNames } = this.registration();
    this.log.info("worker started", {
      workerId: this.workerId,
      workflows: workflowNames,
      activities: activityNames,
    });
    this.wake();
  }

  /** What this worker tells the registry: who it is and the names it hosts. */
  private registration(): WorkerRegistration {
    return {
      workerId: this.workerId,
      incarnation: this.incarnation,
      workflowNames: [...this.workflows.keys()],
      activityNames: this.activityNames,
      heartbeatIntervalMs: this.liveness.heartbeatIntervalMs,
      deadAfterMs: this.liveness.deadAfterMs,
    };
  }

  /** Proves this worker alive; if the others presumed it dead (a long stall), registers again. */
  private async heartbeat(): Promise<void> {
    if (this.heartbeating || this.state !== "running") return;
    this.heartbeating = true;
    try {
      if (await this.backend.heartbeatWorker(this.workerId)) return;
      if (this.state !== "running") return;
      this.log.warn(
        "this worker was presumed dead by the others (no heartbeat for longer than " +
          `${this.liveness.deadAfterMs} ms: was the process stalled?); the leases it held were released and ` +
          "its attempts still running will be rejected. Registering again.",
        { workerId: this.workerId },
      );
      await this.backend.registerWorker(this.registration());
    } catch {
      // A heartbeat that fails (storage busy or down) is tried again next interval.
    } finally {
      this.heartbeating = false;
    }
  }

  /** Releases the leases of workers found dead, so their runs resume now rather than when leases run out. */
  private async sweepDeadWorkers(): Promise<void> {
    if (this.sweeping || this.state !== "running") return;
    this.sweeping = true;
    try {
      const swept = await this.backend.releaseDeadWorkers();
      if (swept.workers.length === 0) return;
      this.log.warn(
        `worker(s) ${swept.workers.join(", ")} found dead: released ${swept.workflowTasks} workflow task and ` +
          `${swept.activityTasks} activity task lease(s) for other workers to take over`,
        { workerId: this.workerId, dead: swept.workers, ...swept },
      );
      this.wake();
    } catch {
      // Tried again next interval.
    } finally {
      this.sweeping = false;
    }
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
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.unknownTimer) clearInterval(this.unknownTimer);
    for (const t of this.livenessTimers.splice(0)) clearInterval(t);
    const all = () =>
      Promise.allSettled([...this.workflowInFlight, ...[...this.running.values()].map((r) => r.done)]);
    const grace = new Promise<"timeout">((r) => {
      const t = setTimeout(() => r("timeout"), this.opts.shutdownGraceMs);
      t.unref?.();
    });
    const outcome = await Promise.race([all().then(() => "done" as const), grace]);
    if (outcome === "timeout") {
      this.log.warn("shutdown grace period over: aborting running activities", {
        running: this.running.size,
      });
      for (const r of this.running.values()) r.abort("shutdown");
      await all();
    }
    this.cache.clear();
    await this.backend.unregisterWorker(this.workerId).catch(() => undefined);
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
      runningActivities: this.running.size,
      workflowTasksInFlight: this.workflowInFlight.size,
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
      historyLimits: this.historyLimits,
    });
    if (inbox.length > 0) await ex.apply(inbox, this.backend.now());
    return ex;
  }

  /**
   * True when nothing is in flight: no activation being processed, no activity running, the
   * claim loop at rest. Test environments use it to decide when to skip virtual time ahead.
   */
  isIdle(): boolean {
    return !this.pumping && !this.pumpAgain && this.workflowInFlight.size === 0 && this.running.size === 0;
  }

  /** Runs the claim loop now (e.g. after moving a virtual clock forward). */
  wakeNow(): void {
    this.wake();
  }

  /** The workflow definitions this worker runs. */
  get workflowDefinitions(): ReadonlyMap<string, WorkflowDefinition> {
    return this.workflows;
  }

  // ── The pump ─────────────────────────────────────────────────────────────────────────────

  private onNotification(n: BackendNotification): void {
    if (n.kind === "activity-cancelled") {
      this.running.get(n.taskId)?.abort("cancelled");
      return;
    }
    if (n.kind === "run-closed") return;
    this.wake();
  }

  /** A slot was freed: claim again, but only if claiming stopped for lack of slots. */
  private wakeIfStarved(): void {
    if (!this.starved) return;
    this.starved = false;
    this.wake();
  }

  private wake(): void {
    if (this.state !== "running") return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    if (this.wakeScheduled) return;
    // setImmediate, not setTimeout(0): Node rounds a zero timeout up to 1 ms, a millisecond of idle per step.
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.state !== "running") return;
    this.pumping = true;
    this.wakeTimer = null;
    let found = false;
    try {
      do {
        this.pumpAgain = false;
        // Storage full: claim nothing whose outcome could not be recorded until the back-off ends.
        if (Date.now() < this.storageBlockedUntil) break;
        const fired = await this.backend.fireDueTimers(500);
        if (fired > 0) found = true;
        found = (await this.claimWorkflowTasks()) || found;
        found = (await this.claimActivityTasks()) || found;
      } while (this.pumpAgain && this.state === "running");
      this.lastError = undefined;
    } catch (err) {
      this.storageFull(err);
      if (this.lastError === undefined || String(this.lastError) !== String(err)) {
        this.log.error("worker loop error; retrying with back-off", { error: String(err) });
      }
      this.lastError = err;
      found = false;
    } finally {
      this.pumping = false;
    }
    if (this.state !== "running") return;
    await this.scheduleNext(found);
  }

  private async scheduleNext(found: boolean): Promise<void> {
    const { min, max } = this.opts.pollIntervalMs;
    this.pollDelay = found ? min : Math.min(max, this.pollDelay * 2);
    let delay = this.pollDelay;
    try {
      const next = await this.backend.nextWakeAt();
      // Never sooner than the minimum poll when this round found nothing: a ready task of a name
      // this worker does not run (or one another worker is sweeping) would otherwise spin the loop.
      if (next !== null) delay = Math.min(delay, Math.max(found ? 0 : min, next - this.backend.now()));
    } catch {
      // The next poll will tell.
    }
    delay = Math.max(delay, this.storageBlockedUntil - Date.now());
    if (this.state !== "running") return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => void this.pump(), delay);
  }

  private async claimWorkflowTasks(): Promise<boolean> {
    if (this.workflows.size === 0) return false;
    let any = false;
    const names = [...this.workflows.keys()];
    const claim = () =>
      this.backend.claimWorkflowTask({
        workerId: this.workerId,
        workflowNames: names,
        leaseMs: this.opts.workflowTaskLeaseMs,
      });
    // One claim first; when it finds work, the rest of the free slots are claimed at once, and a
    // backend with group commit serves those claims in one transaction.
    let batch = 1;
    while (this.state === "running") {
      const free = Math.min(batch, this.opts.maxConcurrentWorkflowTasks - this.workflowInFlight.size);
      if (free <= 0) {
        this.starved = true;
        break;
      }
      const claimed = await Promise.all(Array.from({ length: free }, claim));
      const tasks = claimed.filter((t): t is ClaimedWorkflowTask => t !== null);
      for (const task of tasks) await this.startWorkflowTask(task);
      if (tasks.length > 0) any = true;
      if (tasks.length < free) break;
      if (this.storageBackoffMs > 0) break; // storage full: a probe claims one task, not a batch
      batch = Math.min(CLAIM_BATCH, batch * 2);
    }
    return any;
  }

  private async startWorkflowTask(task: ClaimedWorkflowTask): Promise<void> {
    {
      await this.faultHook?.("workflow.after-claim", { runId: task.run.runId });
      const p: Promise<unknown> = processWorkflowTask(task, this.taskDeps())
        .then((result) => {
          if (!result) return;
          this.storageOk();
          this.blockedAttempts.delete(task.run.runId);
          return this.runClaimed(result.claimedActivities);
        })
        .catch((err) => {
          this.storageFull(err);
          this.log.error("workflow task failed; it will be retried", {
            runId: task.run.runId,
            error: String(err),
          });
          return this.backend
            .releaseWorkflowTask({
              runId: task.run.runId,
              fence: task.fence,
              retryAt: this.backend.now() + 1000,
            })
            .catch(() => undefined);
        })
        .finally(() => {
          this.workflowInFlight.delete(p);
          this.wakeIfStarved();
        });
      this.workflowInFlight.add(p);
    }
  }

  /** Records an activity outcome and the activation it triggers in one commit, when the run is cached here. */
  private async completeEagerly(task: ClaimedActivityTask, event: NewInboundEvent): Promise<boolean> {
    const result = await completeEagerly(task, event, this.taskDeps());
    if (!result) return false;
    await this.runClaimed(result.claimedActivities);
    return true;
  }

  /**
   * Runs the activity tasks an activation claimed for this worker — unless it is draining: then
   * they are handed back at once (awaited by the caller, so shutdown waits for it). Started
   * during a drain, they would be missed by shutdown and left leased, to be re-run elsewhere
   * only when the lease ran out.
   */
  private async runClaimed(tasks: readonly ClaimedActivityTask[]): Promise<void> {
    if (this.state === "running") {
      for (const t of tasks) this.runActivity(t);
      return;
    }
    // Never started, so not counted: the next claim gets the same attempt number (a counted
    // hand-back would use up a `maxAttempts: 1` step that never ran).
    await Promise.all(
      tasks.map((t) =>
        this.backend.releaseActivityTask({ taskId: t.taskId, fence: t.fence }).catch(() => undefined),
      ),
    );
  }

  private taskDeps(): WorkflowTaskDeps {
    return {
      backend: this.backend,
      dc: this.dc,
      log: this.log,
      cache: this.cache,
      workflows: this.workflows,
      workerId: this.workerId,
      strict: this.opts.strictDeterminism,
      // A draining worker claims nothing new, eagerly or not.
      eagerActivities: this.activities.size > 0 && this.state === "running" ? this.eagerSlots() : 0,
      activityNames: this.activityNames,
      blockedBackoff: (runId) => this.blockedBackoff(runId),
      fault: this.faultHook,
      historyLimits: this.historyLimits,
    };
  }

  private eagerSlots(): number {
    return Math.max(
      0,
      Math.min(this.opts.eagerActivities, this.opts.maxConcurrentActivities - this.running.size),
    );
  }

  private async claimActivityTasks(): Promise<boolean> {
    if (this.activities.size === 0) return false;
    let any = false;
    const names = this.activityNames;
    // One claim first; while every claim finds work the round doubles, up to the free slots. Not
    // capped at CLAIM_BATCH: one activation can make hundreds of tasks ready (a fan-out), and with
    // 16 claims per round the loop waited for a group commit (an fsync at full durability) per 16
    // tasks while slots sat free. Doubling bounds the claims that find nothing by those that found
    // something.
    let batch = 1;
    while (this.state === "running") {
      const free = Math.min(batch, this.opts.maxConcurrentActivities - this.running.size);
      if (free <= 0) {
        this.starved = true;
        break;
      }
      batch = Math.min(this.opts.maxConcurrentActivities, batch * 2);
      const claimed = await Promise.all(
        Array.from({ length: free }, () =>
          this.backend.claimActivityTask({ workerId: this.workerId, activityNames: names }),
        ),
      );
      let n = 0;
      for (const task of claimed) {
        if (!task) continue;
        n++;
        this.runActivity(task);
      }
      if (n > 0) any = true;
      if (n < free) break;
      if (this.storageBackoffMs > 0) break; // storage full: a probe claims one task, not a batch
    }
    return any;
  }

  private runActivity(task: ClaimedActivityTask): void {
    const def = this.activities.get(task.name);
    if (!def) return; // claimed only by name; cannot happen
    const running = startActivity(def, task, this.runnerDeps);
    this.running.set(task.taskId, running);
    running.done
      .catch((err) => this.log.error("activity report failed", { activity: task.name, error: String(err) }))
      .finally(() => {
        this.running.delete(task.taskId);
        this.wakeIfStarved();
      });
  }

  /**
   * Runs and steps wait forever for a worker that has their code; say so, once per name every
   * ten minutes, naming the fix. (Claims are filtered by name, so such work never blocks others.)
   */
  async reportUnknownWork(): Promise<{ kind: string; name: string; count: number }[]> {
    const now = this.backend.now();
    let waiting: Awaited<ReturnType<Backend["inspect"]["waitingWork"]>>;
    try {
      waiting = await this.backend.inspect.waitingWork(now - this.unknownWorkCheck.minAgeMs);
    } catch {
      return [];
    }
    // Hosted: what this worker runs, and what every live worker registered (a name another live
    // worker hosts is only waiting its turn there).
    let workers: WorkerInfo[] = [];
    try {
      workers = await this.backend.inspect.workers();
    } catch {
      // Without the registry, judge by this worker's names alone.
    }
    const { workerId, workflowNames, activityNames } = this.registration();
    const self: WorkerInfo = {
      workerId,
      workflowNames,
      activityNames,
      pid: null,
      host: null,
      startedAt: 0,
      heartbeatAt: 0,
      status: "live",
    };
    const unknown = unhostedWork(waiting, [self, ...workers]);
    for (const w of unknown) {
      const key = `${w.kind}:${w.name}`;
      if ((this.unknownReported.get(key) ?? 0) > now - 600_000) continue;
      this.unknownReported.set(key, now);
      this.log.warn(
        `${w.count} ${w.kind} task(s) of "${w.name}" have waited since ${new Date(w.oldestReadyAt).toISOString()} ` +
          `and no live worker hosts ${w.kind} "${w.name}". Register its definition with a worker ` +
          `(new Worker({ ${w.kind === "workflow" ? "workflows" : "activities"}: [...] })), or cancel those runs.`,
        { kind: w.kind, name: w.name, count: w.count, workerId: this.workerId },
      );
    }
    return unknown.map((w) => ({ kind: w.kind, name: w.name, count: w.count }));
  }

  /**
   * A write failed for lack of space (SQLITE_FULL, quota): stop claiming for a back-off (200 ms
   * doubling to 5 s) rather than claim, run and fail again in a loop — an activity run now would
   * repeat its side effect once its unrecordable attempt is retried. When the back-off ends the
   * pump claims again; the first write that succeeds clears it.
   */
  private storageFull(err: unknown): void {
    if (!StorageFullError.is(err)) return;
    if (this.storageBackoffMs === 0) {
      this.log.warn("storage is full: claiming paused until writes succeed again", { error: String(err) });
    }
    this.storageBackoffMs = Math.min(5000, Math.max(200, this.storageBackoffMs * 2));
    this.storageBlockedUntil = Date.now() + this.storageBackoffMs;
  }

  private storageOk(): void {
    if (this.storageBackoffMs === 0) return;
    this.storageBackoffMs = 0;
    this.storageBlockedUntil = 0;
    this.log.info("storage writable again: claiming resumed", { workerId: this.workerId });
  }

  private blockedBackoff(runId: string): number {
    const n = (this.blockedAttempts.get(runId) ?? 0) + 1;
    this.blockedAttempts.set(runId, n);
    const { initialMs, maxMs } = this.opts.blockedRetry;
    return Math.min(maxMs, initialMs * 2 ** Math.min(n - 1, 30));
  }
}

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigurationError(`liveness.${name} must be a positive number of milliseconds, got ${value}`);
  }
  return value;
}
