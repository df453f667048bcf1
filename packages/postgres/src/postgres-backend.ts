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
 * This file is the facade: it owns the lifecycle (pool, migrations, clock, LISTEN) and delegates
 * each part of the contract to the module that owns it — connection.ts (statements and
 * transactions), client-operations.ts, workflow-tasks.ts with commit-executor.ts,
 * activity-tasks.ts, timers.ts, worker-registry.ts. HOW_IT_WORKS.md describes the tables and
 * protocols.
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
import { newId } from "@spool/core";
import pg from "pg";
import { ActivityTasks } from "./activity-tasks.ts";
import { type PostgresBackendOptions, resolveOptions } from "./backend-options.ts";
import { ClientOperations } from "./client-operations.ts";
import { CommitExecutor } from "./commit-executor.ts";
import { PgConnection } from "./connection.ts";
import { DbClock } from "./db-clock.ts";
import { advisoryLockKey, migrate } from "./migrations.ts";
import { Notifier } from "./notifier.ts";
import { isConnectionFailure, translatePgError } from "./pg-errors.ts";
import { checkPostgresIntegrity } from "./postgres-doctor.ts";
import { PostgresInspector } from "./postgres-inspector.ts";
import { TYPES } from "./records.ts";
import { buildStatements } from "./statements.ts";
import { Timers } from "./timers.ts";
import { WorkerRegistry } from "./worker-registry.ts";
import { WorkflowTasks } from "./workflow-tasks.ts";

