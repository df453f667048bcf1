/**
 * `TestEnv`, what `createTestEnv` returns: a real Worker and Client on a real in-memory
 * SqliteBackend whose clock is virtual. While a test awaits a result through the environment, time skips ahead whenever every
 * run is waiting (a `sleep("30d")` completes at once); `advance()` moves it by hand. Activities
 * can be mocked by definition, made to fail at a chosen attempt, or lose their completion after
 * their side effect ran; the worker can crash after a chosen history event and a fresh worker takes
 * over by replay. A ledger records every activity execution, and a stall guard turns a test that
 * would hang into an error that lists the open runs and what each waits for.
 *
 * Its options are in `test-env-options.ts`, the crash rules in `crash-rules.ts` and the messages of
 * a failed wait in `wait-diagnostics.ts`; this file holds the environment's clock-driving loop.
 */

import { Client, type WorkflowHandle } from "@spool/client";
import {
  type Backend,
  type Duration,
  exportHistory,
  type HistoryEvent,
  InvalidOptionsError,
  toMs,
  type WorkflowDefinition,
  type WorkflowExecutor,
  type WorkflowInput,
  type WorkflowOutput,
} from "@spool/core";
import { SqliteBackend } from "@spool/sqlite";
import { silentLogger, Worker } from "@spool/worker";
import {
  ActivityHarness,
  type ActivityMock,
  type CrashAfterActivityOptions,
  type FailActivityOptions,
  type LedgerEntry,
  SimulatedCrash,
} from "./activity-harness.ts";
import { CrashRules } from "./crash-rules.ts";
import { TestEnvError } from "./errors.ts";
import { originals } from "./nondeterminism-traps.ts";
import type {
  AnyActivity,
  AnyWorkflow,
  TestEnvOptions,
  TestEnvStats,
  TestStartOptions,
} from "./test-env-options.ts";
import { toEpochMs, VirtualClock } from "./virtual-clock.ts";
import { stallReport, throwIfBlocked } from "./wait-diagnostics.ts";

const DEFAULT_START = Date.UTC(2024, 0, 1);

function realSleep(ms: number): Promise<void> {
  return new Promise((r) => originals.setTimeout(r, ms));
}

/**
 * A test environment; create it with {@link createTestEnv} and `close()` it after the test.
 *
 * @example
 * ```ts
 * const env = await createTestEnv({ workflows: [order], activities: [charge] });
 * try {
 *   expect(await env.run(order, { id: "o-1", total: 42 })).toBe("expired");
 * } finally {
 *   await env.close();
 * }
 * ```
 */
export class TestEnv {
  /** The store: a real SqliteBackend on `:memory:` reading the virtual clock. */
  readonly backend: SqliteBackend;
  /** A real Client on the backend (it answers queries from the env's worker). */
  readonly client: Client;
  /** What the environment did so far. */
  readonly stats: TestEnvStats = { timeSkips: 0, workerRestarts: 0 };
  private readonly clock: VirtualClock;
  private readonly harness: ActivityHarness;
  private readonly workflows: readonly AnyWorkflow[];
  private readonly options: TestEnvOptions<readonly AnyActivity[]>;
  private current: Worker;
  private workerNames: Set<string>;
  private readonly dead = new Set<string>();
  private readonly crashRules = new CrashRules();
  private restarting: Promise<void> | null = null;
  private progress = 0;
  private closed = false;
  private readonly unsubscribe: () => void;
  private idCounter = 0;

  /** @internal Use createTestEnv. */
  constructor(options: TestEnvOptions<readonly AnyActivity[]>) {
    if (!options?.workflows) throw new InvalidOptionsError("createTestEnv() needs { workflows: [...] }");
    this.options = options;
    this.workflows = options.workflows;
    this.clock = new VirtualClock(
      options.startTime === undefined ? DEFAULT_START : toEpochMs(options.startTime),
    );
    this.backend = new SqliteBackend({ path: ":memory:", clock: () => this.clock.now() });
    this.harness = new ActivityHarness(() => this.clock.now());
    for (const a of options.activities ?? []) this.harness.addReal(a);
    for (const [def, fn] of (options.mocks ?? []) as unknown as [AnyActivity, never][])
      this.harness.mock(def, fn);
    this.current = this.makeWorker();
    this.workerNames = this.activityNames();
    this.client = new Client({
      backend: this.backend,
      workflows: this.workflows,
      queryResponders: [{ executorFor: (runId: string) => this.executorFor(runId) }],
    });
    this.unsubscribe = this.backend.subscribe(() => {
      this.progress++;
    });
  }

