/**
 * Conversion of stored rows (any SQL backend with Spool's column names) into the Backend
 * contract's records, with the integrity checks every event read must pass before it is handed to
 * replay: each row's checksum, and gapless positions.
 */
import { ConflictError, HistoryCorruptError } from "../errors.ts";
import type { EventType } from "../history/events.ts";
import type {
  ActivityAttemptRef,
  ClaimedActivityTask,
  InboxEvent,
  PendingActivity,
  RawEvent,
  RunRecord,
  RunStatus,
} from "./backend.ts";
import { asBytes, rowCorruption, type StoredEventRow } from "./row-checksum.ts";

/** A `runs` row as a driver returns it. */
export interface StoredRunRow {
  run_id: string;
  workflow_id: string;
  workflow_name: string;
  status: string;
  version: string | null;
  created_at: number;
  updated_at: number;
  closed_at: number | null;
  last_seq: number;
  parent_run_id: string | null;
  parent_workflow_id: string | null;
  parent_step: number | null;
  continued_from: string | null;
  continued_to: string | null;
  result: Uint8Array | null;
  error: Uint8Array | null;
  blocked_reason: string | null;
}

/** A `history` row, unchecked. */
export interface StoredHistoryRow extends StoredEventRow {
  seq: number;
}

/** An `inbox` row, unchecked. */
export interface StoredInboxRow extends StoredEventRow {
  id: number;
}

/** An `activity_tasks` row as a claim returns it. */
export interface StoredActivityRow {
  task_id: string;
  run_id: string;
  workflow_id: string;
  step: number;
  name: string;
  input: Uint8Array;
  options: Uint8Array;
  attempt: number;
  fence: number;
  timeout_ms: number;
  heartbeat_timeout_ms: number;
  scheduled_at: number;
  lease_expires_at: number;
}

/** True for the statuses of an open run (`blocked` is open: it is parked, not finished). */
export function isOpenStatus(status: string): boolean {
  return status === "running" || status === "blocked";
}

/** A `runs` row as the contract's {@link RunRecord}. */
export function toRunRecord(row: StoredRunRow): RunRecord {
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
export function toRawEvents(runId: string, afterSeq: number, rows: StoredHistoryRow[]): RawEvent[] {
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
export function toInboxEvents(runId: string, rows: StoredInboxRow[]): InboxEvent[] {
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

/** An `activity_tasks` row as the contract's {@link ClaimedActivityTask}. */
export function toClaimedActivity(row: StoredActivityRow): ClaimedActivityTask {
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
/** An `activity_tasks` row as the inspectors read it, with its state computed on the store's clock. */
export interface StoredPendingActivityRow {
  run_id: string;
  step: number;
  name: string;
  attempt: number;
  state: string;
  last_error: Uint8Array | null;
  visible_at: number;
  lease_expires_at: number | null;
  scheduled_at: number;
}

/** The inspector's view of a pending activity row. */
export function toPendingActivity(row: StoredPendingActivityRow): PendingActivity {
  const state = row.state as PendingActivity["state"];
  return {
    runId: row.run_id,
    step: row.step,
    name: row.name,
    attempt: row.attempt,
    state,
    lastError: row.last_error === null ? null : asBytes(row.last_error),
    nextAttemptAt: state === "running" ? null : row.visible_at,
    leaseExpiresAt: state === "running" ? row.lease_expires_at : null,
    scheduledAt: row.scheduled_at,
  };
}

export function staleAttempt(what: string, ref: ActivityAttemptRef): ConflictError {
  return new ConflictError(
    `activity ${what} rejected: task ${ref.taskId} has no live attempt with fence ${ref.fence} (a stale attempt ` +
      "whose lease was taken over, an attempt already completed or retried, or the activity was cancelled). " +
      "Nothing was written; stop this attempt.",
  );
}
