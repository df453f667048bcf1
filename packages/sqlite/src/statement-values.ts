/**
 * Small typed helpers around the prepared statements of statements.ts: the typed builder of the
 * one hot statement that binds many values positionally (an activity task's insert), and the
 * per-arity cache of statements whose `IN (...)` list length varies with the caller.
 */
import type { PlannedActivityTask } from "@spool/sql-store";
import type Database from "better-sqlite3";

/** The values of `insertActivity`, in its column order. */
export type ActivityTaskValues = [
  taskId: string,
  runId: string,
  workflowId: string,
  step: number,
  name: string,
  input: Uint8Array,
  options: Uint8Array,
  attempt: number,
  fence: number,
  visibleAt: number,
  leaseOwner: string | null,
  leaseExpiresAt: number | null,
  timeoutMs: number,
  heartbeatTimeoutMs: number,
  scheduledAt: number,
  crc: number,
];

/** A planned activity task (@spool/sql-store) of run `runId` as {@link ActivityTaskValues}. */
export function activityTaskValues(
  runId: string,
  workflowId: string,
  t: PlannedActivityTask,
): ActivityTaskValues {
  return [
    t.taskId,
    runId,
    workflowId,
    t.step,
    t.name,
    t.input,
    t.options,
    t.attempt,
    t.fence,
    t.visibleAt,
    t.leaseOwner,
    t.leaseExpiresAt,
    t.timeoutMs,
    t.heartbeatTimeoutMs,
    t.scheduledAt,
    t.crc,
  ];
}

/** Statements whose `IN (?, ?, ...)` list has a caller-chosen length, prepared once per length. */
export class ByArity<P extends unknown[], R> {
  private readonly cache = new Map<number, Database.Statement<P, R>>();
  constructor(
    private readonly db: Database.Database,
    private readonly sql: (placeholders: string, n: number) => string,
  ) {}

  /** The statement for a list of `n` values (n >= 1). */
  get(n: number): Database.Statement<P, R> {
    let stmt = this.cache.get(n);
    if (stmt === undefined) {
      stmt = this.db.prepare<P, R>(this.sql(Array.from({ length: n }, () => "?").join(", "), n));
      this.cache.set(n, stmt);
    }
    return stmt;
  }
}