  /** The worker running now (a new one after each simulated crash). */
  get worker(): Worker {
    return this.current;
  }

  /** Every activity attempt run so far, in start order. */
  get ledger(): readonly LedgerEntry[] {
    return this.harness.ledger;
  }

  /** The ledger entries of one activity. */
  ledgerOf(def: AnyActivity): LedgerEntry[] {
    return this.harness.ledger.filter((e) => e.activity === def.name);
  }

  /** Virtual time now (ms since the epoch). */
  now(): number {
    return this.clock.now();
  }

  /** @internal Starts the first worker (createTestEnv calls it). */
  async boot(): Promise<void> {
    await this.current.start();
  }

  // ── Mocks and faults ─────────────────────────────────────────────────────────────────────

  /**
   * Replaces an activity by a mock from now on.
   * @example
   * ```ts
   * env.mock(charge, async ({ orderId }) => ({ chargeId: `mock-${orderId}` }));
   * ```
   */
  mock<D extends AnyActivity>(def: D, fn: ActivityMock<D>): void {
    this.harness.mock(def, fn as never);
    this.reRegisterIfNew();
  }

  /** Removes a mock: the real function runs again. */
  unmock(def: AnyActivity): void {
    this.harness.unmock(def);
  }

  /**
   * Makes attempt `attempt` (default 1) of the activity fail with `error` instead of running.
   * A retryable error is retried by the policy (the back-off passes on the virtual clock); a
   * NonRetryableError fails the step for good.
   * @example
   * ```ts
   * env.failActivity(charge, { attempt: 1, error: new Error("boom") });
   * ```
   */
  failActivity(def: AnyActivity, options: FailActivityOptions = {}): void {
    this.harness.failActivity(def, options);
    this.reRegisterIfNew();
  }

  /**
   * Simulates a crash after the activity's side effect but before its completion is recorded:
   * the function runs, its completion is discarded, and once the attempt's lease expires (on the
   * virtual clock) the step runs again — with the same idempotency key. The ledger shows both
   * executions; history records the result once.
   */
  crashAfterActivity(def: AnyActivity, options: CrashAfterActivityOptions = {}): void {
    this.harness.crashAfterActivity(def, options);
    this.reRegisterIfNew();
  }

  /**
   * Crashes the worker right after the activation that records history event `seq` (of any run,
   * or of `workflowId`): what it held in memory is lost (cached runs, activities it had just
   * claimed), and a fresh Worker on the same backend takes over by replaying history.
   */
  crashAfterEvent(seq: number, options: { workflowId?: string } = {}): void {
    this.crashRules.add(seq, options.workflowId);
  }

  /** Replaces the worker by a fresh one (empty cache) on the same backend, as after a restart. */
  async restartWorker(): Promise<void> {
    await this.replaceWorker(false);
  }

  // ── Starting and waiting ─────────────────────────────────────────────────────────────────

  /**
   * Starts a run (idempotent by `id`; default ids are `<workflow name>-<n>`). The handle is a real
   * WorkflowHandle whose `result()` skips time while it waits (see `timeSkipping`).
   */
  async start<W extends AnyWorkflow>(
    workflow: W,
    input: WorkflowInput<W>,
    options: TestStartOptions = {},
  ): Promise<WorkflowHandle<W>> {
    this.assertOpen();
    await this.restarting;
    const id = options.id ?? `${workflow.name}-${++this.idCounter}`;
    const handle = await this.client.start(workflow, input, { ...options, id });
    const original = handle.result.bind(handle);
    handle.result = (o = {}) =>
      this.awaitRun(handle, () => original({ ...o, pollIntervalMs: o.pollIntervalMs ?? 2 }));
    return handle;
  }

  /**
   * Starts a run and returns its result, skipping time while it waits.
   * @throws WorkflowFailedError when the run fails; TestEnvError when it is blocked or nothing
   *   progresses for `stallTimeoutMs` (the message lists the open runs).
   */
  async run<W extends AnyWorkflow>(
    workflow: W,
    input: WorkflowInput<W>,
    options: TestStartOptions = {},
  ): Promise<WorkflowOutput<W>> {
    const h = await this.start(workflow, input, options);
    return h.result();
  }

