/**
 * Conversion of stored rows (any SQL backend with Spool's column names) into the Backend
 * contract's records, with the integrity checks every event read must pass before it is handed to
 * replay: each row's checksum, and gapless positions.
 */
import {
  type ClaimedActivityTask,
  type EventType,
  HistoryCorruptError,
  type InboxEvent,
  isOpenStatus,
  type PendingActivity,
  type RawEvent,
  RowCorruptError,
  type RunRecord,
  type RunStatus,
  type StartWorkflowRequest,
  type StartWorkflowResult,
  WorkflowAlreadyStartedError,
} from "@spool/core";
import {
  activityChecksum,
  asBytes,
  rowCorruption,
  runChecksum,
  type StoredEventRow,
} from "./row-checksum.ts";

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
  /** Schema v3: `inputFingerprint` of the run's input; null when unknown (older runs). */
  input_hash?: string | null;
  /** Schema v3: {@link runChecksum} of the row; null on rows written before it. */
  crc?: number | null;
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
  /** Schema v3: {@link activityChecksum} of the task; null on tasks created before it. */
  crc?: number | null;
}

/**
 * Why a `runs` row is corrupt, or null when it is sound (or predates row checksums: a NULL crc).
 * Checked: the column types a damaged SQLite row could change, and the checksum.
 */
export function runRowCorruption(row: StoredRunRow): string | null {
  if (row.crc === null || row.crc === undefined) return null;
  if (typeof row.crc !== "number") return "checksum column is not an integer";
  if (typeof row.status !== "string") return "status is not text";
  if (row.result !== null && !(row.result instanceof Uint8Array)) return "result is not binary";
  if (row.error !== null && !(row.error instanceof Uint8Array)) return "error is not binary";
  const actual = runChecksum(row.run_id, row.status, asBytes(row.result), asBytes(row.error));
  if (actual !== row.crc)
    return `checksum mismatch over status, result and error (stored ${row.crc}, computed ${actual})`;
  return null;
}

/** The {@link RowCorruptError} of a damaged `runs` row. */
export function runRowError(row: StoredRunRow, reason: string): RowCorruptError {
  return new RowCorruptError({
    table: "runs",
    runId: row.run_id,
    row: `the record of run ${row.run_id} (workflow id "${row.workflow_id}")`,
    reason,
    status: typeof row.status === "string" ? row.status : undefined,
  });
}

/**
 * A `runs` row as the contract's {@link RunRecord}, its checksum verified.
 *
 * @throws RowCorruptError when the row fails its checksum: no status, result or error read from a
 *   damaged row is ever returned.
 */
export function toRunRecord(row: StoredRunRow): RunRecord {
  const problem = runRowCorruption(row);
  if (problem !== null) throw runRowError(row, problem);
  return toRunRecordUnchecked(row);
}

/** {@link toRunRecord} without the checksum: for a claim, which hands the error to the worker instead. */
export function toRunRecordUnchecked(row: StoredRunRow): RunRecord {
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
 * What a start does with the run its workflow id already has (the latest run, or the open one
 * for "startNewIfClosed" and signalWithStart): attach, or throw. Shared by every backend so they
 * agree on when an input conflicts. A run of another workflow is returned as it is: the client
 * names that conflict itself.
 *
 * @throws WorkflowAlreadyStartedError with "fail", or when `checkInput` and both fingerprints are
 *   known and differ.
 */
export function attachOrConflict(
  req: StartWorkflowRequest,
  existing: Pick<StoredRunRow, "run_id" | "workflow_name" | "status" | "input_hash">,
  opts: { fail: boolean; checkInput: boolean },
): StartWorkflowResult {
  if (opts.fail) throw new WorkflowAlreadyStartedError(req.workflowId, existing.run_id);
  const attached = { runId: existing.run_id, created: false, workflowName: existing.workflow_name };
  if (!opts.checkInput || existing.workflow_name !== req.workflowName) return attached;
  const stored = existing.input_hash ?? null;
  const asked = req.inputHash ?? null;
  if (stored === null || asked === null || stored === asked) return attached;
  throw new WorkflowAlreadyStartedError(
    req.workflowId,
    existing.run_id,
    `workflow id "${req.workflowId}" already has run ${existing.run_id} (status ${existing.status}), started with a ` +
      `different input (input fingerprint ${stored}; this start's is ${asked}). Nothing was started. If you meant ` +
      'that run, pass the same input, or onConflict: "useExisting" to attach to it whatever its input; for a new ' +
      'run, use another workflow id (or onConflict: "startNewIfClosed" once the run has closed).',
  );
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
 * The error to report for a corrupt history read once the run's status is known: a run that has
 * ended gets advice that does not send the reader to `spool terminate`, which would fail on it.
 * Anything else passes through.
 */
export function withRunStatus(err: unknown, status: string | undefined): unknown {
  if (!(err instanceof HistoryCorruptError) || err instanceof RowCorruptError || status === undefined)
    return err;
  if (isOpenStatus(status)) return err;
  return new HistoryCorruptError(err.runId, err.seq, err.reason, { runStatus: status });
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

/** Why an `activity_tasks` row is corrupt, or null when it is sound (or predates row checksums). */
export function activityRowCorruption(row: StoredActivityRow): string | null {
  if (row.crc === null || row.crc === undefined) return null;
  if (typeof row.crc !== "number") return "checksum column is not an integer";
  if (!(row.input instanceof Uint8Array)) return "input is not binary";
  const actual = activityChecksum(row.run_id, row.step, row.name, asBytes(row.input));
  if (actual !== row.crc) return `checksum mismatch over the input (stored ${row.crc}, computed ${actual})`;
  return null;
}

/** The {@link RowCorruptError} of a damaged `activity_tasks` row. */
export function activityRowError(row: StoredActivityRow, reason: string): RowCorruptError {
  return new RowCorruptError({
    table: "activity_tasks",
    runId: row.run_id,
    row: `activity task ${row.task_id} (run ${row.run_id}, step ${row.step}, "${row.name}")`,
    reason,
  });
}

/**
 * An `activity_tasks` row as the contract's {@link ClaimedActivityTask}, its checksum verified.
 *
 * @throws RowCorruptError when the input fails the checksum: the attempt must not run.
 */
export function toClaimedActivity(row: StoredActivityRow): ClaimedActivityTask {
  // A damaged row is handed out marked, not thrown: a throw would fail every claim of this
  // activity name while the row stays first in line; marked, the worker fails its step for good.
  const problem = activityRowCorruption(row);
  const claimed: ClaimedActivityTask = {
    taskId: row.task_id,
    runId: row.run_id,
    workflowId: row.workflow_id,
    step: row.step,
    name: row.name,
    input: row.input instanceof Uint8Array ? asBytes(row.input) : new Uint8Array(0),
    options: asBytes(row.options),
    attempt: row.attempt,
    fence: row.fence,
    timeoutMs: row.timeout_ms,
    heartbeatTimeoutMs: row.heartbeat_timeout_ms,
    scheduledAt: row.scheduled_at,
    leaseExpiresAt: row.lease_expires_at,
  };
  if (problem !== null) claimed.corruption = activityRowError(row, problem);
  return claimed;
}

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
