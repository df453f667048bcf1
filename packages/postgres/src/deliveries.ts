/**
 * The writes that put something in front of a run inside a transaction: creating a run (with its
 * WorkflowStarted event and ready task) and delivering inbound events to an open run, to a run,
 * or — within the buffer cap — a signal. Shared by the client operations and the commit executor;
 * each marks the transaction's outbox when it made a workflow task ready.
 */
import { type EventType, SignalBufferFullError } from "@spool/core";
import { eventChecksum, runChecksum } from "@spool/sql-store";
import type { Tx } from "./connection.ts";
import type { Statements } from "./statements.ts";

/** A run to create (see {@link createRun}). */
export interface NewRun {
  runId: string;
  workflowId: string;
  workflowName: string;
  version: string | null;
  startedEventBody: Uint8Array;
  parentRunId: string | null;
  parentWorkflowId: string | null;
  parentStep: number | null;
  continuedFrom: string | null;
  /** `inputFingerprint` of the run's input, or null when unknown. */
  inputHash: string | null;
}

/** Inserts a run, its WorkflowStarted event (#1) and its ready task; false if the id has an open run. */
export async function createRun(tx: Tx, s: Statements, run: NewRun): Promise<boolean> {
  const body = run.startedEventBody;
  const { rows } = await tx.q(
    s.createRun.with({
      runId: run.runId,
      workflowId: run.workflowId,
      workflowName: run.workflowName,
      version: run.version,
      now: tx.now,
      parentRunId: run.parentRunId,
      parentWorkflowId: run.parentWorkflowId,
      parentStep: run.parentStep,
      continuedFrom: run.continuedFrom,
      startedBody: body,
      startedCrc: eventChecksum(1, tx.now, "WorkflowStarted", null, body),
      inputHash: run.inputHash,
      runCrc: runChecksum(run.runId, "running", null, null),
    }),
  );
  if (rows.length === 0) return false;
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
  type: EventType,
  body: Uint8Array,
  tries = 2,
): Promise<{ runId: string; blocked: boolean } | null> {
  const crc = eventChecksum(0, tx.now, type, null, body);
  for (let i = 0; i < tries; i++) {
    const { rows } = await tx.q<{ run_id: string; blocked: boolean }>(
      s.deliverToOpenRun.with({
        workflowId: target.workflowId,
        runId: target.runId ?? null,
        parentRunId: target.parentRunId ?? null,
        now: tx.now,
        type,
        body,
        crc,
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
export async function deliverTo(
  tx: Tx,
  s: Statements,
  runId: string,
  type: EventType,
  step: number | null,
  body: Uint8Array | null,
): Promise<boolean> {
  const { rows } = await tx.q(
    s.deliverToRun.with({
      runId,
      now: tx.now,
      type,
      step,
      body,
      crc: eventChecksum(0, tx.now, type, step, body),
    }),
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
