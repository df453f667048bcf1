/**
 * `SqliteBackend`: Spool's embedded default store, the {@link Backend} contract on one SQLite file
 * (or `:memory:`) through better-sqlite3. Every state transition is one `BEGIN IMMEDIATE`
 * transaction, so several connections — in this process or in other processes on the same
 * machine — can share a file safely. HOW_IT_WORKS.md describes the tables and protocols.
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
import {
  attemptLeaseMs,
  ConfigurationError,
  ConflictError,
  HistoryCorruptError,
  isOpenStatus,
  newId,
  RunNotFoundError,
  SignalBufferFullError,
  SpoolError,
} from "@spool/core";
import {
  activityChecksum,
  attachOrConflict,
  eventChecksum,
  runChecksum,
  runRowCorruption,
  runRowError,
  staleAttempt,
  toClaimedActivity,
  toInboxEvents,
  toRawEvents,
  toRunRecordUnchecked,
  validateCommit,
  withRunStatus,
} from "@spool/sql-store";
import Database from "better-sqlite3";
import { AnchoredClock, monotonicMs, STEP_MS } from "./anchored-clock.ts";
import { migrate } from "./migrations.ts";
import { selfIdentity } from "./process-identity.ts";
import { checkSqliteIntegrity } from "./sqlite-doctor.ts";
import { translateSqliteError } from "./sqlite-errors.ts";
import { SqliteInspector } from "./sqlite-inspector.ts";
import { prepareStatements, type Statements } from "./statements.ts";
import { FORGET_WORKERS_AFTER_MS, isDeadWorker } from "./worker-registry.ts";

/** Options of {@link SqliteBackend}. */
export interface SqliteBackendOptions {
  /** Database file, created if missing; `":memory:"` for a private in-memory store (tests). */
  path: string;
  /**
   * `"full"` (default): `synchronous=FULL`, every acknowledged write survives power loss.
   * `"normal"`: `synchronous=NORMAL`, faster; survives process crashes but the newest commits may
   * be lost on power loss or an OS crash.
   */
  durability?: "full" | "normal";
  /** How long a write waits for another connection's write lock before failing (default 5000). */
  busyTimeoutMs?: number;
  /**
   * Milliseconds since the epoch; every lease, due time and timestamp is read from it. Default: the
   * wall clock, advanced by the machine's monotonic clock and guarded against steps — when the wall
   * clock steps (NTP, `date -s`), every pending timer, back-off and lease in the file is moved by
   * the step, once, so sleeps and leases keep their durations, and a warning says so. An injected
   * clock is used as it is.
   */
  clock?: () => number;
  /** Where the backend reports what an operator must know (a wall-clock step). Default: console.warn. */
  onWarning?: (message: string, fields: Record<string, unknown>) => void;
  /** Lease used by `claimWorkflowTask` when the request's `leaseMs` is not positive (default 30000). */
  workflowLeaseMs?: number;
  /**
   * Lease of an activity attempt that has neither a heartbeat timeout nor an attempt timeout
   * (default 300000). When it runs out the attempt is offered to another worker, so an activity
   * without timeouts that runs longer than this should heartbeat.
   */
  activityLeaseMs?: number;
  /**
   * Most signals a run may hold unconsumed — delivered, not yet taken by its code with
   * `signal.wait()` — before a new one is refused with SignalBufferFullError (default 1000).
   * Without a cap, signals a workflow never waits for grow its history until the run fails at
   * the history limit; the cap turns that into an error the sender sees.
   */
  maxBufferedSignals?: number;
  /**
   * Test-only fault points, called synchronously at named moments of an activation commit:
   * `sqlite.commit.mid` (inside the transaction, after the history rows — written, or queued for
   * the batch's multi-row insert before COMMIT), `sqlite.commit.end`
   * (inside, after every statement) and `sqlite.commit.after` (committed, before the caller hears).
   * Every write, activations included, passes `sqlite.write.begin` (inside the transaction, before
   * its first statement) and `sqlite.write.end` (inside, after its statements); every other write
   * transaction (claims, completions, timers, starts...) passes `sqlite.write.after` (committed).
   * `info` names the run of an activation. Crash tests SIGKILL the process there, or throw, stall
   * or sleep; the benchmark times the phases of a step with them; never set it in production.
   */
  faultHook?: (point: SqliteFaultPoint, info?: { runId?: string }) => void;
}

/** The fault points of {@link SqliteBackendOptions.faultHook}. */
export type SqliteFaultPoint =
  | "sqlite.write.begin"
  | "sqlite.commit.mid"
  | "sqlite.commit.end"
  | "sqlite.commit.after"
  | "sqlite.write.end"
  | "sqlite.write.after";

/** What one transaction wants to tell listeners once it has committed. */
class Outbox {
  /**
   * How far the clock's anchor moved (wall-clock steps reconciled) between the call and this write:
   * added to the absolute times the caller computed from `now()` (retry times, timer due times),
   * which are on the anchor of the moment they were computed.
   */
  frameShift = 0;
  workflowTask = false;
  activityTask = false;
  timer = false;
  readonly cancelled: string[] = [];
  readonly closed: { runId: string; workflowId: string }[] = [];
}

interface NewRun {
  runId: string;
  workflowId: string;
  workflowName: string;
  version: string | null;
  startedEventBody: Uint8Array;
  parentRunId: string | null;
  parentWorkflowId: string | null;
  parentStep: number | null;
  continuedFrom: string | null;
  /** `inputFingerprint` of the run's input, or null when unknown. */
  inputHash: string | null;
}

