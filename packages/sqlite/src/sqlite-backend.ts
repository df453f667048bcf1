/**
 * `SqliteBackend`: Spool's embedded default store, the {@link Backend} contract on one SQLite file
 * (or `:memory:`) through better-sqlite3. This file is the facade: it opens the file and wires the
 * parts; each operation is one transaction body run by the write queue. HOW_IT_WORKS.md describes
 * the tables and protocols. The parts: sqlite-options (options), write-queue (group commit, reads,
 * lock-wait slicing), clock-sync (the anchored clock), run-writes (start, signal, cancel),
 * activation-executor (commitActivation), workflow-tasks, activity-tasks, timers, worker-liveness.
 *
 * better-sqlite3 is synchronous: each method does its work synchronously inside an `async`
 * function, which keeps transactions short (no awaits while a write lock is held) and turns every
 * throw into a rejected promise.
 */

import type {
  ActivationCommit,
  ActivationResult,
  ActivityAttemptRef,
  Backend,
  BackendInspector,
  BackendNotification,
  BlockRequest,
  CancelRequest,
  CancelResult,
  ClaimedActivityTask,
  ClaimedWorkflowTask,
  DeadWorkerSweep,
  EventType,
  InboxEvent,
  IntegrityReport,
  RawEvent,
  SignalRequest,
  StartWorkflowRequest,
  StartWorkflowResult,
  WorkerRegistration,
} from "@spool/core";
import { validateCommit } from "@spool/sql-store";
import Database from "better-sqlite3";
import { commitActivationIn } from "./activation-executor.ts";
import * as activities from "./activity-tasks.ts";
import { ClockSync } from "./clock-sync.ts";
import { migrate } from "./migrations.ts";
import { requestCancelIn, signalIn, signalWithStartIn, startIn } from "./run-writes.ts";
import { checkSqliteIntegrity } from "./sqlite-doctor.ts";
import { translateSqliteError } from "./sqlite-errors.ts";
import { SqliteInspector } from "./sqlite-inspector.ts";
import { parseSqliteOptions, type SqliteBackendOptions } from "./sqlite-options.ts";
import { prepareStatements } from "./statements.ts";
import * as timers from "./timers.ts";
import * as workers from "./worker-liveness.ts";
import * as workflowTasks from "./workflow-tasks.ts";
import type { SqliteOutbox, SqliteStore } from "./write-context.ts";
import { BUSY_SLICE_MS, WriteQueue, whenUnlocked } from "./write-queue.ts";

export type { SqliteBackendOptions, SqliteFaultPoint } from "./sqlite-options.ts";

/**
 * The SQLite implementation of Spool's {@link Backend}: runs, append-only checksummed histories,
 * per-run inboxes and the workflow/activity/timer queues in one database file.
 *
 * The constructor opens the file, sets the pragmas (WAL, `synchronous`, busy timeout) and runs
 * pending migrations synchronously, so `init()` has nothing left to do. Several backends (and
 * several processes) may open one file; they coordinate through SQLite's locks, but notifications
 * stay in-process (`notifiesAcrossProcesses` is false), so workers in other processes poll.
 *
 * @throws InvalidOptionsError from the constructor for invalid options or a database written by a
 *   newer release.
 *
 * @example
 * ```ts
 * import { SqliteBackend } from "@spool/sqlite";
 * const backend = new SqliteBackend({ path: "spool.db" });
 * await backend.init();
 * // hand it to a Worker and a Client; close it on shutdown:
 * await backend.close();
 * ```
 */
export class SqliteBackend implements Backend {
  /** SQLite has no cross-process notification: workers sharing a file from other processes poll. */
  readonly notifiesAcrossProcesses = false;
  /** Read-only inspection (CLI, dashboard, `handle.describe()`). */
  readonly inspect: BackendInspector;
  /** The path the database was opened from. */
  readonly path: string;

  /** The connection (tests and fixtures reach it by this name). */
  private readonly db: Database.Database;
  private readonly queue: WriteQueue;
  /** What every operation works with: statements, clock, limits, the queue. */
  private readonly store: SqliteStore;
  private readonly listeners = new Set<(n: BackendNotification) => void>();