export type { PostgresBackendOptions } from "./backend-options.ts";

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
 * @throws InvalidOptionsError from the constructor for invalid options; from `init()` for a schema
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
  private readonly clock: DbClock;
  private readonly notifier: Notifier;
  private readonly db: PgConnection;
  private readonly client: ClientOperations;
  private readonly workflowTasks: WorkflowTasks;
  private readonly activityTasks: ActivityTasks;
  private readonly timers: Timers;
  private readonly workers: WorkerRegistry;
  /** Whether init() may create a missing schema (see the option). */
  private readonly createSchema: boolean;
  private readonly clockRefreshMs: number;
  private readonly onConnectionError: (err: Error) => void;
  private readonly poolErrorListener = (err: Error) => this.onConnectionError(err);
  private readonly guarded = new WeakSet<pg.PoolClient>();
  private readonly guardConnection = (client: pg.PoolClient) => {
    if (this.guarded.has(client)) return;
    this.guarded.add(client);
    client.on("error", ignoreStrayError);
  };
  private initializing: Promise<void> | null = null;

  constructor(options: PostgresBackendOptions = {}) {
    const o = resolveOptions(options);
    const schema = o.schema;
    this.schema = schema;
    this.clockRefreshMs = o.clockRefreshMs;
    this.createSchema = o.createSchema;
    this.onConnectionError = o.onConnectionError;
    if (options.pool !== undefined) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      this.pool = new pg.Pool({
        connectionString: options.connectionString,
        max: o.poolSize,
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
    const stmts = buildStatements(schema);
    this.clock = new DbClock(options.clock);
    const channel = `spool:${schema}`;
    this.notifiesAcrossProcesses = o.listen;
    const poolOptions = this.pool.options;
    const sender = newId();
    this.notifier = new Notifier({
      channel,
      sender,
      listen: o.listen,
      newClient: () => new pg.Client(poolOptions),
      onError: (err) => this.onConnectionError(err),
    });
    this.db = new PgConnection({
      pool: this.pool,
      schema,
      stmts,
      clock: this.clock,
      notifier: this.notifier,
      channel,
      sender,
      timerLockKey: advisoryLockKey(schema, "timers"),
      prepared: o.prepared,
      initialize: () => this.init(),
    });
    this.client = new ClientOperations(this.db, o.maxBufferedSignals);
    this.workflowTasks = new WorkflowTasks(
      this.db,
      new CommitExecutor(stmts, o.activityLeaseMs),
      o.workflowLeaseMs,
    );
    this.activityTasks = new ActivityTasks(this.db, o.activityLeaseMs);
    this.timers = new Timers(this.db);
    this.workers = new WorkerRegistry(this.db);
    this.inspect = new PostgresInspector(this.db);
  }

  /**
   * Creates the schema and applies pending migrations (under an advisory lock, so processes
   * starting together apply each once), then measures the database clock. Idempotent.
   *
   * @throws InvalidOptionsError when the schema was migrated by a newer release.
   */
  async init(): Promise<void> {
    this.db.assertOpen();
    if (this.db.initialized) return;
    this.initializing ??= this.doInit().catch((err) => {
      this.initializing = null;
      throw err;
    });
    return this.initializing;
  }

  private async doInit(): Promise<void> {
    const client = await this.db.connect();
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
    this.db.initialized = true;
  }

  /**
   * Stops the clock refresh and the LISTEN connection and ends the pool (unless it was passed in).
   * Idempotent; every other call afterwards rejects.
   */
  async close(): Promise<void> {
    if (this.db.closed) return;
    this.db.closed = true;
    this.clock.stop();
    await this.notifier.close();
    if (this.ownsPool) await this.pool.end().catch(() => undefined);
    this.pool.off("error", this.poolErrorListener);
    this.pool.off("acquire", this.guardConnection);
  }

  // ── Client side ──────────────────────────────────────────────────────────────────────────

  /** Creates a run (WorkflowStarted + ready task) or attaches per `onConflict`. */
  startWorkflow(req: StartWorkflowRequest): Promise<StartWorkflowResult> {
    return this.client.startWorkflow(req);
  }

  /**
   * Puts a SignalReceived event in the open run's inbox.
   * @throws RunNotFoundError; SignalBufferFullError when the run holds maxBufferedSignals unconsumed
   */
  signalWorkflow(req: SignalRequest): Promise<{ runId: string }> {
    return this.client.signalWorkflow(req);
  }

  /** Starts a run unless one is open (closed runs never block it), then signals it; one transaction. */
  signalWithStart(
    start: StartWorkflowRequest,
    signalBody: Uint8Array,
    options: { requestId?: string } = {},
  ): Promise<StartWorkflowResult> {
    return this.client.signalWithStart(start, signalBody, options);
  }

  /** Puts CancelRequested in the open run's inbox, or reports the closed run's status. */
  requestCancel(req: CancelRequest): Promise<CancelResult> {
    return this.client.requestCancel(req);
  }

  // ── Workflow tasks ───────────────────────────────────────────────────────────────────────

  /** Leases the oldest claimable workflow task of these workflows; null when there is none. */
  claimWorkflowTask(req: {
    workerId: string;
    workflowNames: string[];
    leaseMs: number;
  }): Promise<ClaimedWorkflowTask | null> {
    return this.workflowTasks.claimWorkflowTask(req);
  }

  /** History events with seq > afterSeq, checksums verified. @throws HistoryCorruptError */
  getHistory(runId: string, afterSeq = 0): Promise<RawEvent[]> {
    return this.workflowTasks.getHistory(runId, afterSeq);
  }

  /** The run's unconsumed inbox, in consumption order. @throws HistoryCorruptError */
  getInbox(runId: string): Promise<InboxEvent[]> {
    return this.workflowTasks.getInbox(runId);
  }

  /**
   * Commits one activation in one transaction, guarded by `expectedLastSeq` and (when given) the
   * task's fence. See HOW_IT_WORKS.md for the order of writes.
   *
   * @throws ConflictError when a guard fails (nothing written; discard the activation and re-read)
   * @throws InternalContractError when the request itself is malformed (a worker bug)
   */
  commitActivation(req: ActivationCommit): Promise<ActivationResult> {
    return this.workflowTasks.commitActivation(req);
  }

  /** Parks the run as blocked until `retryAt`; history untouched. @throws ConflictError (stale fence) */
  blockRun(req: BlockRequest): Promise<void> {
    return this.workflowTasks.blockRun(req);
  }

  /** Gives the task back, claimable at `retryAt` (default now). @throws ConflictError (stale fence) */
  releaseWorkflowTask(req: { runId: string; fence: number; retryAt?: number }): Promise<void> {
    return this.workflowTasks.releaseWorkflowTask(req);
  }

  /** Makes the unleased tasks of blocked runs of these workflows claimable now; returns how many. */
  retryBlockedRuns(workflowNames: string[]): Promise<number> {
    return this.workflowTasks.retryBlockedRuns(workflowNames);
  }

  // ── Activity tasks ───────────────────────────────────────────────────────────────────────

  /** Leases the oldest claimable activity task of these names (attempt + 1); null when none. */
  claimActivityTask(req: { workerId: string; activityNames: string[] }): Promise<ClaimedActivityTask | null> {
    return this.activityTasks.claimActivityTask(req);
  }

  /** Extends the attempt's lease to now + leaseMs. @throws ConflictError (stale or cancelled) */
  heartbeatActivityTask(ref: ActivityAttemptRef, leaseMs: number): Promise<{ leaseExpiresAt: number }> {
    return this.activityTasks.heartbeatActivityTask(ref, leaseMs);
  }

  /** Removes the task and puts its result event in the run's inbox. @throws ConflictError */
  completeActivityTask(ref: ActivityAttemptRef, event: { type: EventType; body: Uint8Array }): Promise<void> {
    return this.activityTasks.completeActivityTask(ref, event);
  }

  /** Releases the attempt and makes the task claimable at `retryAt`. @throws ConflictError */
  retryActivityTask(ref: ActivityAttemptRef, retryAt: number, lastError: Uint8Array): Promise<void> {
    return this.activityTasks.retryActivityTask(ref, retryAt, lastError);
  }

  /** Gives back an attempt that never started, not counted. @throws ConflictError */
  releaseActivityTask(ref: ActivityAttemptRef): Promise<void> {
    return this.activityTasks.releaseActivityTask(ref);
  }

  // ── Timers ───────────────────────────────────────────────────────────────────────────────

  /**
   * Moves up to `limit` due timers into their runs' inboxes as TimerFired; returns how many. One
   * worker of the cluster sweeps at a time (a transaction-scoped advisory lock); the others get 0.
   */
  fireDueTimers(limit: number): Promise<number> {
    return this.timers.fireDueTimers(limit);
  }

  /** The earliest timer due time, task ready time or lease expiry; null when nothing is pending. */
  nextWakeAt(): Promise<number | null> {
    return this.timers.nextWakeAt();
  }

  // ── Worker liveness ──────────────────────────────────────────────────────────────────────

  /**
   * Records the worker (pid and host for operators; liveness is its heartbeat, on the database
   * clock). A row left by another incarnation of the same id has its leases released first.
   */
  registerWorker(reg: WorkerRegistration): Promise<void> {
    return this.workers.registerWorker(reg);
  }

  /** Refreshes the worker's heartbeat; false when it was presumed dead or is unknown. */
  heartbeatWorker(workerId: string): Promise<boolean> {
    return this.workers.heartbeatWorker(workerId);
  }

  /** Marks workers whose heartbeat timed out dead and releases their leases (each death once). */
  releaseDeadWorkers(): Promise<DeadWorkerSweep> {
    return this.workers.releaseDeadWorkers();
  }

  /** Marks the worker stopped (clean shutdown). */
  unregisterWorker(workerId: string): Promise<void> {
    return this.workers.unregisterWorker(workerId);
  }

  // ── Wake-ups, clock, diagnostics ─────────────────────────────────────────────────────────

  /**
   * Registers a listener. It hears this process's commits synchronously after they commit, and
   * other processes' commits through LISTEN (opened on the first subscription).
   */
  subscribe(listener: (n: BackendNotification) => void): () => void {
    // After close() nothing will ever be announced; like SqliteBackend, do not throw.
    if (this.db.closed) return () => undefined;
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
        (await this.db.raw<R>(text, values)).rows,
      this.db.stmts.schema,
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
}

/** See `guardConnection`: the failure is seen by the connection's next query. */
function ignoreStrayError(): void {}
