/**
 * Group commit for the SQLite backend: every write requested during one event-loop turn —
 * activations of many workflows, activity completions, starts, signals, claims — shares one
 * `BEGIN IMMEDIATE` transaction, so one fsync instead of one each. No caller hears "done" before
 * the transaction holding its writes has committed; listeners hear after it, too. Also the reads'
 * way in, and the slicing of lock waits (see {@link WriteQueue.whenUnlocked}).
 */
import { SpoolError } from "@spool/core";
import Database from "better-sqlite3";
import type { ClockSync } from "./clock-sync.ts";
import { translateSqliteError } from "./sqlite-errors.ts";
import type { SqliteFaultPoint } from "./sqlite-options.ts";
import type { Statements } from "./statements.ts";
import { SqliteOutbox } from "./write-context.ts";

/** How long one try waits for a lock before the backend tries again (see retryWhenBusy). */
export const BUSY_SLICE_MS = 2;

/** Rows per multi-row history INSERT (one prepared statement per size). */
export const EVENTS_PER_INSERT = 64;

/** Parameters per history row: run_id, seq, ts, type, step, body, crc. */
const VALUES_PER_EVENT = 7;

/** The fault point a write passes once committed. */
export type AfterPoint = "sqlite.commit.after" | "sqlite.write.after";

/** What the queue needs from its backend. */
export interface WriteQueueHost {
  readonly db: Database.Database;
  readonly stmts: Statements;
  readonly path: string;
  readonly busyTimeoutMs: number;
  /** The anchored clock, or null with an injected clock. */
  readonly clockSync: ClockSync | null;
  readonly faultHook: ((point: SqliteFaultPoint, info?: { runId?: string }) => void) | undefined;
  onWarning(message: string, fields: Record<string, unknown>): void;
  /** Tells listeners what a committed write announced. */
  emit(out: SqliteOutbox): void;
}

/** A write waiting for the next group commit. */
interface QueuedWrite {
  fn: (out: SqliteOutbox) => unknown;
  /** Clock anchor generation when the write was requested (see SqliteOutbox.frameShift). */
  gen: number;
  afterPoint: AfterPoint;
  runId: string | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** What a queued write came to inside the transaction (settled after the commit). */
type WriteResult = { ok: true; value: unknown; out: SqliteOutbox } | { ok: false; error: unknown };

/** Thrown inside a one-write batch to roll it back after recording the write's own error. */
class RollbackOnly extends Error {}

/** Thrown when a write of a batch run without savepoints fails: roll back, run it isolated. */
class IsolateWrites extends Error {}

/** The write queue of one connection. */
export class WriteQueue {
  private readonly queue: QueuedWrite[] = [];
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

  constructor(private readonly host: WriteQueueHost) {
    this.txn = host.db.transaction((fn: () => unknown) => fn());
  }

