/**
 * `PostgresBackend`: the {@link Backend} contract on PostgreSQL, for many workers on many
 * machines. It matches `SqliteBackend`'s semantics exactly (the shared conformance suite checks
 * it); what differs is how concurrency is handled, because PostgreSQL runs transactions in
 * parallel where SQLite serialises them:
 *
 * - a run's `workflow_tasks` row is its lock, taken first by every writer of that run's state;
 * - claims are single statements with `FOR UPDATE SKIP LOCKED`;
 * - time comes from the database clock (read in SQL, or once at BEGIN), never a worker's;
 * - every transaction NOTIFYs what it made ready, so workers elsewhere wake within milliseconds;
 * - deadlocks and serialization failures are retried here; connection failures are thrown as
 *   transient errors for the worker's loop to retry.
 *
 * HOW_IT_WORKS.md describes the tables and protocols.
 */

import { hostname } from "node:os";
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
import pg from "pg";
import { DbClock, type PostgresTestClock } from "./db-clock.ts";
import { ADVISORY_LOCK_CLASS, advisoryLockKey, migrate } from "./migrations.ts";
import { Notifier, Outbox } from "./notifier.ts";
import { isConnectionFailure, isRetryableConflict, translatePgError } from "./pg-errors.ts";
import { checkPostgresIntegrity } from "./postgres-doctor.ts";
import { PostgresInspector } from "./postgres-inspector.ts";
import { splitClaimRows, TYPES } from "./records.ts";
import {
  type ActivityRow,
  buildStatements,
  type ClaimRow,
  type HistoryRow,
  type InboxRow,
  type RunRow,
  type Statement,
  type Statements,
} from "./statements.ts";

/** Options of {@link PostgresBackend}. */
export interface PostgresBackendOptions {
  /** `postgres://user@host:5432/db` (ignored when `pool` is given). Default: the `PG*` environment variables. */
  connectionString?: string;
  /**
   * A pool to use instead of creating one (it is not ended by `close()`). The LISTEN connection
   * is opened separately, with the pool's connection settings.
   */
  pool?: pg.Pool;
  /** Connections of the pool this backend creates (default 10). */
  poolSize?: number;
  /**
   * The schema holding Spool's tables (default `"spool"`), created by `init()` if missing. Letters,
   * digits and underscores, at most 48 characters. Several deployments can share a database by
   * using different schemas.
   */
  schema?: string;
  /**
   * Whether `init()` may create the schema when it is missing (default true). False for readers
   * that should refuse a schema that does not exist (a typo) rather than create an empty one;
   * `init()` then throws ConfigurationError naming it.
   */
  createSchema?: boolean;
  /** Lease used by `claimWorkflowTask` when the request's `leaseMs` is not positive (default 30000). */
  workflowLeaseMs?: number;
  /**
   * Lease of an activity attempt that has neither a heartbeat timeout nor an attempt timeout
   * (default 300000). An activity without timeouts that runs longer than this should heartbeat.
   */
  activityLeaseMs?: number;
  /**
   * Most signals a run may hold unconsumed — delivered, not yet taken by its code with
   * `signal.wait()` — before a new one is refused with SignalBufferFullError (default 1000).
   */
  maxBufferedSignals?: number;
  /** How often the estimate of the database clock behind `now()` is re-measured (default 60000; 0: never). */
  clockRefreshMs?: number;
  /**
   * LISTEN for other processes' notifications (default true). Set false behind a transaction-mode
   * connection pooler that cannot hold a LISTEN session; workers then find others' work by polling.
   */
  listen?: boolean;
  /**
   * Use named prepared statements (default true). Set false behind a pooler that does not support
   * them (PgBouncer before 1.21 in transaction mode).
   */
  preparedStatements?: boolean;
  /**
   * Called with connection errors that no caller is waiting for: an idle pool connection that
   * dropped, or the LISTEN connection (which is re-opened with back-off by itself). Default: ignored,
   * because the next query reports the problem to whoever needs the database.
   */
  onConnectionError?: (err: Error) => void;
  /**
   * **Test-only.** Shifts the backend's clock by `offsetMs()` (added to the database clock in SQL
   * and to `now()`), so tests can move time forward without sleeping. Never set in production.
   */
  clock?: PostgresTestClock;
}

/** Attempts of a transaction that PostgreSQL aborted with a deadlock or serialization failure. */
const MAX_ATTEMPTS = 5;

/** One write transaction as a callback sees it. */
interface Tx {
  /** The database clock (plus the test offset), read once at BEGIN. */
  readonly now: number;
  /** True when this transaction holds the timer-sweeping advisory lock (fireDueTimers only). */
  readonly leader: boolean;
  readonly out: Outbox;
  q<R extends pg.QueryResultRow = pg.QueryResultRow>(
    stmt: Statement,
    values: unknown[],
  ): Promise<pg.QueryResult<R>>;
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

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/** Which parts of an activation's body a statement writes (see `bodyValues`). */
interface BodyParts {
  events: boolean;
  work: unknown[] | null;
  settle: boolean;
}

/** What applyActivation (and commitActivation) report about the body they wrote. */
interface BodyRow {
  finished: number;
  consumed: number;
  waiting: boolean;
  visible_at: number | null;
}

/** The activity and timer columns of applyActivation when an activation creates no work. */
const EMPTY_WORK: readonly unknown[][] = Array.from({ length: 14 }, () => []);

/**
 * The PostgreSQL implementation of Spool's {@link Backend}: the same tables and semantics as
 * `SqliteBackend`, shared by any number of workers on any number of machines. Claims use
 * `FOR UPDATE SKIP LOCKED`; leases and due times use the database clock; commits NOTIFY other
 * processes (`notifiesAcrossProcesses` is true), and timer sweeps are led by one worker at a time
 * through `pg_try_advisory_xact_lock`.
 *
 * `init()` creates the schema and applies migrations (safe when several processes start at once);
 * any method called before it runs it first.
 *
 * @throws ConfigurationError from the constructor for invalid options; from `init()` for a schema
 *   written by a newer release.
 *
 * @example
 * ```ts
 * import { PostgresBackend } from "@spool/postgres";
 * const backend = new PostgresBackend({ connectionString: process.env.DATABASE_URL });
 * await backend.init();
 * // hand it to a Worker and a Client, exactly like a SqliteBackend; close it on shutdown:
 * await backend.close();
 * ```
 */
export class PostgresBackend implements Backend {
  /** True when LISTEN is on (the default): commits in any process wake workers in every process. */
  readonly notifiesAcrossProcesses: boolean;
  /** Read-only inspection (CLI, dashboard, `handle.describe()`). */
  readonly inspect: BackendInspector;
  /** The schema holding Spool's tables. */
  readonly schema: string;

  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly stmts: Statements;
  private readonly clock: DbClock;
  private readonly notifier: Notifier;
  private readonly sender = newId();
  private readonly channel: string;
  private readonly timerLockKey: number;
  private readonly workflowLeaseMs: number;
  private readonly activityLeaseMs: number;
  /** Whether init() may create a missing schema (see the option). */
  private readonly createSchema: boolean;
  private readonly maxBufferedSignals: number;
  private readonly clockRefreshMs: number;
  private readonly prepared: boolean;
  private readonly onConnectionError: (err: Error) => void;
  private readonly poolErrorListener = (err: Error) => this.onConnectionError(err);
  private readonly guarded = new WeakSet<pg.PoolClient>();
  private readonly guardConnection = (client: pg.PoolClient) => {
    if (this.guarded.has(client)) return;
    this.guarded.add(client);
    client.on("error", ignoreStrayError);
  };
  private initializing: Promise<void> | null = null;
  private initialized = false;
  private closed = false;

