/**
 * Conversion of PostgreSQL rows into the Backend contract's records, including the integrity
 * checks that every event read must pass before it is handed to replay, and the driver's type
 * parsing (bigint columns as numbers).
 */

import type {
  ActivityAttemptRef,
  ClaimedActivityTask,
  EventType,
  InboxEvent,
  RawEvent,
  RunRecord,
  RunStatus,
} from "@spool/core";
import { asBytes, ConflictError, HistoryCorruptError, rowCorruption } from "@spool/core";
import pg from "pg";
import type { ActivityRow, ClaimRow, HistoryRow, InboxRow, RunRow } from "./statements.ts";

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

/** True for the statuses of an open run (`blocked` is open: it is parked, not finished). */
export function isOpenStatus(status: string): boolean {
  return status === "running" || status === "blocked";
}

/** A `runs` row as the contract's {@link RunRecord}. */
export function toRunRecord(row: RunRow): RunRecord {
  return {
    runId: row.run_id,
    workflowId: row.workflow_id,
    workflowName: row.workflow_name,
    status: row.status as RunStatus,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    closedAt: row.closed_at,
    lastSeq: row.last_seq,
    parentRunId: row.parent_run_id,
    parentWorkflowId: row.parent_workflow_id,
    parentStep: row.parent_step,
    continuedFromRunId: row.continued_from,
    continuedToRunId: row.continued_to,
    result: asBytes(row.result),
    error: asBytes(row.error),
    blockedReason: row.blocked_reason,
  };
}

/**
 * Verified history events. Besides each row's checksum, positions must run afterSeq+1, +2, ...
 * without gaps: a deleted row is corruption too, and replaying around it would misplace every
 * later event.
 *
 * @throws HistoryCorruptError naming the first bad event.
 */
export function toRawEvents(runId: string, afterSeq: number, rows: HistoryRow[]): RawEvent[] {
  const events: RawEvent[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const expected = afterSeq + 1 + i;
    if (row.seq !== expected) {
      throw new HistoryCorruptError(
        runId,
        expected,
        `the event is missing (the next stored event is #${row.seq})`,
      );
    }
    const problem = rowCorruption(row.seq, row);
    if (problem !== null) throw new HistoryCorruptError(runId, row.seq, problem);
    events[i] = {
      seq: row.seq,
      ts: row.ts as number,
      type: row.type as EventType,
      step: row.step as number | null,
      body: asBytes(row.body as Uint8Array | null),
    };
  }
  return events;
}

/**
 * Verified inbox events. A corrupt inbox row is reported as a HistoryCorruptError at position 0
 * (it has no history position yet) with the inbox id in the reason, since it would become history
 * as soon as an activation consumed it.
 */
export function toInboxEvents(runId: string, rows: InboxRow[]): InboxEvent[] {
  return rows.map((row) => {
    const problem = rowCorruption(0, row);
    if (problem !== null) {
      throw new HistoryCorruptError(runId, 0, `inbox event ${row.id} (not yet in history): ${problem}`);
    }
    return {
      id: row.id,
      ts: row.ts as number,
      type: row.type as EventType,
      step: row.step as number | null,
      body: asBytes(row.body as Uint8Array | null),
    };
  });
}

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
