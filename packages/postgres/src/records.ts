/**
 * Conversion of PostgreSQL rows into the Backend contract's records, including the integrity
 * checks that every event read must pass before it is handed to replay, and the driver's type
 * parsing (bigint columns as numbers).
 */

import type { ActivityAttemptRef, ClaimedActivityTask } from "@spool/core";
import { asBytes, ConflictError } from "@spool/core";
import pg from "pg";
import type { ActivityRow, ClaimRow, InboxRow, RunRow } from "./statements.ts";

const INT8_OID = 20;

/**
 * Type parsers for every query: `bigint` (times in ms, fences, counts, identity ids) as a JS
 * number. Every value Spool stores in a bigint is far below 2^53, and the contract speaks numbers.
 * Passed per query rather than set globally, so a pool shared with application code is untouched.
 */
export const TYPES = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID && format !== "binary") return (value: string) => Number(value);
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads are keyed by literal oids
    return pg.types.getTypeParser(oid as any, format as any);
  },
};

/** Splits the claim query's rows (run columns repeated, one row per inbox event) into run and inbox. */
export function splitClaimRows(rows: ClaimRow[]): { run: RunRow; fence: number; inbox: InboxRow[] } {
  const first = rows[0]!;
  const inbox: InboxRow[] = [];
  for (const r of rows) {
    if (r.i_id === null) continue;
    inbox.push({ id: r.i_id, ts: r.i_ts, type: r.i_type, step: r.i_step, body: r.i_body, crc: r.i_crc });
  }
  return { run: first, fence: first.fence, inbox };
}

/** An `activity_tasks` row as the contract's {@link ClaimedActivityTask}. */
export function toClaimedActivity(row: ActivityRow): ClaimedActivityTask {
  return {
    taskId: row.task_id,
    runId: row.run_id,
    workflowId: row.workflow_id,
    step: row.step,
    name: row.name,
    input: asBytes(row.input),
    options: asBytes(row.options),
    attempt: row.attempt,
    fence: row.fence,
    timeoutMs: row.timeout_ms,
    heartbeatTimeoutMs: row.heartbeat_timeout_ms,
    scheduledAt: row.scheduled_at,
    leaseExpiresAt: row.lease_expires_at,
  };
}

/** The ConflictError of a heartbeat, completion or retry from an attempt that no longer holds its task. */
export function staleAttempt(what: string, ref: ActivityAttemptRef): ConflictError {
  return new ConflictError(
    `activity ${what} rejected: task ${ref.taskId} has no live attempt with fence ${ref.fence} (a stale attempt ` +
      "whose lease was taken over, an attempt already completed or retried, or the activity was cancelled). " +
      "Nothing was written; stop this attempt.",
  );
}
