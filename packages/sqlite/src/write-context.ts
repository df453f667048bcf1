/**
 * What a transaction body of the SQLite backend works with: the prepared statements, the clock,
 * the limits from the options, the test fault hook, and the outbox of its write. The bodies
 * (run-writes, activation-executor, workflow-tasks, activity-tasks, timers, worker-registry) are
 * plain functions over this context; the write queue runs them inside its transactions.
 */
import { Outbox } from "@spool/sql-store";
import type { SqliteFaultPoint } from "./sqlite-options.ts";
import type { Statements } from "./statements.ts";
import type { WriteQueue } from "./write-queue.ts";

/** The backend's connection-wide state, as transaction bodies see it. */
export interface SqliteContext {
  readonly stmts: Statements;
  /** The backend's clock (the anchored clock, or the injected one). */
  readonly clock: () => number;
  readonly workflowLeaseMs: number;
  readonly activityLeaseMs: number;
  readonly maxBufferedSignals: number;
  readonly faultHook: ((point: SqliteFaultPoint, info?: { runId?: string }) => void) | undefined;
}

/** The SQLite outbox: the shared one, plus the clock-frame shift of the write it belongs to. */
export class SqliteOutbox extends Outbox {
  /**
   * How far the clock's anchor moved (wall-clock steps reconciled) between the call and this write:
   * added to the absolute times the caller computed from `now()` (retry times, timer due times),
   * which are on the anchor of the moment they were computed.
   */
  frameShift = 0;
}

/** A transaction body's context plus the queue that runs writes and reads: what operations take. */
export interface SqliteStore extends SqliteContext {
  readonly queue: WriteQueue;
}