  constructor(options: PostgresBackendOptions = {}) {
    const schema = options.schema ?? "spool";
    if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
      throw new ConfigurationError(
        `PostgresBackend: schema must be letters, digits and underscores (not starting with a digit), at most ` +
          `48 characters; got ${JSON.stringify(schema)}`,
      );
    }
    this.schema = schema;
    this.workflowLeaseMs = positiveInt(options.workflowLeaseMs, 30_000, "workflowLeaseMs");
    this.activityLeaseMs = positiveInt(options.activityLeaseMs, 300_000, "activityLeaseMs");
    this.maxBufferedSignals = positiveInt(options.maxBufferedSignals, 1000, "maxBufferedSignals");
    this.clockRefreshMs = positiveInt(options.clockRefreshMs, 60_000, "clockRefreshMs", true);
    const poolSize = positiveInt(options.poolSize, 10, "poolSize");
    this.prepared = options.preparedStatements ?? true;
    this.createSchema = options.createSchema ?? true;
    this.onConnectionError = options.onConnectionError ?? (() => undefined);
    if (options.pool !== undefined) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      this.pool = new pg.Pool({
        connectionString: options.connectionString,
        max: poolSize,
        // A worker frozen mid-transaction (SIGSTOP, a debugger) must not hold a run's lock forever.
        idle_in_transaction_session_timeout: 60_000,
      });
      this.ownsPool = true;
    }
    // An idle connection that drops emits "error" on the pool; unhandled, it would crash the process.
    this.pool.on("error", this.poolErrorListener);
    // A checked-out connection has no pool listener. When PostgreSQL ends a session right after a
    // query (pg_terminate_backend, a restart), the query's last message and the FATAL error can
    // arrive in one TCP read: the pool hands the connection to the next waiter while that read is
    // still being parsed, before the waiter can add a listener, and the FATAL becomes an "error"
    // event nobody handles — a crash. So every connection gets a listener the moment it is
    // handed out; the error itself reaches whoever uses the connection next (its query fails as a
    // lost connection, which is retried).
    this.pool.on("acquire", this.guardConnection);
    this.stmts = buildStatements(schema);
    this.clock = new DbClock(options.clock);
    this.timerLockKey = advisoryLockKey(schema, "timers");
    this.channel = `spool:${schema}`;
    const listen = options.listen ?? true;
    this.notifiesAcrossProcesses = listen;
    const poolOptions = this.pool.options;
    this.notifier = new Notifier({
      channel: this.channel,
      sender: this.sender,
      listen,
      newClient: () => new pg.Client(poolOptions),
      onError: (err) => this.onConnectionError(err),
    });
    this.inspect = new PostgresInspector({
      stmts: this.stmts,
      query: (stmt, values) => this.one(stmt, values),
      offset: () => this.clock.offset(),
    });
  }

  /**
   * Creates the schema and applies pending migrations (under an advisory lock, so processes
   * starting together apply each once), then measures the database clock. Idempotent.
   *
   * @throws ConfigurationError when the schema was migrated by a newer release.
   */
  async init(): Promise<void> {
    this.assertOpen();
    if (this.initialized) return;
    this.initializing ??= this.doInit().catch((err) => {
      this.initializing = null;
      throw err;
    });
    return this.initializing;
  }

  private async doInit(): Promise<void> {
    const client = await this.connect();
    try {
      await migrate(client, this.schema, { createSchema: this.createSchema });
      client.release();
    } catch (err) {
      client.release(isConnectionFailure(err) ? (err as Error) : undefined);
      throw translatePgError(err, this.schema);
    }
    const readDb = async () => {
      const { rows } = await this.pool.query({
        text: "SELECT (floor(extract(epoch from clock_timestamp()) * 1000))::bigint AS t",
        types: TYPES,
      });
      return rows[0].t as number;
    };
    await this.clock.measure(readDb).catch((err) => {
      throw translatePgError(err, this.schema);
    });
    this.clock.refreshEvery(this.clockRefreshMs, readDb);
    this.initialized = true;
  }

  /**
   * Stops the clock refresh and the LISTEN connection and ends the pool (unless it was passed in).
   * Idempotent; every other call afterwards rejects.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.stop();
    await this.notifier.close();
    if (this.ownsPool) await this.pool.end().catch(() => undefined);
    this.pool.off("error", this.poolErrorListener);
    this.pool.off("acquire", this.guardConnection);
  }

  // ── Client side ──────────────────────────────────────────────────────────────────────────

  /** Creates a run (WorkflowStarted + ready task) or attaches per `onConflict`. */
  async startWorkflow(req: StartWorkflowRequest): Promise<StartWorkflowResult> {
    return this.tx((tx) => this.startIn(tx, req, req.onConflict));
  }

  /**
   * Puts a SignalReceived event in the open run's inbox.
   * @throws RunNotFoundError; SignalBufferFullError when the run holds maxBufferedSignals unconsumed
   */
  async signalWorkflow(req: SignalRequest): Promise<{ runId: string }> {
    return this.tx(async (tx) => {
      // Two tries: the open run may close (continue-as-new) while the lock is awaited; the second
      // lookup then finds its successor.
      for (let i = 0; i < 2; i++) {
        const { rows } = await tx.q<{ run_id: string }>(this.stmts.lockOpenRun, [
          req.workflowId,
          req.runId ?? null,
        ]);
        const runId = rows[0]?.run_id;
        if (runId === undefined) continue;
        if (req.requestId !== undefined && !(await this.firstSignal(tx, runId, req.requestId)))
          return { runId };
        await this.deliverSignal(tx, req.workflowId, runId, req.body);
        return { runId };
      }
      throw new RunNotFoundError(req.workflowId, req.runId, "open run");
    });
  }

  /** Starts a run unless one is open (closed runs never block it), then signals it; one transaction. */
  async signalWithStart(
    start: StartWorkflowRequest,
    signalBody: Uint8Array,
    options: { requestId?: string } = {},
  ): Promise<StartWorkflowResult> {
    return this.tx(async (tx) => {
      for (let i = 0; i < 3; i++) {
        const started = await this.startIn(tx, start, "startNewIfClosed", start.onConflict !== "useExisting");
        // An existing run is locked before its signals are counted; if it closed since we looked,
        // the next round starts a new one. A run created just now is this transaction's already.
        if (!started.created) {
          const { rows } = await tx.q<{ run_id: string }>(this.stmts.lockOpenRun, [
            start.workflowId,
            started.runId,
          ]);
          if (rows.length === 0) continue;
        }
        if (
          options.requestId !== undefined &&
          !(await this.firstSignal(tx, started.runId, options.requestId))
        ) {
          return started;
        }
        await this.deliverSignal(tx, start.workflowId, started.runId, signalBody);
        return started;
      }
      throw new SpoolError(
        `signalWithStart of "${start.workflowId}": its open run kept closing while the signal was delivered; retry.`,
      );
    });
  }

  /** Puts CancelRequested in the open run's inbox, or reports the closed run's status. */
  async requestCancel(req: CancelRequest): Promise<CancelResult> {
    return this.tx(async (tx) => {
      for (let i = 0; i < 3; i++) {
        const delivered = await this.deliverToOpen(
          tx,
          req.workflowId,
          req.runId,
          "CancelRequested",
          req.body,
          1,
        );
        if (delivered !== null) {
          return {
            outcome: "requested",
            runId: delivered.runId,
            status: delivered.blocked ? "blocked" : "running",
          };
        }
        const { rows } = await tx.q<RunRow>(
          req.runId !== undefined ? this.stmts.getRun : this.stmts.getLatestRun,
          [req.runId ?? req.workflowId],
        );
        const run = rows[0];
        if (run === undefined || run.workflow_id !== req.workflowId) {
          throw new RunNotFoundError(req.workflowId, req.runId);
        }
        const status = run.status as CancelResult["status"];
        if (!isOpenStatus(run.status)) return { outcome: "alreadyClosed", runId: run.run_id, status };
        // Open, yet the delivery missed it: it was closing (continue-as-new) while we looked. Again.
      }
      throw new SpoolError(`requestCancel of "${req.workflowId}": the run kept changing; retry.`);
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
    const leaseMs = req.leaseMs > 0 ? Math.ceil(req.leaseMs) : this.workflowLeaseMs;
    const { rows } = await this.one<ClaimRow>(this.stmts.claimWorkflowTask, [
      this.clock.offset(),
      req.workerId,
      leaseMs,
      req.workflowNames,
    ]);
    if (rows.length === 0) return null;
    const claimed = splitClaimRows(rows);
    // Verified after the claim committed: a corrupt inbox row is handed to the worker, which parks
    // the run with the error, while every other run keeps flowing.
    // A damaged run record goes the same way: the worker parks the run.
    const run = toRunRecordUnchecked(claimed.run);
    const damaged = runRowCorruption(claimed.run);
    if (damaged !== null) {
      return { run, fence: claimed.fence, inbox: [], inboxError: runRowError(claimed.run, damaged) };
    }
    try {
      return { run, fence: claimed.fence, inbox: toInboxEvents(run.runId, claimed.inbox) };
    } catch (err) {
      if (!HistoryCorruptError.is(err)) throw err;
      return { run, fence: claimed.fence, inbox: [], inboxError: err };
    }
  }

  /** History events with seq > afterSeq, checksums verified. @throws HistoryCorruptError */
  async getHistory(runId: string, afterSeq = 0): Promise<RawEvent[]> {
    const { rows } = await this.one<HistoryRow>(this.stmts.selectHistory, [runId, afterSeq]);
    try {
      return toRawEvents(runId, afterSeq, rows);
    } catch (err) {
      const state = await this.one<{ status: string }>(this.stmts.runState, [runId]);
      throw withRunStatus(err, state.rows[0]?.status);
    }
  }

  /** The run's unconsumed inbox, in consumption order. @throws HistoryCorruptError */
  async getInbox(runId: string): Promise<InboxEvent[]> {
    const { rows } = await this.one<InboxRow>(this.stmts.selectInbox, [runId]);
    return toInboxEvents(runId, rows);
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
    return this.tx((tx) => this.commitIn(tx, req));
  }

  /** Parks the run as blocked until `retryAt`; history untouched. @throws ConflictError (stale fence) */
  async blockRun(req: BlockRequest): Promise<void> {
    const out = new Outbox();
    out.workflowTask = true;
    const res = await this.one(this.stmts.blockRun, [
      this.clock.offset(),
      req.runId,
      req.fence,
      Math.floor(req.retryAt),
      req.error,
      req.reason,
      this.channel,
      out.payloads(this.sender)[0],
      runChecksum(req.runId, "blocked", null, req.error),
    ]);
    if (res.rowCount !== 1) throw await this.staleTask("blockRun", req.runId, req.fence);
    this.notifier.emit(out.notifications());
  }

  /** Gives the task back, claimable at `retryAt` (default now). @throws ConflictError (stale fence) */
  async releaseWorkflowTask(req: { runId: string; fence: number; retryAt?: number }): Promise<void> {
    const out = new Outbox();
    out.workflowTask = true;
    const res = await this.one(this.stmts.releaseWorkflowTask, [
      this.clock.offset(),
      req.runId,
      req.fence,
      req.retryAt === undefined ? null : Math.floor(req.retryAt),
      this.channel,
      out.payloads(this.sender)[0],
    ]);
    if (res.rowCount !== 1) throw await this.staleTask("releaseWorkflowTask", req.runId, req.fence);
    this.notifier.emit(out.notifications());
  }

  /** Makes the unleased tasks of blocked runs of these workflows claimable now; returns how many. */
  async retryBlockedRuns(workflowNames: string[]): Promise<number> {
    if (workflowNames.length === 0) return 0;
    const out = new Outbox();
    out.workflowTask = true;
    const { rows } = await this.one<{ n: number }>(this.stmts.retryBlockedRuns, [
      this.clock.offset(),
      workflowNames,
      this.channel,
      out.payloads(this.sender)[0],
    ]);
    const n = rows[0]?.n ?? 0;
    if (n > 0) this.notifier.emit(out.notifications());
    return n;
  }

  // ── Activity tasks ───────────────────────────────────────────────────────────────────────

  /** Leases the oldest claimable activity task of these names (attempt + 1); null when none. */
  async claimActivityTask(req: {
    workerId: string;
    activityNames: string[];
  }): Promise<ClaimedActivityTask | null> {
    if (req.activityNames.length === 0) return null;
    const { rows } = await this.one<ActivityRow>(this.stmts.claimActivity, [
      this.clock.offset(),
      req.workerId,
      req.activityNames,
      this.activityLeaseMs,
    ]);
    return rows[0] === undefined ? null : toClaimedActivity(rows[0]);
  }

  /** Extends the attempt's lease to now + leaseMs. @throws ConflictError (stale or cancelled) */
  async heartbeatActivityTask(ref: ActivityAttemptRef, leaseMs: number): Promise<{ leaseExpiresAt: number }> {
    const { rows } = await this.one<{ lease_expires_at: number }>(this.stmts.heartbeatActivity, [
      this.clock.offset(),
      ref.taskId,
      ref.fence,
      Math.ceil(leaseMs),
    ]);
    if (rows[0] === undefined) throw staleAttempt("heartbeat", ref);
    return { leaseExpiresAt: rows[0].lease_expires_at };
  }

  /** Removes the task and puts its result event in the run's inbox. @throws ConflictError */
  async completeActivityTask(
    ref: ActivityAttemptRef,
    event: { type: EventType; body: Uint8Array },
  ): Promise<void> {
    await this.tx(async (tx) => {
      const s = this.stmts;
      // run_id and step never change for a task, so reading them before locking the run is safe;
      // the fence is checked again, under the run's lock, by the delete.
      const { rows } = await tx.q<{ run_id: string; step: number }>(s.liveAttempt, [ref.taskId, ref.fence]);
      const task = rows[0];
      if (task === undefined) throw staleAttempt("completion", ref);
      const crc = eventChecksum(0, tx.now, event.type, task.step, event.body);
      const done = await tx.q<{ n: number }>(s.completeActivity, [
        task.run_id,
        ref.taskId,
        ref.fence,
        tx.now,
        event.type,
        task.step,
        event.body,
        crc,
      ]);
      // Rolling back also undoes the wake the statement applied before it could check the fence.
      if (done.rows[0]?.n !== 1) throw staleAttempt("completion", ref);
      tx.out.workflowTask = true;
    });
  }

  /** Releases the attempt and makes the task claimable at `retryAt`. @throws ConflictError */
  async retryActivityTask(ref: ActivityAttemptRef, retryAt: number, lastError: Uint8Array): Promise<void> {
    const out = new Outbox();
    out.activityTask = true;
    const res = await this.one(this.stmts.retryActivity, [
      ref.taskId,
      ref.fence,
      Math.floor(retryAt),
      lastError,
      this.channel,
      out.payloads(this.sender)[0],
    ]);
    if (res.rowCount !== 1) throw staleAttempt("retry", ref);
    this.notifier.emit(out.notifications());
  }

  /** Gives back an attempt that never started, not counted. @throws ConflictError */
  async releaseActivityTask(ref: ActivityAttemptRef): Promise<void> {
    const out = new Outbox();
    out.activityTask = true;
    const res = await this.one(this.stmts.releaseActivity, [
      this.clock.offset(),
      ref.taskId,
      ref.fence,
      this.channel,
      out.payloads(this.sender)[0],
    ]);
    if (res.rowCount !== 1) throw staleAttempt("release", ref);
    this.notifier.emit(out.notifications());
  }

  // ── Timers ───────────────────────────────────────────────────────────────────────────────

  /**
   * Moves up to `limit` due timers into their runs' inboxes as TimerFired; returns how many.
   * Cluster-wide, one worker sweeps at a time: the transaction first takes
   * `pg_try_advisory_xact_lock`, and a worker that does not get it returns 0 at once (the leader's
   * NOTIFY will wake it for the runs it made ready). The lock is released with the transaction, so
   * leadership moves freely and a crashed leader holds nothing.
   */
  async fireDueTimers(limit: number): Promise<number> {
    if (!(limit > 0)) return 0;
    // Every pump of every worker calls this: with nothing due, one cheap read and no transaction.
    if ((await this.one(this.stmts.anyTimerDue, [this.clock.offset()])).rowCount === 0) return 0;
    return this.tx(
      async (tx) => {
        if (!tx.leader) return 0;
        const taken = await tx.q<{ run_id: string; step: number; due_at: number }>(this.stmts.takeDueTimers, [
          tx.now,
          Math.floor(limit),
        ]);
        if (taken.rows.length === 0) return 0;
        // RETURNING gives rows in no particular order; sort so inbox order is due-time order.
        const fired = taken.rows.sort(
          (a, b) => a.due_at - b.due_at || cmp(a.run_id, b.run_id) || a.step - b.step,
        );
        await tx.q(this.stmts.deliverFiredTimers, [
          tx.now,
          fired.map((t) => t.run_id),
          fired.map((t) => t.step),
          fired.map((t) => eventChecksum(0, tx.now, "TimerFired", t.step, null)),
        ]);
        tx.out.workflowTask = true;
        return fired.length;
      },
      { leader: true },
    );
  }

  /** The earliest timer due time, task ready time or lease expiry; null when nothing is pending. */
  async nextWakeAt(): Promise<number | null> {
    const { rows } = await this.one<{ t: number | null }>(this.stmts.nextWakeAt, []);
    return rows[0]?.t ?? null;
  }

  // ── Worker liveness ──────────────────────────────────────────────────────────────────────

  /**
   * Records the worker (pid and host for operators; liveness is its heartbeat, on the database
   * clock). A row left by another incarnation of the same id has its leases released first.
   */
  async registerWorker(reg: WorkerRegistration): Promise<void> {
    await this.tx(async (tx) => {
      const { rows } = await tx.q<{ previous: string | null }>(this.stmts.upsertWorker, [
        this.clock.offset(),
        reg.workerId,
        reg.incarnation,
        process.pid,
        hostname(),
        Math.round(reg.heartbeatIntervalMs),
        Math.round(reg.deadAfterMs),
        reg.workflowNames,
        reg.activityNames,
      ]);
      const previous = rows[0]?.previous ?? null;
      if (previous !== null && previous !== reg.incarnation) await this.releaseIn(tx, [reg.workerId]);
    });
  }

  /** Refreshes the worker's heartbeat; false when it was presumed dead or is unknown. */
  async heartbeatWorker(workerId: string): Promise<boolean> {
    const res = await this.one(this.stmts.heartbeatWorker, [this.clock.offset(), workerId]);
    return res.rowCount === 1;
  }

  /**
   * Marks workers whose heartbeat is older than their timeout (database clock) dead and releases
   * their leases, in one transaction; each death is swept once, by whichever worker gets there
   * first. With nobody dead it is one read (every worker sweeps several times a second).
   */
  async releaseDeadWorkers(): Promise<DeadWorkerSweep> {
    if ((await this.one(this.stmts.anyDeadWorker, [this.clock.offset()])).rowCount === 0) {
      return { workers: [], workflowTasks: 0, activityTasks: 0 };
    }
    return this.tx(async (tx) => {
      const { rows } = await tx.q<{ worker_id: string }>(this.stmts.markDeadWorkers, [tx.now]);
      const workers = rows.map((r) => r.worker_id);
      if (workers.length === 0) return { workers, workflowTasks: 0, activityTasks: 0 };
      return { workers, ...(await this.releaseIn(tx, workers)) };
    });
  }

  /** Marks the worker stopped (clean shutdown). */
  async unregisterWorker(workerId: string): Promise<void> {
    await this.one(this.stmts.stopWorker, [this.clock.offset(), workerId]);
  }

  private async releaseIn(
    tx: Tx,
    owners: string[],
  ): Promise<{ workflowTasks: number; activityTasks: number }> {
    const { rows } = await tx.q<{ workflow_tasks: number; activity_tasks: number }>(
      this.stmts.releaseLeasesOf,
      [tx.now, owners],
    );
    const workflowTasks = rows[0]?.workflow_tasks ?? 0;
    const activityTasks = rows[0]?.activity_tasks ?? 0;
    if (workflowTasks > 0) tx.out.workflowTask = true;
    if (activityTasks > 0) tx.out.activityTask = true;
    return { workflowTasks, activityTasks };
  }

  // ── Wake-ups ─────────────────────────────────────────────────────────────────────────────

  /**
   * Registers a listener. It hears this process's commits synchronously after they commit, and
   * other processes' commits through LISTEN (opened on the first subscription).
   */
  subscribe(listener: (n: BackendNotification) => void): () => void {
    // After close() nothing will ever be announced; like SqliteBackend, do not throw.
    if (this.closed) return () => undefined;
    return this.notifier.subscribe(listener);
  }

  /** An estimate of the database clock (never ahead of it), plus the test offset if one is set. */
  now(): number {
    return this.clock.now();
  }

  /**
   * Every row's checksum (history, inbox, runs, activity tasks), scanned in pages; read-only.
   * What `spool doctor` runs.
   */
  async checkIntegrity(): Promise<IntegrityReport> {
    return checkPostgresIntegrity(
      async <R extends pg.QueryResultRow>(text: string, values: unknown[]) =>
        (await this.one<R>({ text }, values)).rows,
      this.stmts.schema,
    );
  }

  /** Diagnostics: whether the LISTEN connection is up, how often it connected, and the clock skew. */
  get diagnostics(): { listening: boolean; listenConnects: number; clockSkewMs: number } {
    return {
      listening: this.notifier.listening,
      listenConnects: this.notifier.connects,
      clockSkewMs: this.clock.skew,
    };
  }

  // ── Running statements ───────────────────────────────────────────────────────────────────

  /** A pool connection (already guarded against stray errors: see `guardConnection`). */
  private async connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw translatePgError(err, this.schema);
    }
    return client;
  }

  private config(stmt: Statement | { text: string }, values: unknown[]): pg.QueryConfig {
    const name = "name" in stmt && this.prepared ? stmt.name : undefined;
    return { name, text: stmt.text, values, types: TYPES };
  }

  /** Runs one statement on its own (autocommit), retrying deadlocks. */
  private async one<R extends pg.QueryResultRow = pg.QueryResultRow>(
    stmt: Statement | { text: string },
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    if (!this.initialized) await this.init();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<R>(this.config(stmt, values));
      } catch (err) {
        if (isRetryableConflict(err) && attempt < MAX_ATTEMPTS) {
          await pause(attempt);
          continue;
        }
        throw translatePgError(err, this.schema);
      }
    }
  }

  /**
   * Runs `fn` in one transaction: BEGIN and a read of the database clock in one round trip, then
   * the callback's statements, then the NOTIFYs and COMMIT in one round trip. Deadlocks,
   * serialization failures and a lost race for a workflow id's open run roll back and run again.
   * Listeners in this process are called only after COMMIT succeeded.
   */
  private async tx<T>(fn: (tx: Tx) => Promise<T>, opts: { leader?: boolean } = {}): Promise<T> {
    this.assertOpen();
    if (!this.initialized) await this.init();
    for (let attempt = 1; ; attempt++) {
      const client = await this.connect();
      const out = new Outbox();
      let result: T;
      try {
        const lock = opts.leader
          ? `, pg_try_advisory_xact_lock(${ADVISORY_LOCK_CLASS}, ${this.timerLockKey}) AS leader`
          : ", true AS leader";
        const begun = (await client.query({
          text: `BEGIN; SELECT (floor(extract(epoch from clock_timestamp()) * 1000))::bigint + ${this.clock.offset()} AS now${lock}`,
          types: TYPES,
        })) as unknown as pg.QueryResult<{ now: number; leader: boolean }>[];
        const row = begun[1]!.rows[0]!;
        const tx: Tx = {
          now: row.now,
          leader: row.leader,
          out,
          q: (stmt, values) => client.query(this.config(stmt, values)),
        };
        result = await fn(tx);
        let commit = "COMMIT";
        if (!out.empty) {
          const notify = out
            .payloads(this.sender)
            .map((p) => `SELECT pg_notify(${pg.escapeLiteral(this.channel)}, ${pg.escapeLiteral(p)}); `)
            .join("");
          commit = notify + commit;
        }
        await client.query(commit);
      } catch (err) {
        let broken: Error | undefined = isConnectionFailure(err) ? (err as Error) : undefined;
        if (broken === undefined) {
          await client.query("ROLLBACK").catch((e: Error) => {
            broken = e;
          });
        }
        client.release(broken);
        if (isRetryableConflict(err) && attempt < MAX_ATTEMPTS) {
          await pause(attempt);
          continue;
        }
        throw translatePgError(err, this.schema);
      }
      client.release();
      this.notifier.emit(out.notifications());
      return result;
    }
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new SpoolError(
        `PostgresBackend (schema ${this.schema}) is closed; create a new backend to continue.`,
      );
    }
  }

  // ── Transaction bodies ───────────────────────────────────────────────────────────────────

  private async startIn(
    tx: Tx,
    req: StartWorkflowRequest,
    policy: StartWorkflowRequest["onConflict"],
    checkInput = policy !== "useExisting",
  ): Promise<StartWorkflowResult> {
    const s = this.stmts;
    for (let i = 0; i < 5; i++) {
      const lookup = policy === "startNewIfClosed" ? s.getOpenRun : s.getLatestRun;
      const existing = (await tx.q<RunRow>(lookup, [req.workflowId])).rows[0];
      if (existing !== undefined) {
        return attachOrConflict(req, existing, { fail: policy === "fail", checkInput });
      }
      const runId = newId();
      const created = await this.createRun(tx, {
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
      });
      if (created) return { runId, created: true, workflowName: req.workflowName };
      // Another process created the open run since we looked (ON CONFLICT waited for its commit):
      // look again and attach to it, or fail, per the policy.
    }
    throw new SpoolError(`starting "${req.workflowId}": its runs kept changing while starting; retry.`);
  }

  /** Inserts a run, its WorkflowStarted event (#1) and its ready task; false if the id has an open run. */
  private async createRun(tx: Tx, run: NewRun): Promise<boolean> {
    const body = run.startedEventBody;
    const { rows } = await tx.q(this.stmts.createRun, [
      run.runId,
      run.workflowId,
      run.workflowName,
      run.version,
      tx.now,
      run.parentRunId,
      run.parentWorkflowId,
      run.parentStep,
      run.continuedFrom,
      body,
      eventChecksum(1, tx.now, "WorkflowStarted", null, body),
      run.inputHash,
      runChecksum(run.runId, "running", null, null),
    ]);
    if (rows.length === 0) return false;
    tx.out.workflowTask = true;
    return true;
  }

  /**
   * Delivers an inbound event to the open run of a workflow id (a given run, or a child of a given
   * parent). Looks twice: if the run closed while the first attempt waited for its lock (a
   * continue-as-new), the second sees its successor.
   */
  private async deliverToOpen(
    tx: Tx,
    workflowId: string,
    runId: string | undefined,
    type: EventType,
    body: Uint8Array,
    tries = 2,
    parentRunId: string | null = null,
  ): Promise<{ runId: string; blocked: boolean } | null> {
    const crc = eventChecksum(0, tx.now, type, null, body);
    for (let i = 0; i < tries; i++) {
      const { rows } = await tx.q<{ run_id: string; blocked: boolean }>(this.stmts.deliverToOpenRun, [
        workflowId,
        runId ?? null,
        parentRunId,
        tx.now,
        type,
        body,
        crc,
      ]);
      if (rows[0] !== undefined) {
        tx.out.workflowTask = true;
        return { runId: rows[0].run_id, blocked: rows[0].blocked };
      }
    }
    return null;
  }

  /**
   * Delivers a signal to a run this transaction has locked or created, unless it already holds
   * maxBufferedSignals unconsumed ones (see deliverSignalIfRoom: every delivery and commit of the
   * run takes the same lock first, so concurrent senders cannot overshoot the cap).
   * @throws SignalBufferFullError
   */
  private async deliverSignal(tx: Tx, workflowId: string, runId: string, body: Uint8Array): Promise<void> {
    const { rows } = await tx.q<{ n: number; delivered: number }>(this.stmts.deliverSignalIfRoom, [
      runId,
      tx.now,
      body,
      eventChecksum(0, tx.now, "SignalReceived", null, body),
      this.maxBufferedSignals,
    ]);
    const waiting = Number(rows[0]?.n ?? 0);
    if (Number(rows[0]?.delivered ?? 0) !== 1) {
      throw new SignalBufferFullError({ workflowId, runId, waiting, limit: this.maxBufferedSignals });
    }
    tx.out.workflowTask = true;
  }

  /** True when the signal is to be delivered: this run has not received its request id yet. */
  private async firstSignal(tx: Tx, runId: string, requestId: string): Promise<boolean> {
    return (await tx.q(this.stmts.rememberSignal, [runId, requestId])).rows.length === 1;
  }

  /** Delivers an inbound event to a run if it is open; false when it is not. */
  private async deliverTo(
    tx: Tx,
    runId: string,
    type: EventType,
    step: number | null,
    body: Uint8Array | null,
  ): Promise<boolean> {
    const { rows } = await tx.q(this.stmts.deliverToRun, [
      runId,
      tx.now,
      type,
      step,
      body,
      eventChecksum(0, tx.now, type, step, body),
    ]);
    if (rows.length === 0) return false;
    tx.out.workflowTask = true;
    return true;
  }

  private async commitIn(tx: Tx, req: ActivationCommit): Promise<ActivationResult> {
    const s = this.stmts;
    const { now, out } = tx;
    const { runId, close } = req;
    const lastSeq = req.expectedLastSeq + req.events.length;
    const nextRunId = close?.continueAsNew !== undefined ? newId() : null;

    // 1. The run's lock, the guards, the run row and the body of the activation, in one
    // statement: eager completion, history, consumed inbox, new work, and (when nothing below can
    // add to the inbox) the task's settlement. Withdrawn work goes first, so a step cancelled and
    // rescheduled in one activation ends up scheduled; then the body runs in two parts around it,
    // as in SQLite's order of writes.
    const claimedActivities: ClaimedActivityTask[] = [];
    const work = close === undefined ? this.newWork(req, now, claimedActivities) : null;
    if (work !== null && req.activities.some((a) => !claimedActivities.some((c) => c.step === a.step))) {
      out.activityTask = true;
    }
    if (work !== null && req.timers.length > 0) out.timer = true;
    const cancels = req.cancelActivities.length > 0 || req.cancelTimers.length > 0;
    const settleNow = close === undefined && req.children.length === 0 && req.cancelChildren.length === 0;
    const firstParts = { events: true, work: cancels ? null : work, settle: settleNow && !cancels };
    const status = close?.status ?? "running";
    const result = close?.result ?? null;
    const error = close?.error ?? null;
    const guarded = await tx.q<
      BodyRow & {
        workflow_id: string;
        parent_run_id: string | null;
        parent_workflow_id: string | null;
        parent_step: number | null;
        applied: boolean;
      }
    >(s.commitActivation, [
      ...this.bodyValues(tx, req, req.expectedLastSeq, firstParts),
      req.fence ?? null,
      lastSeq,
      status,
      close !== undefined ? now : null,
      result,
      error,
      nextRunId,
      runChecksum(runId, status, result, error),
      req.bufferedSignals ?? null,
      this.activityCrcs(req, firstParts),
    ]);
    const run = guarded.rows[0];
    if (run === undefined) throw await this.commitConflict(tx, req);
    for (const c of claimedActivities) c.workflowId = run.workflow_id;
    // A delivery committed while the statement waited for the lock, so its snapshot missed it and
    // it wrote no body (see commitActivation): the body follows as a statement of its own.
    const first = run.applied
      ? this.checkBody(req, true, run)
      : await this.applyBody(tx, req, run.workflow_id, firstParts);
    if (cancels) {
      const { rows } = await tx.q<{ task_id: string }>(s.cancelWork, [
        runId,
        req.cancelActivities,
        req.cancelTimers,
      ]);
      for (const r of rows) out.cancelled.push(r.task_id);
      if (work !== null || settleNow) {
        const second = await this.applyBody(tx, req, run.workflow_id, {
          events: false,
          work,
          settle: settleNow,
        });
        first.visible_at = second.visible_at;
      }
    }
    if (settleNow && first.visible_at !== null) out.workflowTask = true;
    // An acknowledged signal is never lost: a run may not end while inbound events it has not seen
    // wait in its inbox (they arrived during this activation). The worker re-runs the activation
    // with them. Continue-as-new is exempt: those events move on to the next run.
    if (close !== undefined && close.continueAsNew === undefined && first.waiting) {
      throw new ConflictError(
        `activation of run ${runId} discarded: it would end the run while new inbound events wait in its inbox. ` +
          "Nothing was written; re-read the run and replay with them.",
      );
    }

    // 3. Children: a workflow id that already has an open run is reported back to this run as
    // ChildStartFailed rather than failing the commit, so the parent learns it deterministically.
    const createdRuns: ActivationResult["createdRuns"] = [];
    for (const c of req.children) {
      const childRunId = newId();
      const created = await this.createRun(tx, {
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
      });
      if (created) createdRuns.push({ step: c.step, runId: childRunId, workflowId: c.workflowId });
      else await this.deliverTo(tx, runId, "ChildStartFailed", c.step, null);
    }
    for (const c of req.cancelChildren) {
      // Only a run that is still this run's child: the id may have been reused by an unrelated run.
      await this.deliverToOpen(tx, c.workflowId, undefined, "CancelRequested", c.body, 1, runId);
    }

    // 4. The workflow task: gone with a closed run, else ready or idle depending on the inbox.
    if (close !== undefined) {
      const { rows } = await tx.q<{ task_id: string }>(s.closeRunQueues, [runId]);
      for (const r of rows) out.cancelled.push(r.task_id);
      if (close.continueAsNew !== undefined && nextRunId !== null) {
        // Inherits the parent link: the chain as a whole is the parent's child.
        const created = await this.createRun(tx, {
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
        });
        if (!created) {
          // Cannot happen: this transaction closed the id's only open run and holds its lock.
          throw new SpoolError(
            `continue-as-new of run ${runId}: workflow id ${run.workflow_id} has another open run`,
          );
        }
        // An acknowledged signal is never lost: signals the old run received but did not consume
        // come first, then inbox events it never saw, all in arrival order.
        const carried = close.continueAsNew.carriedSignals ?? [];
        if (carried.length === 0) {
          await tx.q(s.moveInboxToRun, [runId, nextRunId]);
        } else {
          await tx.q(s.insertInboxRows, [
            nextRunId,
            now,
            carried.map(() => "SignalReceived"),
            carried.map(() => null),
            carried,
            carried.map((b) => eventChecksum(0, now, "SignalReceived", null, b)),
          ]);
          // Inbox order is id order, so the unseen rows are re-inserted after the carried ones.
          await tx.q(s.copyInboxToRun, [runId, nextRunId]);
        }
        createdRuns.push({ step: null, runId: nextRunId, workflowId: run.workflow_id });
      } else if (req.children.length > 0) {
        // A ChildStartFailed added above is all that can be left (the run holds its lock, and the
        // check before refused to close over anything else): it dies with the run.
        await tx.q(s.deleteInboxOfRun, [runId]);
      }
      if (close.parentEvent !== undefined && run.parent_run_id !== null) {
        const { type, body } = close.parentEvent;
        await this.deliverTo(tx, run.parent_run_id, type, run.parent_step, body);
      }
      out.closed.push({ runId, workflowId: run.workflow_id });
    } else if (!settleNow) {
      // Children may have added ChildStartFailed events to the inbox: settle after them.
      const { rows } = await tx.q<{ visible_at: number | null }>(s.settleWorkflowTask, [
        runId,
        now,
        req.fence !== undefined,
      ]);
      if (rows[0] !== undefined && rows[0].visible_at !== null) out.workflowTask = true;
    }

    return { lastSeq, claimedActivities, createdRuns };
  }

  /**
   * The activity tasks and timers an activation creates, as the column arrays of
   * applyActivation. The first `eagerActivities.maxTasks` tasks of names the worker runs are
   * created leased to it (attempt 1, fence 1) and returned in `claimed` (the caller sets their
   * `workflowId`).
   */
  private newWork(req: ActivationCommit, now: number, claimed: ClaimedActivityTask[]): unknown[] {
    const eager = req.eagerActivities;
    const cols: unknown[][] = Array.from({ length: 12 }, () => []);
    let eagerLeft = eager?.maxTasks ?? 0;
    for (const a of req.activities) {
      const taskId = newId();
      const leased = eager !== undefined && eagerLeft > 0 && eager.activityNames.includes(a.name);
      const leaseExpiresAt = leased ? now + this.attemptLease(a.timeoutMs, a.heartbeatTimeoutMs) : null;
      if (leased) {
        eagerLeft--;
        claimed.push({
          taskId,
          runId: req.runId,
          workflowId: "", // set once the commit's guard statement has returned the run
          step: a.step,
          name: a.name,
          input: a.input,
          options: a.options,
          attempt: 1,
          fence: 1,
          timeoutMs: a.timeoutMs,
          heartbeatTimeoutMs: a.heartbeatTimeoutMs,
          scheduledAt: now,
          leaseExpiresAt: leaseExpiresAt!,
        });
      }
      const row = [
        taskId,
        a.step,
        a.name,
        a.input,
        a.options,
        leased ? 1 : 0,
        leased ? 1 : 0,
        leaseExpiresAt ?? now,
        leased ? eager!.workerId : null,
        leaseExpiresAt,
        a.timeoutMs,
        a.heartbeatTimeoutMs,
      ];
      for (const [i, v] of row.entries()) cols[i]!.push(v);
    }
    return [...cols, req.timers.map((t) => t.step), req.timers.map((t) => Math.floor(t.dueAt))];
  }

  /**
   * The values of applyActivation (`slot12` = the workflow id) and of the first 28 parameters of
   * commitActivation (`slot12` = the expected last seq): with `events`, the eager completion, the
   * history rows and the consumed inbox rows; with `work`, the new tasks and timers; with
   * `settle`, the task's settlement.
   */
  private bodyValues(tx: Tx, req: ActivationCommit, slot12: unknown, parts: BodyParts): unknown[] {
    const e = parts.events ? req.events : [];
    const done = parts.events ? req.completedActivity : undefined;
    return [
      req.runId,
      tx.now,
      done?.taskId ?? null,
      done?.fence ?? null,
      e.map((x) => x.seq),
      e.map((x) => Math.floor(x.ts)),
      e.map((x) => x.type),
      e.map((x) => x.step),
      e.map((x) => x.body),
      e.map((x) => eventChecksum(x.seq, Math.floor(x.ts), x.type, x.step, x.body)),
      parts.events ? req.consumedInbox : [],
      slot12,
      ...(parts.work ?? EMPTY_WORK),
      parts.settle,
      req.fence !== undefined,
    ];
  }

  /** The checksums of the activity tasks `parts.work` creates, in the order of its columns. */
  private activityCrcs(req: ActivationCommit, parts: BodyParts): number[] {
    if (parts.work === null) return [];
    return req.activities.map((a) => activityChecksum(req.runId, a.step, a.name, a.input));
  }

  /** Runs applyActivation (see bodyValues and checkBody). */
  private async applyBody(
    tx: Tx,
    req: ActivationCommit,
    workflowId: string,
    parts: BodyParts,
  ): Promise<{ waiting: boolean; visible_at: number | null }> {
    const { rows } = await tx.q<BodyRow>(this.stmts.applyActivation, [
      ...this.bodyValues(tx, req, workflowId, parts),
      this.activityCrcs(req, parts),
    ]);
    return this.checkBody(req, parts.events, rows[0]!);
  }

  /**
   * Rolls the transaction back (by throwing ConflictError) when the completed activity or a
   * consumed inbox row of an activation's body was gone.
   */
  private checkBody(
    req: ActivationCommit,
    events: boolean,
    r: BodyRow,
  ): { waiting: boolean; visible_at: number | null } {
    const consumed = events ? req.consumedInbox : [];
    const done = events ? req.completedActivity : undefined;
    if (done !== undefined && r.finished !== 1) {
      throw new ConflictError(
        `activation of run ${req.runId} discarded: activity task ${done.taskId} with fence ${done.fence} is no ` +
          "longer current (retried elsewhere, cancelled or already completed). Nothing was written; re-read the " +
          "run and replay.",
      );
    }
    if (r.consumed !== consumed.length) {
      throw new ConflictError(
        `activation of run ${req.runId} discarded: inbox events [${consumed.join(", ")}] are not all in this ` +
          "run's inbox (already consumed?). Nothing was written; re-read the run and replay.",
      );
    }
    return { waiting: r.waiting, visible_at: r.visible_at };
  }

  /** Lease of an attempt: its timeout plus a grace (see attemptLeaseMs in @spool/core). */
  private attemptLease(timeoutMs: number, heartbeatTimeoutMs: number): number {
    return attemptLeaseMs(timeoutMs, heartbeatTimeoutMs, this.activityLeaseMs);
  }

  /** Explains which activation guard failed (read inside the same transaction). */
  private async commitConflict(tx: Tx, req: ActivationCommit): Promise<ConflictError> {
    const s = this.stmts;
    const run = (await tx.q<{ status: string; last_seq: number }>(s.runState, [req.runId])).rows[0];
    let why: string;
    if (run === undefined) why = "there is no such run";
    else if (!isOpenStatus(run.status)) why = `the run is already ${run.status}`;
    else if (run.last_seq !== req.expectedLastSeq) {
      why =
        `expected last seq ${req.expectedLastSeq} but the run is at ${run.last_seq} ` +
        "(another activation committed first)";
    } else {
      const task = (await tx.q<{ fence: number }>(s.workflowTaskFence, [req.runId])).rows[0];
      why =
        `workflow task fence ${req.fence} is stale (current fence ${task?.fence ?? "none"}: ` +
        "the lease expired and another worker claimed the task)";
    }
    return new ConflictError(
      `activation of run ${req.runId} discarded: ${why}. Nothing was written; re-read the run and replay.`,
    );
  }

  private async staleTask(op: string, runId: string, fence: number): Promise<ConflictError> {
    const { rows } = await this.one<{ fence: number }>(this.stmts.workflowTaskFence, [runId]);
    const why =
      rows[0] === undefined
        ? "the run has no workflow task (it is closed or unknown)"
        : `its current fence is ${rows[0].fence} (the lease expired and another worker claimed the task)`;
    return new ConflictError(
      `${op} of run ${runId} with fence ${fence} rejected: ${why}. Nothing was changed.`,
    );
  }
}

function positiveInt(value: number | undefined, fallback: number, name: string, allowZero = false): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new ConfigurationError(
      `PostgresBackend: ${name} must be a ${allowZero ? "non-negative" : "positive"} integer`,
    );
  }
  return value;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Back-off before re-running an aborted transaction: a few ms, growing, with jitter. */
function pause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
}

/** See `guardConnection`: the failure is seen by the connection's next query. */
function ignoreStrayError(): void {}