/**
 * The SQLite implementation of Spool's {@link Backend}: runs, append-only checksummed histories,
 * per-run inboxes and the workflow/activity/timer queues in one database file.
 *
 * The constructor opens the file, sets the pragmas (WAL, `synchronous`, busy timeout) and runs
 * pending migrations synchronously, so `init()` has nothing left to do. Several backends (and
 * several processes) may open one file; they coordinate through SQLite's locks, but notifications
 * stay in-process (`notifiesAcrossProcesses` is false), so workers in other processes poll.
 *
 * @throws ConfigurationError from the constructor for invalid options or a database written by a
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

  private readonly db: Database.Database;
  private readonly stmts: Statements;
  private readonly clock: () => number;
  /** The default clock (null when one was injected): see syncClock. */
  private readonly anchored: AnchoredClock | null;
  /** The warning of a step reconciled by the running batch, told once the batch commits. */
  private clockWarning: [string, Record<string, unknown>] | undefined;
  /** Every anchor change adopted by this process, in order (their sum corrects late absolute times). */
  private readonly frameShifts: number[] = [];
  /** A wall-clock step was seen and not yet reconciled with the file's anchor. */
  private clockStepPending = false;
  /** The file has no anchor for this boot yet: the first write batch records it (moving nothing). */
  private clockAnchorUnrecorded = false;
  private readonly onWarning: NonNullable<SqliteBackendOptions["onWarning"]>;
  private readonly busyTimeoutMs: number;
  private readonly workflowLeaseMs: number;
  private readonly activityLeaseMs: number;
  private readonly maxBufferedSignals: number;
  private readonly faultHook: SqliteBackendOptions["faultHook"];
  private readonly writeQueue: QueuedWrite[] = [];
  private readonly listeners = new Set<(n: BackendNotification) => void>();
  /** One reusable transaction wrapper: creating a wrapper per call would allocate on every write. */
  private readonly txn: Database.Transaction<(fn: () => unknown) => unknown>;
  private closed = false;
  /**
   * History rows (VALUES_PER_EVENT values each) that activations of the batch running without
   * savepoints have queued; written together before its COMMIT (see writeQueuedHistory).
   * Undefined: write at once.
   */
  private queuedHistory: unknown[] | undefined;
  /** When the write batch at the head of the queue first found the lock held (see retryWhenBusy). */
  private busySince: number | undefined;

  constructor(options: SqliteBackendOptions) {
    const durability = options.durability ?? "full";
    if (durability !== "full" && durability !== "normal") {
      throw new ConfigurationError(
        `SqliteBackend: durability must be "full" or "normal", got "${durability}"`,
      );
    }
    this.busyTimeoutMs = positiveInt(options.busyTimeoutMs, 5000, "busyTimeoutMs", true);
    this.workflowLeaseMs = positiveInt(options.workflowLeaseMs, 30_000, "workflowLeaseMs");
    this.activityLeaseMs = positiveInt(options.activityLeaseMs, 300_000, "activityLeaseMs");
    this.maxBufferedSignals = positiveInt(options.maxBufferedSignals, 1000, "maxBufferedSignals");
    this.faultHook = options.faultHook;
    if (typeof options.path !== "string" || options.path === "") {
      throw new ConfigurationError('SqliteBackend: path must be a file path or ":memory:"');
    }
    this.path = options.path;
    this.anchored = options.clock === undefined ? new AnchoredClock() : null;
    this.clock = options.clock ?? (() => this.anchoredNow());
    this.onWarning = options.onWarning ?? ((message) => console.warn(`[spool] WARN ${message}`));

    const db = new Database(options.path, { timeout: this.busyTimeoutMs });
    try {
      db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      // WAL lets readers run alongside the single writer and makes commits one sequential append;
      // an in-memory database has no file to put a WAL beside.
      if (options.path !== ":memory:") db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
      migrate(db, this.clock());
      // Lock waits are sliced from here on; see retryWhenBusy.
      if (this.busyTimeoutMs > BUSY_SLICE_MS) db.pragma(`busy_timeout = ${BUSY_SLICE_MS}`);
    } catch (err) {
      db.close();
      throw translateSqliteError(err, options.path, this.busyTimeoutMs);
    }
    this.db = db;
    this.stmts = prepareStatements(db);
    this.txn = db.transaction((fn: () => unknown) => fn());
    if (this.anchored !== null) {
      // Read-only, like opening a migrated file: adopt the file's anchor when it is this boot's; a
      // step since then shows as soon as the clock is read. Otherwise (a new file, another boot)
      // the first write records this boot's anchor.
      let row: { boot_id: string | null; offset_ms: number } | undefined;
      try {
        row = this.whenUnlocked(() => this.stmts.readClockAnchor.get());
      } catch {
        row = undefined;
      }
      if (row !== undefined && row.boot_id !== null && row.boot_id === selfIdentity.bootId) {
        // Times in the file are on its anchor. If the wall clock shows another offset, it stepped
        // while this process was not looking: treat that as a step of its own, reconciled (the
        // file's pending times moved) at the first write.
        this.anchored.offset = row.offset_ms;
        this.anchored.wallBaseline = row.offset_ms;
        if (this.anchored.localStep() !== 0) this.clockStepPending = true;
      } else {
        this.clockAnchorUnrecorded = true;
      }
    }
    this.inspect = new SqliteInspector({
      db,
      stmts: this.stmts,
      now: () => this.clock(),
      read: (fn) => this.read(fn),
    });
  }

  /** Nothing to do: the constructor already opened the file and ran migrations. */
  async init(): Promise<void> {
    this.assertOpen();
  }

  /** Closes the connection. Idempotent; every other call afterwards rejects. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Writes already accepted are committed (and their callers answered) before the file closes.
    this.flushWrites();
    while (this.writeQueue.length > 0) this.flushWrites(); // the lock was held: try again, in slices
    this.closed = true;
    this.listeners.clear();
    this.db.close();
  }

  // ── Client side ──────────────────────────────────────────────────────────────────────────

  /** Creates a run (WorkflowStarted + ready task) or attaches per `onConflict`. */
  async startWorkflow(req: StartWorkflowRequest): Promise<StartWorkflowResult> {
    return this.write((out) => this.startIn(req, req.onConflict, this.clock(), out));
  }

  /** Puts a SignalReceived event in the open run's inbox. @throws RunNotFoundError */
  async signalWorkflow(req: SignalRequest): Promise<{ runId: string }> {
    return this.write((out) => {
      const now = this.clock();
      const runId = this.openRunFor(req.workflowId, req.runId);
      if (this.firstSignal(runId, req.requestId)) {
        this.checkSignalRoom(req.workflowId, runId);
        this.deliver(runId, now, "SignalReceived", null, req.body, out);
      }
      return { runId };
    });
  }

  /** Starts a run unless one is open (closed runs never block it), then signals it; one transaction. */
  async signalWithStart(
    start: StartWorkflowRequest,
    signalBody: Uint8Array,
    options: { requestId?: string } = {},
  ): Promise<StartWorkflowResult> {
    return this.write((out) => {
      const now = this.clock();
      const started = this.startIn(start, "startNewIfClosed", now, out, start.onConflict !== "useExisting");
      if (this.firstSignal(started.runId, options.requestId)) {
        if (!started.created) this.checkSignalRoom(start.workflowId, started.runId);
        this.deliver(started.runId, now, "SignalReceived", null, signalBody, out);
      }
      return started;
    });
  }

  /** True when the signal is to be delivered: it has no request id, or one this run has not seen. */
  private firstSignal(runId: string, requestId: string | undefined): boolean {
    if (requestId === undefined) return true;
    return this.stmts.rememberSignal.run(runId, requestId).changes === 1;
  }

  /**
   * Refuses a signal when the run already holds maxBufferedSignals unconsumed ones. Runs inside
   * the delivering write transaction: SQLite has one writer at a time, so concurrent senders
   * are counted one after another and cannot overshoot the cap.
   */
  private checkSignalRoom(workflowId: string, runId: string): void {
    const waiting = this.stmts.unconsumedSignals.get(runId)?.n ?? 0;
    if (waiting >= this.maxBufferedSignals) {
      throw new SignalBufferFullError({ workflowId, runId, waiting, limit: this.maxBufferedSignals });
    }
  }

  /** Puts CancelRequested in the open run's inbox, or reports the closed run's status. */
  async requestCancel(req: CancelRequest): Promise<CancelResult> {
    return this.write((out) => {
      const s = this.stmts;
      const run =
        req.runId !== undefined
          ? s.getRun.get(req.runId)
          : (s.getOpenRun.get(req.workflowId) ?? s.getNewestRun.get(req.workflowId));
      if (run === undefined || run.workflow_id !== req.workflowId) {
        throw new RunNotFoundError(req.workflowId, req.runId);
      }
      const status = run.status as CancelResult["status"];
      if (!isOpenStatus(run.status)) return { outcome: "alreadyClosed", runId: run.run_id, status };
      this.deliver(run.run_id, this.clock(), "CancelRequested", null, req.body, out);
      return { outcome: "requested", runId: run.run_id, status };
    });
  }

  // ── Workflow tasks ───────────────────────────────────────────────────────────────────────

  /** Leases the oldest claimable workflow task of these workflows; null when there is none. */
  async claimWorkflowTask(req: {
    workerId: string;
    workflowNames: string[];
    leaseMs: number;
  }): Promise<ClaimedWorkflowTask | null> {
    if (req.workflowNames.length === 0) return null;
    if (this.read(() => this.stmts.anyWorkflowTaskVisible.get(this.clock())) === undefined) return null;
    const leaseMs = req.leaseMs > 0 ? req.leaseMs : this.workflowLeaseMs;
    const claimed = await this.write(() => {
      const s = this.stmts;
      const now = this.clock();
      const task = s.claimWorkflowTask
        .get(req.workflowNames.length)
        .get(req.workerId, now + leaseMs, now + leaseMs, now, ...req.workflowNames);
      if (task === undefined) return null;
      return { run: s.getRun.get(task.run_id)!, fence: task.fence, inbox: s.selectInbox.all(task.run_id) };
    });
    if (claimed === null) return null;
    // Verified after the claim commits: throwing inside would roll the claim back and leave the
    // corrupt run at the head of the queue, starving every run behind it. This way the bad run
    // sits out its lease and the others keep flowing.
    // A damaged run record goes the same way as a damaged inbox row: the worker parks the run.
    const run = toRunRecordUnchecked(claimed.run);
    const damaged = runRowCorruption(claimed.run);
    if (damaged !== null) {
      return { run, fence: claimed.fence, inbox: [], inboxError: runRowError(claimed.run, damaged) };
    }
    try {
      return { run, fence: claimed.fence, inbox: toInboxEvents(claimed.run.run_id, claimed.inbox) };
    } catch (err) {
      if (!HistoryCorruptError.is(err)) throw err;
      return { run, fence: claimed.fence, inbox: [], inboxError: err };
    }
  }

  /** History events with seq > afterSeq, checksums verified. @throws HistoryCorruptError */
  async getHistory(runId: string, afterSeq = 0): Promise<RawEvent[]> {
    return this.read(() => {
      const rows = this.stmts.selectHistory.all(runId, afterSeq);
      try {
        return toRawEvents(runId, afterSeq, rows);
      } catch (err) {
        throw withRunStatus(err, this.stmts.runStatus.get(runId)?.status);
      }
    });
  }

  /** The run's unconsumed inbox, in consumption order. @throws HistoryCorruptError */
  async getInbox(runId: string): Promise<InboxEvent[]> {
    return this.read(() => toInboxEvents(runId, this.stmts.selectInbox.all(runId)));
  }

  /**
   * Commits one activation in one transaction, guarded by `expectedLastSeq` and (when given) the
   * task's fence. See HOW_IT_WORKS.md for the order of writes.
   *
   * @throws ConflictError when a guard fails (nothing written; discard the activation and re-read)
   * @throws ConfigurationError when the request itself is malformed (a worker bug)
   */
  async commitActivation(req: ActivationCommit): Promise<ActivationResult> {
    validateCommit(req);
    return this.enqueue((out) => this.commitIn(req, out), "sqlite.commit.after", req.runId);
  }

  /**
   * Group commit: every write requested during one event-loop turn — activations of many
   * workflows, activity completions, starts, signals, claims — shares one transaction, so one
   * fsync instead of one each. With more than one write in the batch each runs in its own
   * savepoint, so a failed guard rolls back only its own writes; and no caller hears "done"
   * before the transaction holding its writes has committed.
   */
  private enqueue<T>(
    fn: (out: Outbox) => T,
    afterPoint: "sqlite.commit.after" | "sqlite.write.after" = "sqlite.write.after",
    runId?: string,
  ): Promise<T> {
    this.assertOpen();
    return new Promise<T>((resolve, reject) => {
      this.writeQueue.push({
        fn,
        gen: this.frameShifts.length,
        afterPoint,
        runId,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (this.writeQueue.length === 1) setImmediate(() => this.flushWrites());
    });
  }

  private flushWrites(): void {
    const batch = this.writeQueue.splice(0);
    if (batch.length === 0) return;
    const results: WriteResult[] = [];
    // First without savepoints: a SAVEPOINT and RELEASE per write cost about as much as one of an
    // activation's statements, and writes almost never fail. When one does, the whole transaction
    // is rolled back (nothing was written) and the batch runs again, each write in its savepoint,
    // so the others still commit.
    const offsetBefore = this.anchored?.offset;
    const baselineBefore = this.anchored?.wallBaseline ?? 0;
    const unrecordedBefore = this.clockAnchorUnrecorded;
    const runBatch = (isolated: boolean) =>
      this.txn.immediate(() => {
        results.length = 0;
        // A wall-clock step is reconciled before any write of the batch reads the clock.
        if (this.anchored !== null) this.syncClock();
        // Without savepoints, the batch's history rows go in a few multi-row statements at the end
        // rather than one statement per activation: each statement has a fixed cost of its own.
        // With savepoints each write must be whole on its own, so it writes its rows itself.
        this.queuedHistory = !isolated && batch.length > 1 ? [] : undefined;
        for (const item of batch) {
          if (!isolated) {
            try {
              results.push(this.applyWrite(item));
            } catch (error) {
              if (!this.db.inTransaction || abortsTransaction(error)) throw error;
              if (batch.length > 1) throw new IsolateWrites();
              // A batch of one needs no savepoint: its failure rolls the whole transaction back.
              results.push({ ok: false, error });
              throw new RollbackOnly();
            }
            continue;
          }
          let original: unknown;
          try {
            // Nested inside the open transaction, better-sqlite3 runs this as a SAVEPOINT.
            results.push(
              this.txn(() => {
                try {
                  return this.applyWrite(item);
                } catch (e) {
                  original = e;
                  throw e;
                }
              }) as WriteResult,
            );
          } catch (error) {
            const cause = original ?? error;
            // Storage-level failures (disk full, I/O, lock) may have rolled back the whole
            // transaction: fail the batch with the real cause rather than a savepoint error.
            if (!this.db.inTransaction || abortsTransaction(cause)) throw cause;
            results.push({ ok: false, error: cause });
          }
        }
        this.writeQueuedHistory();
      });
    try {
      this.assertOpen();
      try {
        runBatch(false);
      } catch (err) {
        this.revertClock(offsetBefore, baselineBefore, unrecordedBefore);
        if (!(err instanceof IsolateWrites)) throw err;
        runBatch(true);
      } finally {
        this.queuedHistory = undefined;
      }
    } catch (err) {
      this.revertClock(offsetBefore, baselineBefore, unrecordedBefore);
      if (!(err instanceof RollbackOnly)) {
        if (this.retryWhenBusy(err, batch)) return;
        const error = translateSqliteError(err, this.path, this.busyTimeoutMs);
        for (const item of batch) item.reject(error);
        return;
      }
    }
    this.busySince = undefined;
    if (this.clockWarning !== undefined) {
      const [message, fields] = this.clockWarning;
      this.clockWarning = undefined;
      this.onWarning(message, fields);
    }
    for (const [i, item] of batch.entries()) {
      const r = results[i];
      if (!r) continue;
      if (r.ok) {
        this.emit(r.out);
        try {
          this.faultHook?.(item.afterPoint, item.runId ? { runId: item.runId } : undefined);
        } catch (e) {
          // A test hook that throws here models an acknowledgement lost after the commit: that
          // caller hears the error, and the rest of the batch still settles.
          item.reject(e);
          continue;
        }
        item.resolve(r.value);
      } else {
        item.reject(translateSqliteError(r.error, this.path, this.busyTimeoutMs));
      }
    }
  }

  /** Runs one queued write inside the open transaction. */
  private applyWrite(item: QueuedWrite): WriteResult {
    const out = new Outbox();
    for (let i = item.gen; i < this.frameShifts.length; i++) out.frameShift += this.frameShifts[i]!;
    this.faultHook?.("sqlite.write.begin", item.runId ? { runId: item.runId } : undefined);
    const value = item.fn(out);
    this.faultHook?.("sqlite.write.end", item.runId ? { runId: item.runId } : undefined);
    return { ok: true, value, out };
  }

  /**
   * Writes the history rows the batch's activations queued, EVENTS_PER_INSERT rows per statement,
   * inside the batch's transaction. Their positions were claimed by each activation's guarded run
   * update, so a failure here is not a guard: storage errors fail the batch as any write would;
   * anything else (a constraint: the database was changed behind the backend's back) sends the
   * batch to the isolated pass, where each activation writes its own rows and fails alone.
   */
  private writeQueuedHistory(): void {
    const rows = this.queuedHistory;
    if (rows === undefined || rows.length === 0) return;
    this.queuedHistory = undefined;
    const perStatement = EVENTS_PER_INSERT * VALUES_PER_EVENT;
    try {
      for (let from = 0; from < rows.length; from += perStatement) {
        const chunk = rows.slice(from, from + perStatement);
        this.stmts.insertEvents.get(chunk.length / VALUES_PER_EVENT).run(...chunk);
      }
    } catch (error) {
      if (!this.db.inTransaction || abortsTransaction(error)) throw error;
      throw new IsolateWrites();
    }
  }

  /** Parks the run as blocked until `retryAt`; history untouched. @throws ConflictError (stale fence) */
  async blockRun(req: BlockRequest): Promise<void> {
    await this.write((out) => {
      const s = this.stmts;
      if (s.releaseWorkflowTask.run(req.retryAt + out.frameShift, req.runId, req.fence).changes !== 1) {
        throw this.staleTask("blockRun", req.runId, req.fence);
      }
      s.blockRun.run(
        req.error,
        req.reason,
        this.clock(),
        runChecksum(req.runId, "blocked", null, req.error),
        req.runId,
      );
      out.workflowTask = true;
    });
  }

  /** Gives the task back, claimable at `retryAt` (default now). @throws ConflictError (stale fence) */
  async releaseWorkflowTask(req: { runId: string; fence: number; retryAt?: number }): Promise<void> {
    await this.write((out) => {
      const at = req.retryAt !== undefined ? req.retryAt + out.frameShift : this.clock();
      if (this.stmts.releaseWorkflowTask.run(at, req.runId, req.fence).changes !== 1) {
        throw this.staleTask("releaseWorkflowTask", req.runId, req.fence);
      }
      out.workflowTask = true;
    });
  }

  /** Makes the unleased tasks of blocked runs of these workflows claimable now; returns how many. */
  async retryBlockedRuns(workflowNames: string[]): Promise<number> {
    if (workflowNames.length === 0) return 0;
    return this.write((out) => {
      const n = this.stmts.retryBlockedRuns
        .get(workflowNames.length)
        .run(this.clock(), ...workflowNames).changes;
      if (n > 0) out.workflowTask = true;
      return n;
    });
  }

  // ── Activity tasks ───────────────────────────────────────────────────────────────────────

  /** Leases the oldest claimable activity task of these names (attempt + 1); null when none. */
  async claimActivityTask(req: {
    workerId: string;
    activityNames: string[];
  }): Promise<ClaimedActivityTask | null> {
    if (req.activityNames.length === 0) return null;
    if (this.read(() => this.stmts.anyActivityTaskVisible.get(this.clock())) === undefined) return null;
    return this.write(() => {
      const row = this.stmts.claimActivity.get(req.activityNames.length).get(...req.activityNames, {
        owner: req.workerId,
        now: this.clock(),
        defaultLeaseMs: this.activityLeaseMs,
      });
      return row === undefined ? null : toClaimedActivity(row);
    });
  }

  /** Extends the attempt's lease to now + leaseMs. @throws ConflictError (stale or cancelled) */
  async heartbeatActivityTask(ref: ActivityAttemptRef, leaseMs: number): Promise<{ leaseExpiresAt: number }> {
    return this.write(() => {
      const leaseExpiresAt = this.clock() + leaseMs;
      const changed = this.stmts.heartbeatActivity.run({
        leaseExpiresAt,
        taskId: ref.taskId,
        fence: ref.fence,
      });
      if (changed.changes !== 1) throw staleAttempt("heartbeat", ref);
      return { leaseExpiresAt };
    });
  }

  /** Removes the task and puts its result event in the run's inbox. @throws ConflictError */
  async completeActivityTask(
    ref: ActivityAttemptRef,
    event: { type: EventType; body: Uint8Array },
  ): Promise<void> {
    await this.write((out) => {
      const s = this.stmts;
      const task = s.finishActivity.get(ref.taskId, ref.fence);
      if (task === undefined) throw staleAttempt("completion", ref);
      const run = s.runStatus.get(task.run_id);
      if (run !== undefined && isOpenStatus(run.status)) {
        this.deliver(task.run_id, this.clock(), event.type, task.step, event.body, out);
      }
    });
  }

  /** Releases the attempt and makes the task claimable at `retryAt`. @throws ConflictError */
  async retryActivityTask(ref: ActivityAttemptRef, retryAt: number, lastError: Uint8Array): Promise<void> {
    await this.write((out) => {
      if (
        this.stmts.retryActivity.run(retryAt + out.frameShift, lastError, ref.taskId, ref.fence).changes !== 1
      ) {
        throw staleAttempt("retry", ref);
      }
      out.activityTask = true;
    });
  }

  /** Gives back an attempt that never started, not counted. @throws ConflictError */
  async releaseActivityTask(ref: ActivityAttemptRef): Promise<void> {
    await this.write((out) => {
      if (this.stmts.releaseActivity.run(this.clock(), ref.taskId, ref.fence).changes !== 1) {
        throw staleAttempt("release", ref);
      }
      out.activityTask = true;
    });
  }

  // ── Timers ───────────────────────────────────────────────────────────────────────────────

  /** Moves up to `limit` due timers into their runs' inboxes as TimerFired; returns how many. */
  async fireDueTimers(limit: number): Promise<number> {
    if (!(limit > 0)) return 0;
    if (this.read(() => this.stmts.anyTimerDue.get(this.clock())) === undefined) return 0;
    return this.write((out) => {
      const now = this.clock();
      // RETURNING gives rows in no particular order; sort so inbox order is due-time order.
      const fired = this.stmts.fireDueTimers
        .all(now, Math.floor(limit))
        .sort((a, b) => a.due_at - b.due_at || cmp(a.run_id, b.run_id) || a.step - b.step);
      for (const t of fired) this.deliver(t.run_id, now, "TimerFired", t.step, null, out);
      return fired.length;
    });
  }

  /** The earliest timer due time, task ready time or lease expiry; null when nothing is pending. */
  async nextWakeAt(): Promise<number | null> {
    return this.read(() => this.stmts.nextWakeAt.get()?.t ?? null);
  }

  // ── Worker liveness ──────────────────────────────────────────────────────────────────────

  /**
   * Records the worker with this process's identity (host, boot id, PID namespace, pid, process
   * start time), so workers on this machine can tell at once when it dies. A row left by another
   * incarnation of the same id has its leases released first.
   */
  async registerWorker(reg: WorkerRegistration): Promise<void> {
    await this.write((out) => {
      const s = this.stmts;
      const now = this.clock();
      s.forgetOldWorkers.run(now - FORGET_WORKERS_AFTER_MS);
      const previous = s.workerIncarnation.get(reg.workerId);
      if (previous !== undefined && previous.incarnation !== reg.incarnation) {
        this.releaseLeasesOf(reg.workerId, now, out);
      }
      const me = selfIdentity;
      s.upsertWorker.run({
        workerId: reg.workerId,
        incarnation: reg.incarnation,
        pid: me.pid,
        host: me.host,
        bootId: me.bootId,
        pidNs: me.pidNs,
        startTicks: me.startTicks,
        now,
        intervalMs: Math.round(reg.heartbeatIntervalMs),
        deadAfterMs: Math.round(reg.deadAfterMs),
        workflowNames: JSON.stringify(reg.workflowNames),
        activityNames: JSON.stringify(reg.activityNames),
      });
    });
  }

  /** Refreshes the worker's heartbeat; false when it was presumed dead or is unknown. */
  async heartbeatWorker(workerId: string): Promise<boolean> {
    return this.write(() => this.stmts.heartbeatWorker.run(this.clock(), workerId).changes === 1);
  }

  /**
   * Releases the leases of dead workers. The judgement is read-only (a process check per worker on
   * this machine, a heartbeat age otherwise): a sweep that finds nobody dead writes nothing.
   */
  async releaseDeadWorkers(): Promise<DeadWorkerSweep> {
    const none: DeadWorkerSweep = { workers: [], workflowTasks: 0, activityTasks: 0 };
    const now = this.clock();
    const dead = this.read(() => this.stmts.activeWorkers.all()).filter((w) => isDeadWorker(w, now));
    if (dead.length === 0) return none;
    return this.write((out) => {
      const s = this.stmts;
      const at = this.clock();
      const swept: DeadWorkerSweep = { workers: [], workflowTasks: 0, activityTasks: 0 };
      for (const w of dead) {
        // Once per death: a sweep in another process may have marked (and released) it already.
        if (s.markWorkerDead.run(at, w.worker_id).changes !== 1) continue;
        swept.workers.push(w.worker_id);
        const released = this.releaseLeasesOf(w.worker_id, at, out);
        swept.workflowTasks += released.workflowTasks;
        swept.activityTasks += released.activityTasks;
      }
      return swept;
    });
  }

  /** Marks the worker stopped (clean shutdown). */
  async unregisterWorker(workerId: string): Promise<void> {
    await this.write(() => {
      this.stmts.stopWorker.run(this.clock(), workerId);
    });
  }

  /** Makes every lease `owner` holds claimable now, moving each fence on. */
  private releaseLeasesOf(
    owner: string,
    now: number,
    out: Outbox,
  ): { workflowTasks: number; activityTasks: number } {
    const workflowTasks = this.stmts.releaseWorkflowLeasesOf.run(now, owner).changes;
    const activityTasks = this.stmts.releaseActivityLeasesOf.run(now, owner).changes;
    if (workflowTasks > 0) out.workflowTask = true;
    if (activityTasks > 0) out.activityTask = true;
    return { workflowTasks, activityTasks };
  }

  // ── Clock ────────────────────────────────────────────────────────────────────────────────

  /** The default clock: wall time on the adopted anchor; a step is noticed here and reconciled soon. */
  private anchoredNow(): number {
    const clock = this.anchored!;
    if (!this.clockStepPending && clock.localStep() !== 0) {
      this.clockStepPending = true;
      // Reconciled at the start of the next write batch: make sure there is one.
      if (!this.closed) void this.write(() => undefined).catch(() => undefined);
    }
    return clock.now();
  }

  /**
   * Reconciles this process's clock with the anchor recorded in the file, inside a write
   * transaction. Every time stored in the file is expressed on that anchor. When the wall clock now
   * shows another offset (a step), every pending time — timer due times, task visibility, leases,
   * worker heartbeats — is moved by the step and the new offset recorded, once for all processes
   * on the machine (they see the same step; the first to get here applies it, the others find the
   * anchor already moved and adopt it). History keeps the times it recorded. At open, a file
   * anchored on another boot (or with no boot id to compare) is re-anchored without moving
   * anything: the monotonic clock restarted, so the offset says nothing about a step.
   */
  private syncClock(): void {
    const clock = this.anchored;
    if (clock === null) return;
    const atOpen = this.clockAnchorUnrecorded;
    this.clockStepPending = false;
    this.clockAnchorUnrecorded = false;
    const s = this.stmts;
    const wall = clock.wallOffset();
    const boot = selfIdentity.bootId;
    const row = s.readClockAnchor.get();
    if (row === undefined || row.boot_id !== boot || (boot === null && atOpen)) {
      s.writeClockAnchor.run(boot, wall);
      this.adoptOffset(wall);
      clock.wallBaseline = wall;
      return;
    }
    // What other processes applied since this one last synced, and what this one saw itself.
    const movedBy = row.offset_ms - clock.offset;
    const step = clock.localStep();
    clock.wallBaseline = wall;
    if (step === 0 || Math.abs(movedBy - step) <= STEP_MS) {
      // No step of its own, or the one it saw was applied already: follow the file.
      this.adoptOffset(row.offset_ms);
      return;
    }
    const delta = step;
    const timers = s.shiftTimers.run(delta).changes;
    const workflowTasks = s.shiftWorkflowTasks.run(delta, delta).changes;
    const activityTasks = s.shiftActivityTasks.run(delta, delta).changes;
    s.shiftWorkers.run(delta);
    const anchor = row.offset_ms + delta;
    s.writeClockAnchor.run(boot, anchor);
    const before = row.offset_ms + monotonicMs();
    this.adoptOffset(anchor);
    // Reported once the transaction has committed (what it says was moved is then true).
    this.clockWarning = [
      `the wall clock stepped by ${delta > 0 ? "+" : ""}${delta} ms (from ${new Date(before).toISOString()} ` +
        `to ${new Date(clock.now()).toISOString()}) against the machine's monotonic clock. Spool moved ` +
        `${timers} timer(s) and ${workflowTasks + activityTasks} task time(s) and lease(s) in ${this.path} by ` +
        "the same amount, so sleeps, back-offs and leases keep their durations (a sleepUntil() target moves " +
        "with them); history keeps the times it recorded. If the step was not expected, check the time " +
        "service (NTP/chrony should slew, not step).",
      { stepMs: delta, timers, tasks: workflowTasks + activityTasks, path: this.path },
    ];
  }

  /** Outside a transaction: adopt a step another process already applied (read-only). */
  private adoptAppliedStep(): void {
    const clock = this.anchored;
    if (clock === null) return;
    const row = this.whenUnlocked(() => this.stmts.readClockAnchor.get());
    const step = clock.localStep();
    if (row !== undefined && Math.abs(row.offset_ms - clock.offset - step) <= STEP_MS) {
      this.adoptOffset(row.offset_ms);
      clock.wallBaseline = clock.wallOffset();
      this.clockStepPending = false;
    }
  }

  /** Moves this process onto another anchor, remembering by how much (see Outbox.frameShift). */
  private adoptOffset(offset: number): void {
    const clock = this.anchored!;
    if (offset === clock.offset) return;
    this.frameShifts.push(offset - clock.offset);
    clock.offset = offset;
  }

  /** A batch that synced the clock rolled back: so did the anchor, so the step is still pending. */
  private revertClock(
    offsetBefore: number | undefined,
    baselineBefore: number,
    unrecordedBefore: boolean,
  ): void {
    if (this.anchored === null || offsetBefore === undefined) return;
    this.clockWarning = undefined;
    this.clockAnchorUnrecorded = unrecordedBefore;
    this.anchored.wallBaseline = baselineBefore;
    if (this.anchored.localStep() !== 0) this.clockStepPending = true;
    if (this.anchored.offset === offsetBefore) return;
    this.frameShifts.push(offsetBefore - this.anchored.offset);
    this.anchored.offset = offsetBefore;
  }

  // ── Wake-ups ─────────────────────────────────────────────────────────────────────────────

  /** Registers a listener for this process's notifications (called synchronously after commit). */
  subscribe(listener: (n: BackendNotification) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The injected clock. */
  now(): number {
    return this.clock();
  }

  /**
   * `PRAGMA quick_check` and every row's checksum (history, inbox, runs, activity tasks); read-only.
   * What `spool doctor` runs. A storage error (a damaged page) ends the scan with that error.
   */
  async checkIntegrity(): Promise<IntegrityReport> {
    return this.read(() => checkSqliteIntegrity(this.db));
  }

  // ── Transactions ─────────────────────────────────────────────────────────────────────────

  /** Runs `fn` in a BEGIN IMMEDIATE transaction, then notifies listeners if it committed. */
  /** Runs `fn` in the next group-commit transaction; resolves once that transaction has committed. */
  private write<T>(fn: (out: Outbox) => T): Promise<T> {
    return this.enqueue(fn);
  }

  /** Runs a read (each statement is its own consistent snapshot in WAL mode). */
  private read<T>(fn: () => T): T {
    this.assertOpen();
    if (this.clockStepPending) this.adoptAppliedStep();
    try {
      return this.whenUnlocked(fn);
    } catch (err) {
      throw translateSqliteError(err, this.path, this.busyTimeoutMs);
    }
  }

  /**
   * Lock waits are sliced. The connection's busy timeout is only BUSY_SLICE_MS: SQLite's busy
   * handler sleeps longer and longer between tries (up to 100 ms), and a process polling that
   * slowly almost never finds the lock free while another process commits back to back — in the
   * reliability soak a live worker starved that way for longer than an activity lease, and its
   * attempts were taken over and run again. A batch that meets a held lock goes back to the head of
   * the queue and is tried again on the next turn of the event loop (which keeps running meanwhile),
   * until the busy timeout has passed since its first try.
   */
  private retryWhenBusy(err: unknown, batch: typeof this.writeQueue): boolean {
    const busy = err instanceof Database.SqliteError && err.code.startsWith("SQLITE_BUSY");
    this.busySince ??= Date.now();
    if (!busy || this.closed || Date.now() - this.busySince >= this.busyTimeoutMs) {
      this.busySince = undefined;
      return false;
    }
    this.writeQueue.unshift(...batch);
    setImmediate(() => this.flushWrites());
    return true;
  }

  /** Runs a read, trying again in slices while the lock is held (see retryWhenBusy). */
  private whenUnlocked<T>(fn: () => T): T {
    const deadline = Date.now() + this.busyTimeoutMs;
    for (;;) {
      try {
        return fn();
      } catch (err) {
        const busy = err instanceof Database.SqliteError && err.code.startsWith("SQLITE_BUSY");
        if (!busy || Date.now() >= deadline) throw err;
      }
    }
  }

  private assertOpen(): void {
    if (this.closed)
      throw new SpoolError(`SqliteBackend (${this.path}) is closed; create a new backend to continue.`);
  }

  private emit(out: Outbox): void {
    if (this.listeners.size === 0) return;
    const notes: BackendNotification[] = [];
    if (out.workflowTask) notes.push({ kind: "workflow-task" });
    if (out.activityTask) notes.push({ kind: "activity-task" });
    if (out.timer) notes.push({ kind: "timer" });
    for (const taskId of out.cancelled) notes.push({ kind: "activity-cancelled", taskId });
    for (const c of out.closed) notes.push({ kind: "run-closed", runId: c.runId, workflowId: c.workflowId });
    for (const note of notes) {
      for (const listener of [...this.listeners]) {
        try {
          listener(note);
        } catch {
          // A listener's failure must not turn a committed write into a rejected call.
        }
      }
    }
  }

  // ── Transaction bodies (run inside write) ────────────────────────────────────────────────

  private startIn(
    req: StartWorkflowRequest,
    policy: StartWorkflowRequest["onConflict"],
    now: number,
    out: Outbox,
    checkInput = policy !== "useExisting",
  ): StartWorkflowResult {
    const s = this.stmts;
    const open = s.getOpenRun.get(req.workflowId);
    const existing = open ?? (policy === "startNewIfClosed" ? undefined : s.getNewestRun.get(req.workflowId));
    if (existing !== undefined)
      return attachOrConflict(req, existing, { fail: policy === "fail", checkInput });
    const runId = newId();
    this.createRun(
      {
        runId,
        workflowId: req.workflowId,
        workflowName: req.workflowName,
        version: req.version,
        startedEventBody: req.startedEventBody,
        parentRunId: null,
        parentWorkflowId: null,
        parentStep: null,
        continuedFrom: null,
        inputHash: req.inputHash ?? null,
      },
      now,
      out,
    );
    return { runId, created: true, workflowName: req.workflowName };
  }

  /** Inserts a run, its WorkflowStarted event (#1) and its ready workflow task. */
  private createRun(run: NewRun, now: number, out: Outbox): void {
    const s = this.stmts;
    s.insertRun.run({
      runId: run.runId,
      workflowId: run.workflowId,
      workflowName: run.workflowName,
      version: run.version,
      now,
      parentRunId: run.parentRunId,
      parentWorkflowId: run.parentWorkflowId,
      parentStep: run.parentStep,
      continuedFrom: run.continuedFrom,
      inputHash: run.inputHash,
      crc: runChecksum(run.runId, "running", null, null),
    });
    const body = run.startedEventBody;
    s.insertEvent.run(
      run.runId,
      1,
      now,
      "WorkflowStarted",
      null,
      body,
      eventChecksum(1, now, "WorkflowStarted", null, body),
    );
    s.insertWorkflowTask.run(run.runId, run.workflowName, now);
    out.workflowTask = true;
  }

  /** The open run a signal targets. @throws RunNotFoundError */
  private openRunFor(workflowId: string, runId: string | undefined): string {
    const s = this.stmts;
    const run = runId !== undefined ? s.getRun.get(runId) : s.getOpenRun.get(workflowId);
    if (run === undefined || run.workflow_id !== workflowId || !isOpenStatus(run.status)) {
      throw new RunNotFoundError(workflowId, runId, "open run");
    }
    return run.run_id;
  }

  /** Appends an inbound event to a run's inbox and wakes its workflow task. */
  private deliver(
    runId: string,
    now: number,
    type: EventType,
    step: number | null,
    body: Uint8Array | null,
    out: Outbox,
  ): void {
    this.stmts.insertInbox.run(runId, now, type, step, body, eventChecksum(0, now, type, step, body));
    this.stmts.wakeWorkflowTask.run({ runId, now });
    out.workflowTask = true;
  }

  private commitIn(req: ActivationCommit, out: Outbox): ActivationResult {
    const s = this.stmts;
    const now = this.clock();
    const { runId, close } = req;
    const lastSeq = req.expectedLastSeq + req.events.length;
    const nextRunId = close?.continueAsNew !== undefined ? newId() : null;

    // 1. Guards and the run row, in one statement (the lean one when the run stays running).
    const fence = req.fence ?? null;
    const expectedLastSeq = req.expectedLastSeq;
    const buffered = req.bufferedSignals ?? null;
    const status = close?.status ?? "running";
    const result = close?.result ?? null;
    const error = close?.error ?? null;
    const run =
      (close === undefined
        ? s.advanceRun.get(lastSeq, now, buffered, runId, expectedLastSeq, fence, fence)
        : undefined) ??
      s.commitRun.get({
        runId,
        expectedLastSeq,
        fence,
        lastSeq,
        status,
        now,
        closedAt: close !== undefined ? now : null,
        result,
        error,
        continuedTo: nextRunId,
        crc: runChecksum(runId, status, result, error),
        buffered,
      });
    if (run === undefined) throw this.commitConflict(req);

    // 2. Eager completion: the activity whose result is among the events must still be ours.
    if (req.completedActivity !== undefined) {
      const done = s.finishActivity.get(req.completedActivity.taskId, req.completedActivity.fence);
      if (done === undefined || done.run_id !== runId) {
        throw new ConflictError(
          `activation of run ${runId} discarded: activity task ${req.completedActivity.taskId} with fence ` +
            `${req.completedActivity.fence} is no longer current (retried elsewhere, cancelled or already completed). ` +
            "Nothing was written; re-read the run and replay.",
        );
      }
    }

    // 3. History (queued for the batch's multi-row statements, or written now in statements of up
    // to EVENTS_PER_INSERT rows) and the inbox rows it consumed.
    const queued = this.queuedHistory;
    for (let from = 0; from < req.events.length; from += EVENTS_PER_INSERT) {
      const chunk = req.events.slice(from, from + EVENTS_PER_INSERT);
      const values: unknown[] = queued ?? [];
      for (const e of chunk) {
        values.push(
          runId,
          e.seq,
          e.ts,
          e.type,
          e.step,
          e.body,
          eventChecksum(e.seq, e.ts, e.type, e.step, e.body),
        );
      }
      if (queued === undefined) s.insertEvents.get(chunk.length).run(...values);
    }
    this.faultHook?.("sqlite.commit.mid", { runId });
    for (const id of req.consumedInbox) {
      if (s.consumeInbox.run(id, runId).changes !== 1) {
        throw new ConflictError(
          `activation of run ${runId} discarded: inbox event ${id} is not in this run's inbox (already consumed?). ` +
            "Nothing was written; re-read the run and replay.",
        );
      }
    }

    // An acknowledged signal is never lost: a run may not end while inbound events it has not seen
    // wait in its inbox (they arrived during this activation). The worker re-runs the activation
    // with them; they are then recorded, before or after the closing event. Continue-as-new is
    // exempt: those events move on to the next run below.
    if (close !== undefined && close.continueAsNew === undefined && s.selectInbox.all(runId).length > 0) {
      throw new ConflictError(
        `activation of run ${runId} discarded: it would end the run while new inbound events wait in its inbox. ` +
          "Nothing was written; re-read the run and replay with them.",
      );
    }

    // 4. Withdrawn work first, so a step cancelled and rescheduled in one activation ends up scheduled.
    for (const step of req.cancelActivities) {
      for (const t of s.cancelActivity.all(runId, step))
        if (t.lease_owner !== null) out.cancelled.push(t.task_id);
    }
    for (const step of req.cancelTimers) s.cancelTimer.run(runId, step);

    // 5. New work. A closing activation schedules nothing: the run's outstanding work is withdrawn.
    const claimedActivities: ClaimedActivityTask[] = [];
    if (close === undefined) {
      let eagerLeft = req.eagerActivities?.maxTasks ?? 0;
      for (const a of req.activities) {
        const taskId = newId();
        if (
          eagerLeft > 0 &&
          req.eagerActivities !== undefined &&
          req.eagerActivities.activityNames.includes(a.name)
        ) {
          eagerLeft--;
          const leaseExpiresAt = now + this.attemptLease(a.timeoutMs, a.heartbeatTimeoutMs);
          const owner = req.eagerActivities.workerId;
          s.insertActivity.run(
            taskId,
            runId,
            run.workflow_id,
            a.step,
            a.name,
            a.input,
            a.options,
            1,
            1,
            leaseExpiresAt,
            owner,
            leaseExpiresAt,
            a.timeoutMs,
            a.heartbeatTimeoutMs,
            now,
            activityChecksum(runId, a.step, a.name, a.input),
          );
          claimedActivities.push({
            taskId,
            runId,
            workflowId: run.workflow_id,
            step: a.step,
            name: a.name,
            input: a.input,
            options: a.options,
            attempt: 1,
            fence: 1,
            timeoutMs: a.timeoutMs,
            heartbeatTimeoutMs: a.heartbeatTimeoutMs,
            scheduledAt: now,
            leaseExpiresAt,
          });
        } else {
          s.insertActivity.run(
            taskId,
            runId,
            run.workflow_id,
            a.step,
            a.name,
            a.input,
            a.options,
            0,
            0,
            now,
            null,
            null,
            a.timeoutMs,
            a.heartbeatTimeoutMs,
            now,
            activityChecksum(runId, a.step, a.name, a.input),
          );
          out.activityTask = true;
        }
      }
      for (const t of req.timers) s.insertTimer.run(runId, t.step, t.dueAt + out.frameShift);
      if (req.timers.length > 0) out.timer = true;
    }

    // 6. Children: a workflow id that already has an open run is reported back to this run as
    // ChildStartFailed rather than failing the commit, so the parent learns it deterministically.
    const createdRuns: ActivationResult["createdRuns"] = [];
    for (const c of req.children) {
      if (s.getOpenRun.get(c.workflowId) !== undefined) {
        s.insertInbox.run(
          runId,
          now,
          "ChildStartFailed",
          c.step,
          null,
          eventChecksum(0, now, "ChildStartFailed", c.step, null),
        );
        continue;
      }
      const childRunId = newId();
      this.createRun(
        {
          runId: childRunId,
          workflowId: c.workflowId,
          workflowName: c.workflowName,
          version: c.version,
          startedEventBody: c.startedEventBody,
          parentRunId: runId,
          parentWorkflowId: run.workflow_id,
          parentStep: c.step,
          continuedFrom: null,
          inputHash: c.inputHash ?? null,
        },
        now,
        out,
      );
      createdRuns.push({ step: c.step, runId: childRunId, workflowId: c.workflowId });
    }
    for (const c of req.cancelChildren) {
      // Only a run that is still this run's child: the id may have been reused by an unrelated run.
      const child = s.getOpenRun.get(c.workflowId);
      if (child !== undefined && child.parent_run_id === runId) {
        this.deliver(child.run_id, now, "CancelRequested", null, c.body, out);
      }
    }

    // 7. The workflow task: gone with a closed run, else ready or idle depending on the inbox.
    if (close !== undefined) {
      s.deleteWorkflowTask.run(runId);
      for (const t of s.deleteActivitiesOfRun.all(runId))
        if (t.lease_owner !== null) out.cancelled.push(t.task_id);
      s.deleteTimersOfRun.run(runId);
      s.forgetSignalsOfRun.run(runId);
      if (close.continueAsNew !== undefined && nextRunId !== null) {
        // Inherits the parent link: the chain as a whole is the parent's child.
        this.createRun(
          {
            runId: nextRunId,
            workflowId: run.workflow_id,
            workflowName: close.continueAsNew.workflowName,
            version: close.continueAsNew.version,
            startedEventBody: close.continueAsNew.startedEventBody,
            parentRunId: run.parent_run_id,
            parentWorkflowId: run.parent_workflow_id,
            parentStep: run.parent_step,
            continuedFrom: runId,
            inputHash: close.continueAsNew.inputHash ?? null,
          },
          now,
          out,
        );
        // An acknowledged signal is never lost: signals the old run received but did not consume
        // come first, then inbox events it never saw, all in arrival order.
        const carried = close.continueAsNew.carriedSignals ?? [];
        if (carried.length === 0) {
          s.moveInboxToRun.run(nextRunId, runId);
        } else {
          // Inbox order is id order, so unseen rows are re-inserted after the carried signals.
          const unseen = s.selectInbox
            .all(runId)
            .filter((r) => r.type === "SignalReceived" || r.type === "CancelRequested");
          for (const body of carried) this.deliver(nextRunId, now, "SignalReceived", null, body, out);
          for (const r of unseen) {
            // Copied as stored (checksum included): rows are verified when they are read.
            const row = r as {
              ts: number;
              type: string;
              step: number | null;
              body: Uint8Array | null;
              crc: number;
            };
            s.insertInbox.run(nextRunId, row.ts, row.type, row.step, row.body, row.crc);
          }
          s.deleteInboxOfRun.run(runId);
        }
        createdRuns.push({ step: null, runId: nextRunId, workflowId: run.workflow_id });
      }
      s.deleteInboxOfRun.run(runId);
      if (close.parentEvent !== undefined && run.parent_run_id !== null) {
        const parent = s.runStatus.get(run.parent_run_id);
        if (parent !== undefined && isOpenStatus(parent.status)) {
          const { type, body } = close.parentEvent;
          this.deliver(run.parent_run_id, now, type, run.parent_step, body, out);
        }
      }
      out.closed.push({ runId, workflowId: run.workflow_id });
    } else {
      // Events still in the inbox (arrived during the activation, or a ChildStartFailed added above)
      // leave the task ready; otherwise it goes idle until something arrives.
      // Spared when the task was idle with an empty inbox and this activation added nothing to it
      // (a child start that failed would have): the settle would change nothing.
      const idle =
        "settled" in run && run.settled === 1 && req.children.length === 0 && req.consumedInbox.length === 0;
      if (!idle) {
        const task = s.settleWorkflowTask.get({ runId, now, fenced: req.fence !== undefined ? 1 : 0 });
        if (task !== undefined && task.visible_at !== null) out.workflowTask = true;
      }
    }

    this.faultHook?.("sqlite.commit.end", { runId });
    return { lastSeq, claimedActivities, createdRuns };
  }

  /** Lease of an attempt: heartbeat timeout if set, else attempt timeout, else the default. */
  private attemptLease(timeoutMs: number, heartbeatTimeoutMs: number): number {
    return attemptLeaseMs(timeoutMs, heartbeatTimeoutMs, this.activityLeaseMs);
  }

  /** Explains which activation guard failed (read inside the same transaction, so it is exact). */
  private commitConflict(req: ActivationCommit): ConflictError {
    const s = this.stmts;
    const run = s.runStatus.get(req.runId);
    let why: string;
    if (run === undefined) why = "there is no such run";
    else if (!isOpenStatus(run.status)) why = `the run is already ${run.status}`;
    else if (run.last_seq !== req.expectedLastSeq) {
      why =
        `expected last seq ${req.expectedLastSeq} but the run is at ${run.last_seq} ` +
        "(another activation committed first)";
    } else {
      const task = s.workflowTaskState.get(req.runId);
      why =
        `workflow task fence ${req.fence} is stale (current fence ${task?.fence ?? "none"}: ` +
        "the lease expired and another worker claimed the task)";
    }
    return new ConflictError(
      `activation of run ${req.runId} discarded: ${why}. Nothing was written; re-read the run and replay.`,
    );
  }

  private staleTask(op: string, runId: string, fence: number): ConflictError {
    const task = this.stmts.workflowTaskState.get(runId);
    const why =
      task === undefined
        ? "the run has no workflow task (it is closed or unknown)"
        : `its current fence is ${task.fence} (the lease expired and another worker claimed the task)`;
    return new ConflictError(
      `${op} of run ${runId} with fence ${fence} rejected: ${why}. Nothing was changed.`,
    );
  }
}

function positiveInt(value: number | undefined, fallback: number, name: string, allowZero = false): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new ConfigurationError(
      `SqliteBackend: ${name} must be a ${allowZero ? "non-negative" : "positive"} integer`,
    );
  }
  return value;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How long one try waits for a lock before the backend tries again (see retryWhenBusy). */
const BUSY_SLICE_MS = 2;

/** Rows per multi-row history INSERT (one prepared statement per size). */
const EVENTS_PER_INSERT = 64;

/** Parameters per history row: run_id, seq, ts, type, step, body, crc. */
const VALUES_PER_EVENT = 7;

/** SQLite errors after which the engine may have rolled back the whole transaction. */
function abortsTransaction(err: unknown): boolean {
  if (!(err instanceof Database.SqliteError)) return false;
  return /^SQLITE_(FULL|IOERR|BUSY|NOMEM|CORRUPT|LOCKED)/.test(err.code);
}

/** A write waiting for the next group commit. */
interface QueuedWrite {
  fn: (out: Outbox) => unknown;
  /** Clock anchor generation when the write was requested (see Outbox.frameShift). */
  gen: number;
  afterPoint: "sqlite.commit.after" | "sqlite.write.after";
  runId: string | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** What a queued write came to inside the transaction (settled after the commit). */
type WriteResult = { ok: true; value: unknown; out: Outbox } | { ok: false; error: unknown };

/** Thrown inside a one-write batch to roll it back after recording the write's own error. */
class RollbackOnly extends Error {}

/** Thrown when a write of a batch run without savepoints fails: roll back, run it isolated. */
class IsolateWrites extends Error {}
