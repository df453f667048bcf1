/**
 * The options of `PostgresBackend` and their checking: what a caller may set, the defaults, and
 * the InvalidOptionsError a bad value gets (at construction, before any connection is opened).
 */
import { InvalidOptionsError } from "@spool/core";
import { positiveIntOption } from "@spool/sql-store";
import type pg from "pg";
import type { PostgresTestClock } from "./db-clock.ts";

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
   * `init()` then throws InvalidOptionsError naming it.
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

/** The options with their defaults applied and checked. */
export interface ResolvedOptions {
  readonly schema: string;
  readonly workflowLeaseMs: number;
  readonly activityLeaseMs: number;
  readonly maxBufferedSignals: number;
  readonly clockRefreshMs: number;
  readonly poolSize: number;
  readonly prepared: boolean;
  readonly createSchema: boolean;
  readonly listen: boolean;
  readonly onConnectionError: (err: Error) => void;
}

/** The shared option check, naming this backend in its error. */
const positiveInt = (name: string, value: number | undefined, fallback: number, allowZero = false) =>
  positiveIntOption("PostgresBackend", name, value, fallback, allowZero);

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/**
 * Applies the defaults and checks every value.
 * @throws InvalidOptionsError naming the option and what it must be
 */
export function resolveOptions(options: PostgresBackendOptions): ResolvedOptions {
  const schema = options.schema ?? "spool";
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new InvalidOptionsError(
      `PostgresBackend: schema must be letters, digits and underscores (not starting with a digit), at most ` +
        `48 characters; got ${JSON.stringify(schema)}`,
    );
  }
  return {
    schema,
    workflowLeaseMs: positiveInt("workflowLeaseMs", options.workflowLeaseMs, 30_000),
    activityLeaseMs: positiveInt("activityLeaseMs", options.activityLeaseMs, 300_000),
    maxBufferedSignals: positiveInt("maxBufferedSignals", options.maxBufferedSignals, 1000),
    clockRefreshMs: positiveInt("clockRefreshMs", options.clockRefreshMs, 60_000, true),
    poolSize: positiveInt("poolSize", options.poolSize, 10),
    prepared: options.preparedStatements ?? true,
    createSchema: options.createSchema ?? true,
    listen: options.listen ?? true,
    onConnectionError: options.onConnectionError ?? (() => undefined),
  };
}