  /** Waits for a handle's result (any handle, e.g. from `env.client`), skipping time. */
  async result<W extends WorkflowDefinition>(handle: WorkflowHandle<W>): Promise<WorkflowOutput<W>> {
    return this.awaitRun(handle, () => handle.result({ pollIntervalMs: 2 }));
  }

  /** Skips time until `predicate` holds (checked between steps), e.g. a run reaching a state. */
  async waitUntil(predicate: () => boolean | Promise<boolean>, what = "the condition"): Promise<void> {
    this.assertOpen();
    await this.drive(predicate, what, undefined);
  }

  /**
   * Moves virtual time forward by `duration`, firing every timer, retry and lease expiry due on
   * the way at its own time, and waits until the system is quiet at the new time.
   * @example
   * ```ts
   * await env.advance("1h");
   * ```
   */
  async advance(duration: Duration): Promise<void> {
    this.assertOpen();
    const target = this.clock.now() + toMs(duration, "advance() duration");
    for (;;) {
      await this.settle();
      const next = await this.backend.nextWakeAt();
      if (next === null || next > target) break;
      if (this.clock.moveTo(next)) this.progress++;
      this.current.wakeNow();
    }
    if (this.clock.moveTo(target)) this.progress++;
    this.current.wakeNow();
    await this.settle();
  }

  /** Waits until nothing is ready at the current virtual time (time does not move). */
  async settle(): Promise<void> {
    this.assertOpen();
    let quietChecks = 0;
    const quiet = (async () => {
      while (quietChecks < 2) {
        await this.restarting;
        if (!this.current.isIdle()) quietChecks = 0;
        else {
          const next = await this.backend.nextWakeAt();
          if (next !== null && next <= this.clock.now()) {
            quietChecks = 0;
            this.current.wakeNow();
          } else quietChecks++;
        }
        await realSleep(1);
      }
    })();
    await this.drive(quiet, "the system to settle", undefined, false);
  }

  // ── History ──────────────────────────────────────────────────────────────────────────────

  /** The decoded history of a workflow id's latest run. */
  async history(workflowId: string): Promise<HistoryEvent[]> {
    return this.client.getHandle(workflowId).history();
  }

  /** The history of a workflow id's latest run as a history file (for `replayHistory` and golden tests). */
  async exportHistory(workflowId: string): Promise<string> {
    const d = await this.client.getHandle(workflowId).describe();
    const events = await this.history(workflowId);
    return exportHistory(events, { workflowId: d.workflowId, runId: d.runId, workflowName: d.workflowName });
  }

