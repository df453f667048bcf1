/**
 * The writes that put something in front of a run inside a transaction: creating a run (with its
 * WorkflowStarted event and ready task) and delivering inbound events to an open run, to a run,
 * or — within the buffer cap — a signal. Shared by the client operations and the commit executor,
 * which pass the rows @spool/sql-store planned; each marks the transaction's outbox when it made a
 * workflow task ready.
 */
import { SignalBufferFullError } from "@spool/core";
import { eventChecksum, type InboxRowValues, type NewRunRows } from "@spool/sql-store";
import type { Tx } from "./connection.ts";
import type { Statements } from "./statements.ts";

/**
 * Inserts a run, its WorkflowStarted event (#1) and its ready task (the rows of sql-store's
 * `newRunRows`); false if the workflow id has an open run.
 */
export async function createRun(tx: Tx, s: Statements, rows: NewRunRows): Promise<boolean> {
  const { run, started } = rows;
  const res = await tx.q(
    s.createRun.with({
      runId: run.runId,
      workflowId: run.workflowId,
      workflowName: run.workflowName,
      version: run.version,
      now: run.now,
      parentRunId: run.parentRunId,
      parentWorkflowId: run.parentWorkflowId,
      parentStep: run.parentStep,
      continuedFrom: run.continuedFrom,
      startedBody: started.body,
      startedCrc: started.crc,
      inputHash: run.inputHash,
      runCrc: run.crc,
    }),
  );
  if (res.rows.length === 0) return false;
  tx.out.workflowTask = true;
  return true;
}

/**
 * Delivers an inbound event to the open run of a workflow id (a given run, or a child of a given
 * parent). Looks `tries` times: if the run closed while the first attempt waited for its lock (a
 * continue-as-new), the second sees its successor.
 */
export async function deliverToOpen(
  tx: Tx,
  s: Statements,
  target: { workflowId: string; runId?: string | undefined; parentRunId?: string | null },
  row: InboxRowValues,
  tries = 2,
): Promise<{ runId: string; blocked: boolean } | null> {
  for (let i = 0; i < tries; i++) {
    const { rows } = await tx.q<{ run_id: string; blocked: boolean }>(
      s.deliverToOpenRun.with({
        workflowId: target.workflowId,
        runId: target.runId ?? null,
        parentRunId: target.parentRunId ?? null,
        now: row.ts,
        type: row.type,
        body: row.body,
        crc: row.crc,
      }),
    );
    if (rows[0] !== undefined) {
      tx.out.workflowTask = true;
      return { runId: rows[0].run_id, blocked: rows[0].blocked };
    }
  }
  return null;
}

/** Delivers an inbound event to a run if it is open; false when it is not. */
export async function deliverTo(tx: Tx, s: Statements, runId: string, row: InboxRowValues): Promise<boolean> {
  const { rows } = await tx.q(
    s.deliverToRun.with({ runId, now: row.ts, type: row.type, step: row.step, body: row.body, crc: row.crc }),
  );
  if (rows.length === 0) return false;
  tx.out.workflowTask = true;
  return true;
}

/**
 * Delivers a signal to a run this transaction has locked or created, unless it already holds
 * `cap` unconsumed ones (see deliverSignalIfRoom: every delivery and commit of the run takes the
 * same lock first, so concurrent senders cannot overshoot the cap).
 * @throws SignalBufferFullError
 */
export async function deliverSignal(
  tx: Tx,
  s: Statements,
  run: { workflowId: string; runId: string },
  body: Uint8Array,
  cap: number,
): Promise<void> {
  const { rows } = await tx.q<{ n: number; delivered: number }>(
    s.deliverSignalIfRoom.with({
      runId: run.runId,
      now: tx.now,
      body,
      crc: eventChecksum(0, tx.now, "SignalReceived", null, body),
      cap,
    }),
  );
  const waiting = Number(rows[0]?.n ?? 0);
  if (Number(rows[0]?.delivered ?? 0) !== 1) {
    throw new SignalBufferFullError({ workflowId: run.workflowId, runId: run.runId, waiting, limit: cap });
  }
  tx.out.workflowTask = true;
}

/** True when the signal is to be delivered: this run has not received its request id yet. */
export async function firstSignal(tx: Tx, s: Statements, runId: string, requestId: string): Promise<boolean> {
  return (await tx.q(s.rememberSignal.with({ runId, requestId }))).rows.length === 1;
}
