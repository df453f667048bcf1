/**
 * Connection and transaction mechanics of the PostgreSQL backend: the pool (and its guard against
 * stray connection errors), single statements in autocommit, transactions that read the database
 * clock at BEGIN and send their NOTIFYs with COMMIT, the retry of deadlocks and serialization
 * failures, and the open/initialised state every call checks first. Every other part of the
 * backend runs its SQL through this.
 */
import { SpoolError } from "@spool/core";
import pg from "pg";
import type { DbClock } from "./db-clock.ts";
import { ADVISORY_LOCK_CLASS } from "./migrations.ts";
import { type Notifier, Outbox } from "./notifier.ts";
import { isConnectionFailure, isRetryableConflict, translatePgError } from "./pg-errors.ts";
import { TYPES } from "./records.ts";
import type { BoundStatement, Statements } from "./statements.ts";

/** Attempts of a transaction that PostgreSQL aborted with a deadlock or serialization failure. */
const MAX_ATTEMPTS = 5;

/** One write transaction as a callback sees it. */
export interface Tx {
  /** The database clock (plus the test offset), read once at BEGIN. */
  readonly now: number;
  /** True when this transaction holds the timer-sweeping advisory lock (fireDueTimers only). */
  readonly leader: boolean;
  /** What the transaction made ready, announced once it has committed. */
  readonly out: Outbox;
  /** Runs a bound statement (`stmts.x.with({...})`) in the transaction. */
  q<R extends pg.QueryResultRow = pg.QueryResultRow>(stmt: BoundStatement): Promise<pg.QueryResult<R>>;
}

/** What a {@link PgConnection} is built from (the backend's constructor resolves it). */
export interface PgConnectionParts {
  pool: pg.Pool;
  schema: string;
  stmts: Statements;
  clock: DbClock;
  notifier: Notifier;
  /** NOTIFY channel of the schema. */
  channel: string;
  /** This process's id in NOTIFY payloads (so it skips its own). */
  sender: string;
  /** Key of the timer-sweeping advisory lock. */
  timerLockKey: number;
  /** Use named prepared statements. */
  prepared: boolean;
  /** Runs (once) before the first statement: migrations and the clock's first measurement. */
  initialize: () => Promise<void>;
}

/**
 * The backend's way to the database: statements, transactions and wake-up announcements. One per
 * backend, shared by all its parts.
 */
export class PgConnection {
  readonly stmts: Statements;
  readonly clock: DbClock;
  readonly schema: string;
  /** This process's id in NOTIFY payloads (so it skips its own). */
  readonly sender: string;
  /** True once `initialize` has succeeded. */
  initialized = false;
  /** True once the backend is closed: every call then rejects. */
  closed = false;

  private readonly pool: pg.Pool;
  private readonly notifier: Notifier;
  private readonly channel: string;
  private readonly timerLockKey: number;
  private readonly prepared: boolean;
  private readonly initialize: () => Promise<void>;

  constructor(parts: PgConnectionParts) {
    this.pool = parts.pool;
    this.schema = parts.schema;
    this.stmts = parts.stmts;
    this.clock = parts.clock;
    this.notifier = parts.notifier;
    this.channel = parts.channel;
    this.sender = parts.sender;
    this.timerLockKey = parts.timerLockKey;
    this.prepared = parts.prepared;
    this.initialize = parts.initialize;
  }

  /** The test-only clock offset, the `offset` parameter of single statements. */
  offset(): number {
    return this.clock.offset();
  }

  /**
   * The `channel` and `payload` parameters of a single statement that NOTIFYs what `out` made
   * ready (itself, in SQL, when it changed something), for statements outside a transaction.
   */
  notice(out: Outbox): { channel: string; payload: string } {
    return { channel: this.channel, payload: out.payloads(this.sender)[0]! };
  }

  /** Announces `out` to this process's listeners (after its statement or transaction committed). */
  emit(out: Outbox): void {
    this.notifier.emit(out.notifications());
  }

  /** A pool connection (already guarded against stray errors: see the backend's constructor). */
  async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw translatePgError(err, this.schema);
    }
  }

  /** Runs one bound statement (`stmts.x.with({...})`) on its own (autocommit), retrying deadlocks. */
  one<R extends pg.QueryResultRow = pg.QueryResultRow>(stmt: BoundStatement): Promise<pg.QueryResult<R>> {
    return this.run<R>(this.config(stmt));
  }

  /** Runs an ad-hoc statement (listing, integrity scan) on its own, with positional values. */
  raw<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.run<R>({ text, values, types: TYPES });
  }

  private async run<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    if (!this.initialized) await this.initialize();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<R>(config);
      } catch (err) {
        if (isRetryableConflict(err) && attempt < MAX_ATTEMPTS) {
          await pause(attempt);
          continue;
        }
        throw translatePgError(err, this.schema);
      }
    }
  }

  private config(stmt: BoundStatement): pg.QueryConfig {
    return {
      name: this.prepared ? stmt.name : undefined,
      text: stmt.text,
      values: stmt.values,
      types: TYPES,
    };
  }

  /**
   * Runs `fn` in one transaction: BEGIN and a read of the database clock in one round trip, then
   * the callback's statements, then the NOTIFYs and COMMIT in one round trip. Deadlocks,
   * serialization failures and a lost race for a workflow id's open run roll back and run again.
   * Listeners in this process are called only after COMMIT succeeded. With `leader`, the
   * transaction tries the timer-sweeping advisory lock and reports whether it got it.
   */
  async tx<T>(fn: (tx: Tx) => Promise<T>, opts: { leader?: boolean } = {}): Promise<T> {
    this.assertOpen();
    if (!this.initialized) await this.initialize();
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
          q: (stmt) => client.query(this.config(stmt)),
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
      this.emit(out);
      return result;
    }
  }

  /** @throws SpoolError once the backend is closed */
  assertOpen(): void {
    if (this.closed) {
      throw new SpoolError(
        `PostgresBackend (schema ${this.schema}) is closed; create a new backend to continue.`,
      );
    }
  }
}

/** Back-off before re-running an aborted transaction: a few ms, growing, with jitter. */
function pause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
}