  /** Stops the worker and closes the backend. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    await this.restarting?.catch(() => undefined);
    await this.current.shutdown();
    await this.backend.close();
  }

  // ── Internals ────────────────────────────────────────────────────────────────────────────

  private assertOpen(): void {
    if (this.closed) throw new TestEnvError("this test environment is closed");
  }

  private activityNames(): Set<string> {
    return new Set(this.harness.definitions().map((d) => d.name));
  }

  private reRegisterIfNew(): void {
    const names = this.activityNames();
    if ([...names].every((n) => this.workerNames.has(n))) return;
    // The worker claims activity tasks by name: a new name needs a worker that knows it.
    void this.replaceWorker(false).catch(() => undefined);
  }

  private makeWorker(): Worker {
    const user = this.options.worker ?? {};
    let workerId = "";
    const w = new Worker({
      shutdownGraceMs: 1000,
      maxCachedRuns: 1000,
      ...user,
      backend: this.backend as Backend,
      workflows: this.workflows,
      activities: this.harness.definitions(),
      logger: this.options.logger ?? user.logger ?? silentLogger,
      strictDeterminism: this.options.strictDeterminism ?? user.strictDeterminism ?? true,
      pollIntervalMs: user.pollIntervalMs ?? { min: 1, max: 5 },
      faultHook: async (point, info) => {
        await this.onFault(workerId, point, info);
        await user.faultHook?.(point, info);
      },
    });
    workerId = w.workerId;
    return w;
  }

  private async onFault(workerId: string, point: string, info: Record<string, unknown>): Promise<void> {
    if (this.dead.has(workerId)) {
      // A crashed worker's leftovers must not reach storage.
      throw new SimulatedCrash(`worker ${workerId} has crashed`);
    }
    if (point === "activity.before-complete") this.harness.beforeComplete(info);
    if (point === "workflow.after-commit") {
      const lastSeq = Number(info.lastSeq);
      const runId = String(info.runId);
      const workflowIdOf = async (id: string) => (await this.backend.inspect.getRun(id))?.workflowId;
      if (await this.crashRules.fires(lastSeq, runId, workflowIdOf)) {
        this.dead.add(workerId);
        originals.setImmediate(() => void this.replaceWorker(true).catch(() => undefined));
        throw new SimulatedCrash(
          `simulated crash of worker ${workerId} after history event #${lastSeq} of run ${runId}`,
        );
      }
    }
  }

  private replaceWorker(crashed: boolean): Promise<void> {
    const run = async () => {
      await this.restarting;
      const old = this.current;
      if (!crashed) this.dead.add(old.workerId);
      await old.shutdown();
      if (this.closed) return;
      this.current = this.makeWorker();
      this.workerNames = this.activityNames();
      await this.current.start();
      this.stats.workerRestarts++;
      this.progress++;
    };
    const p = run().finally(() => {
      if (this.restarting === p) this.restarting = null;
    });
    this.restarting = p;
    return p;
  }

  private async executorFor(runId: string): Promise<WorkflowExecutor | undefined> {
    await this.restarting;
    return this.current.executorFor(runId);
  }

  private async awaitRun<T>(handle: { workflowId: string }, wait: () => Promise<T>): Promise<T> {
    this.assertOpen();
    await this.restarting;
    return this.drive(wait(), `the result of "${handle.workflowId}"`, handle.workflowId);
  }

  /**
   * Drives the system until `until` settles: wakes the worker when work is ready, skips time when
   * every run waits (auto mode), fails on a blocked awaited run or a stall.
   */
  private async drive<T>(
    until: Promise<T>,
    what: string,
    workflowId: string | undefined,
    skip?: boolean,
  ): Promise<T>;
  private async drive(
    until: () => boolean | Promise<boolean>,
    what: string,
    workflowId: string | undefined,
    skip?: boolean,
  ): Promise<void>;
  private async drive<T>(
    until: Promise<T> | (() => boolean | Promise<boolean>),
    what: string,
    workflowId: string | undefined,
    skip = true,
  ): Promise<T | undefined> {
    let settled = false;
    let done: () => boolean | Promise<boolean>;
    let wake: Promise<unknown>;
    if (typeof until === "function") {
      done = until;
      wake = new Promise(noop);
    } else {
      until.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      done = () => settled;
      wake = until.then(noop, noop);
    }
    const stallMs = this.options.stallTimeoutMs ?? 5000;
    const skipping = skip && (this.options.timeSkipping ?? "auto") === "auto";
    let lastProgress = this.progress;
    let lastChange = originals.dateNow.call(originals.Date);
    let lastBlockedCheck = 0;
    while (!(await done())) {
      if (this.closed) throw new TestEnvError(`the test environment was closed while waiting for ${what}`);
      if (this.restarting) await this.restarting;
      const idle = this.current.isIdle();
      if (idle) {
        const next = await this.backend.nextWakeAt();
        const now = this.clock.now();
        if (next !== null && next <= now) this.current.wakeNow();
        else if (next !== null && skipping && this.current.isIdle()) {
          // Quiet now: the last chance to observe this moment before time jumps.
          if (await done()) break;
          if (this.clock.moveTo(next)) {
            this.stats.timeSkips++;
            this.progress++;
            this.current.wakeNow();
          }
        }
      }
      const real = originals.dateNow.call(originals.Date);
      if (workflowId && real - lastBlockedCheck > 20) {
        lastBlockedCheck = real;
        await throwIfBlocked(this.backend, this.client, workflowId);
      }
      if (this.progress !== lastProgress) {
        lastProgress = this.progress;
        lastChange = real;
      } else if (real - lastChange > stallMs) {
        const timeSkipping = this.options.timeSkipping ?? "auto";
        const context = { backend: this.backend, worker: this.current, now: this.clock.now(), timeSkipping };
        throw new TestEnvError(await stallReport({ ...context, what, stallMs }));
      }
      await Promise.race([wake, realSleep(idle ? 1 : 2)]);
    }
    return typeof until === "function" ? undefined : await until;
  }
}

function noop(): void {}
