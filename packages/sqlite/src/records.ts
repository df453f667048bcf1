/**
 * Conversion of SQLite rows into the Backend contract's records, including the integrity checks
 * that every event read must pass before it is handed to replay.
 */

import type { EventType, InboxEvent, RawEvent, RunRecord, RunStatus } from "@spool/core";
import { asBytes, HistoryCorruptError, rowCorruption } from "@spool/core";
import type { HistoryRow, InboxRow, RunRow } from "./statements.ts";

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