  constructor(options: SqliteBackendOptions) {
    const settings = parseSqliteOptions(options);
    const { path, busyTimeoutMs } = settings;
    this.path = path;
    const db = new Database(path, { timeout: busyTimeoutMs });
    try {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      // WAL lets readers run alongside the single writer and makes commits one sequential append;
      // an in-memory database has no file to put a WAL beside.
      if (path !== ":memory:") db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${settings.durability === "full" ? "FULL" : "NORMAL"}`);
      // The anchored clock starts on the wall clock, so this is its reading.
      migrate(db, settings.clock?.() ?? Date.now());
      // Lock waits are sliced from here on; see WriteQueue's retryWhenBusy.
      if (busyTimeoutMs > BUSY_SLICE_MS) db.pragma(`busy_timeout = ${BUSY_SLICE_MS}`);
    } catch (err) {
      db.close();
      throw translateSqliteError(err, path, busyTimeoutMs);
    }
    this.db = db;
    const stmts = prepareStatements(db);
    const clockSync =
      settings.clock !== undefined
        ? null
        : new ClockSync(
            stmts,
            path,
            () => {
              try {
                return whenUnlocked(() => stmts.readClockAnchor.get(), busyTimeoutMs);
              } catch {
                return undefined;
              }
            },
            // A step is reconciled at the start of the next write batch: make sure there is one.
            () => {
              if (!this.queue.isClosed) void this.queue.write(() => undefined).catch(() => undefined);
            },
          );
    const clock = settings.clock ?? (() => clockSync!.now());
    this.queue = new WriteQueue({
      db,
      stmts,
      path,
      busyTimeoutMs,
      clockSync,
      faultHook: settings.faultHook,
      onWarning: settings.onWarning,
      emit: (out) => this.emit(out),
    });
    this.store = {
      stmts,
      clock,
      workflowLeaseMs: settings.workflowLeaseMs,
      activityLeaseMs: settings.activityLeaseMs,
      maxBufferedSignals: settings.maxBufferedSignals,
      faultHook: settings.faultHook,
      queue: this.queue,
    };
    this.inspect = new SqliteInspector({ db, stmts, now: clock, read: (fn) => this.queue.read(fn) });
  }

  /** Nothing to do: the constructor already opened the file and ran migrations. */
  async init(): Promise<void> {
    this.queue.assertOpen();
  }

  /** Closes the connection. Idempotent; every other call afterwards rejects. */
  async close(): Promise<void> {
    if (this.queue.isClosed) return;
    // Writes already accepted are committed (and their callers answered) before the file closes.
    this.queue.close();
    this.listeners.clear();
    this.db.close();
  }

  // ── Client side ──────────────────────────────────────────────────────────────────────────

  /** Creates a run (WorkflowStarted + ready task) or attaches per `onConflict`. */
  async startWorkflow(req: StartWorkflowRequest): Promise<StartWorkflowResult> {
    return this.queue.write((out) => startIn(this.store, req, req.onConflict, this.store.clock(), out));
  }

  /** Puts a SignalReceived event in the open run's inbox. @throws RunNotFoundError */
  async signalWorkflow(req: SignalRequest): Promise<{ runId: string }> {
    return this.queue.write((out) => signalIn(this.store, req, out));
  }

  /** Starts a run unless one is open (closed runs never block it), then signals it; one transaction. */
  async signalWithStart(
    start: StartWorkflowRequest,
    signalBody: Uint8Array,
    options: { requestId?: string } = {},
  ): Promise<StartWorkflowResult> {
    return this.queue.write((out) =>
      signalWithStartIn(this.store, start, signalBody, options.requestId, out),
    );
  }

  /** Puts CancelRequested in the open run's inbox, or reports the closed run's status. */
  async requestCancel(req: CancelRequest): Promise<CancelResult> {
    return this.queue.write((out) => requestCancelIn(this.store, req, out));
  }

  // ── Workflow tasks ───────────────────────────────────────────────────────────────────────

  /** Leases the oldest claimable workflow task of these workflows; null when there is none. */
  async claimWorkflowTask(req: {
    workerId: string;
    workflowNames: string[];
    leaseMs: number;
  }): Promise<ClaimedWorkflowTask | null> {
    return workflowTasks.claimWorkflowTask(this.store, req);
  }

  /** History events with seq > afterSeq, checksums verified. @throws HistoryCorruptError */
  async getHistory(runId: string, afterSeq = 0): Promise<RawEvent[]> {
    return workflowTasks.readHistory(this.store, runId, afterSeq);
  }

  /** The run's unconsumed inbox, in consumption order. @throws HistoryCorruptError */
  async getInbox(runId: string): Promise<InboxEvent[]> {
    return workflowTasks.readInbox(this.store, runId);
  }

  /**
   * Commits one activation in one transaction, guarded by `expectedLastSeq` and (when given) the
   * task's fence. See HOW_IT_WORKS.md for the order of writes.
   *
   * @throws ConflictError when a guard fails (nothing written; discard the activation and re-read)
   * @throws InternalContractError when the request itself is malformed (a worker bug)
   */
  async commitActivation(req: ActivationCommit): Promise<ActivationResult> {
    validateCommit(req);
    return this.queue.write(
      (out) => commitActivationIn(this.store, req, out, this.queue.historySink),
      "sqlite.commit.after",
      req.runId,
    );
  }

  /** Parks the run as blocked until `retryAt`; history untouched. @throws ConflictError (stale fence) */
  async blockRun(req: BlockRequest): Promise<void> {
    return workflowTasks.blockRun(this.store, req);
  }

  /** Gives the task back, claimable at `retryAt` (default now). @throws ConflictError (stale fence) */
  async releaseWorkflowTask(req: { runId: string; fence: number; retryAt?: number }): Promise<void> {
    return workflowTasks.releaseWorkflowTask(this.store, req);
  }

  /** Makes the unleased tasks of blocked runs of these workflows claimable now; returns how many. */
  async retryBlockedRuns(workflowNames: string[]): Promise<number> {
    return workflowTasks.retryBlockedRuns(this.store, workflowNames);
  }

  // ── Activity tasks ───────────────────────────────────────────────────────────────────────

  /** Leases the oldest claimable activity task of these names (attempt + 1); null when none. */
  async claimActivityTask(req: {
    workerId: string;
    activityNames: string[];
  }): Promise<ClaimedActivityTask | null> {
    return activities.claimActivityTask(this.store, req);
  }

  /** Extends the attempt's lease to now + leaseMs. @throws ConflictError (stale or cancelled) */
  async heartbeatActivityTask(ref: ActivityAttemptRef, leaseMs: number): Promise<{ leaseExpiresAt: number }> {
    return activities.heartbeatActivityTask(this.store, ref, leaseMs);
  }

  /** Removes the task and puts its result event in the run's inbox. @throws ConflictError */
  async completeActivityTask(
    ref: ActivityAttemptRef,
    event: { type: EventType; body: Uint8Array },
  ): Promise<void> {
    return activities.completeActivityTask(this.store, ref, event);
  }

  /** Releases the attempt and makes the task claimable at `retryAt`. @throws ConflictError */
  async retryActivityTask(ref: ActivityAttemptRef, retryAt: number, lastError: Uint8Array): Promise<void> {
    return activities.retryActivityTask(this.store, ref, retryAt, lastError);
  }

  /** Gives back an attempt that never started, not counted. @throws ConflictError */
  async releaseActivityTask(ref: ActivityAttemptRef): Promise<void> {
    return activities.releaseActivityTask(this.store, ref);
  }

  // ── Timers ───────────────────────────────────────────────────────────────────────────────

  /** Moves up to `limit` due timers into their runs' inboxes as TimerFired; returns how many. */
  async fireDueTimers(limit: number): Promise<number> {
    return timers.fireDueTimers(this.store, limit);
  }

  /** The earliest timer due time, task ready time or lease expiry; null when nothing is pending. */
  async nextWakeAt(): Promise<number | null> {
    return timers.nextWakeAt(this.store);
  }

  // ── Worker liveness ──────────────────────────────────────────────────────────────────────

  /**
   * Records the worker with this process's identity (host, boot id, PID namespace, pid, process
   * start time), so workers on this machine can tell at once when it dies. A row left by another
   * incarnation of the same id has its leases released first.
   */
  async registerWorker(reg: WorkerRegistration): Promise<void> {
    return workers.registerWorker(this.store, reg);
  }

  /** Refreshes the worker's heartbeat; false when it was presumed dead or is unknown. */
  async heartbeatWorker(workerId: string): Promise<boolean> {
    return workers.heartbeatWorker(this.store, workerId);
  }

  /**
   * Releases the leases of dead workers. The judgement is read-only (a process check per worker on
   * this machine, a heartbeat age otherwise): a sweep that finds nobody dead writes nothing.
   */
  async releaseDeadWorkers(): Promise<DeadWorkerSweep> {
    return workers.releaseDeadWorkers(this.store);
  }

  /** Marks the worker stopped (clean shutdown). */
  async unregisterWorker(workerId: string): Promise<void> {
    return workers.unregisterWorker(this.store, workerId);
  }

  // ── Wake-ups, clock, integrity ───────────────────────────────────────────────────────────

  /** Registers a listener for this process's notifications (called synchronously after commit). */
  subscribe(listener: (n: BackendNotification) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The injected clock. */
  now(): number {
    return this.store.clock();
  }

  /**
   * `PRAGMA quick_check` and every row's checksum (history, inbox, runs, activity tasks); read-only.
   * What `spool doctor` runs. A storage error (a damaged page) ends the scan with that error.
   */
  async checkIntegrity(): Promise<IntegrityReport> {
    return this.queue.read(() => checkSqliteIntegrity(this.db));
  }

  /** Tells this process's listeners what a committed write announced. */
  private emit(out: SqliteOutbox): void {
    if (this.listeners.size === 0) return;
    for (const note of out.notifications()) {
      for (const listener of [...this.listeners]) {
        try {
          listener(note);
        } catch {
          // A listener's failure must not turn a committed write into a rejected call.
        }
      }
    }
  }
}