  /**
   * Runs `fn` in the next group-commit transaction; resolves once that transaction has committed.
   * With more than one write in the batch each runs in its own savepoint when one fails, so a failed
   * guard rolls back only its own writes.
   */
  write<T>(
    fn: (out: SqliteOutbox) => T,
    afterPoint: AfterPoint = "sqlite.write.after",
    runId?: string,
  ): Promise<T> {
    this.assertOpen();
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        fn,
        gen: this.host.clockSync?.generation ?? 0,
        afterPoint,
        runId,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  /**
   * Where an activation of the running batch puts its history rows (VALUES_PER_EVENT values each)
   * for the batch's multi-row statements; undefined: it writes them itself, now.
   */
  get historySink(): unknown[] | undefined {
    return this.queuedHistory;
  }

  /** Runs a read (each statement is its own consistent snapshot in WAL mode). */
  read<T>(fn: () => T): T {
    this.assertOpen();
    const clock = this.host.clockSync;
    if (clock?.pending)
      clock.adoptAppliedStep(() => this.whenUnlocked(() => this.host.stmts.readClockAnchor.get()));
    try {
      return this.whenUnlocked(fn);
    } catch (err) {
      throw translateSqliteError(err, this.host.path, this.host.busyTimeoutMs);
    }
  }

  /** Commits the writes already accepted (their callers are answered), then refuses new ones. */
  close(): void {
    if (this.closed) return;
    this.flush();
    while (this.queue.length > 0) this.flush(); // the lock was held: try again, in slices
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @throws SpoolError once the backend is closed. */
  assertOpen(): void {
    if (this.closed) throw closedError(this.host.path);
  }

  private flush(): void {
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    const { db, clockSync } = this.host;
    const results: WriteResult[] = [];
    // First without savepoints: a SAVEPOINT and RELEASE per write cost about as much as one of an
    // activation's statements, and writes almost never fail. When one does, the whole transaction
    // is rolled back (nothing was written) and the batch runs again, each write in its savepoint,
    // so the others still commit.
    const clockBefore = clockSync?.snapshot();
    const revertClock = () => {
      if (clockSync !== null && clockBefore !== undefined) clockSync.revert(clockBefore);
    };
    const runBatch = (isolated: boolean) =>
      this.txn.immediate(() => {
        results.length = 0;
        // A wall-clock step is reconciled before any write of the batch reads the clock.
        clockSync?.syncInTransaction();
        // Without savepoints, the batch's history rows go in a few multi-row statements at the end
        // rather than one statement per activation: each statement has a fixed cost of its own.
        // With savepoints each write must be whole on its own, so it writes its rows itself.
        this.queuedHistory = !isolated && batch.length > 1 ? [] : undefined;
        for (const item of batch) {
          if (!isolated) {
            try {
              results.push(this.apply(item));
            } catch (error) {
              if (!db.inTransaction || abortsTransaction(error)) throw error;
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
                  return this.apply(item);
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
            if (!db.inTransaction || abortsTransaction(cause)) throw cause;
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
        revertClock();
        if (!(err instanceof IsolateWrites)) throw err;
        runBatch(true);
      } finally {
        this.queuedHistory = undefined;
      }
    } catch (err) {
      revertClock();
      if (!(err instanceof RollbackOnly)) {
        if (this.retryWhenBusy(err, batch)) return;
        const error = translateSqliteError(err, this.host.path, this.host.busyTimeoutMs);
        for (const item of batch) item.reject(error);
        return;
      }
    }
    this.busySince = undefined;
    const warning = clockSync?.takeWarning();
    if (warning !== undefined) this.host.onWarning(warning[0], warning[1]);
    for (const [i, item] of batch.entries()) {
      const r = results[i];
      if (!r) continue;
      if (r.ok) {
        this.host.emit(r.out);
        try {
          this.host.faultHook?.(item.afterPoint, item.runId ? { runId: item.runId } : undefined);
        } catch (e) {
          // A test hook that throws here models an acknowledgement lost after the commit: that
          // caller hears the error, and the rest of the batch still settles.
          item.reject(e);
          continue;
        }
        item.resolve(r.value);
      } else {
        item.reject(translateSqliteError(r.error, this.host.path, this.host.busyTimeoutMs));
      }
    }
  }

  /** Runs one queued write inside the open transaction. */
  private apply(item: QueuedWrite): WriteResult {
    const out = new SqliteOutbox();
    if (this.host.clockSync !== null) out.frameShift = this.host.clockSync.shiftSince(item.gen);
    const info = item.runId ? { runId: item.runId } : undefined;
    this.host.faultHook?.("sqlite.write.begin", info);
    const value = item.fn(out);
    this.host.faultHook?.("sqlite.write.end", info);
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
        this.host.stmts.insertEvents.get(chunk.length / VALUES_PER_EVENT).run(...chunk);
      }
    } catch (error) {
      if (!this.host.db.inTransaction || abortsTransaction(error)) throw error;
      throw new IsolateWrites();
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
  private retryWhenBusy(err: unknown, batch: QueuedWrite[]): boolean {
    const busy = err instanceof Database.SqliteError && err.code.startsWith("SQLITE_BUSY");
    this.busySince ??= Date.now();
    if (!busy || this.closed || Date.now() - this.busySince >= this.host.busyTimeoutMs) {
      this.busySince = undefined;
      return false;
    }
    this.queue.unshift(...batch);
    setImmediate(() => this.flush());
    return true;
  }

  /** Runs a read, trying again in slices while the lock is held (see retryWhenBusy). */
  whenUnlocked<T>(fn: () => T): T {
    return whenUnlocked(fn, this.host.busyTimeoutMs);
  }
}

/** Runs `fn`, trying again while SQLite reports the lock held, for up to `busyTimeoutMs`. */
export function whenUnlocked<T>(fn: () => T, busyTimeoutMs: number): T {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    try {
      return fn();
    } catch (err) {
      const busy = err instanceof Database.SqliteError && err.code.startsWith("SQLITE_BUSY");
      if (!busy || Date.now() >= deadline) throw err;
    }
  }
}

/** SQLite errors after which the engine may have rolled back the whole transaction. */
function abortsTransaction(err: unknown): boolean {
  if (!(err instanceof Database.SqliteError)) return false;
  return /^SQLITE_(FULL|IOERR|BUSY|NOMEM|CORRUPT|LOCKED)/.test(err.code);
}

function closedError(path: string): Error {
  return new SpoolError(`SqliteBackend (${path}) is closed; create a new backend to continue.`);
}
