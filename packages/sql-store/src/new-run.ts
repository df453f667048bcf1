/**
 * What creating a run writes, built once for every way a run begins (a client start, a child
 * start, continue-as-new): the `runs` row, its WorkflowStarted event (#1) and — implied — a
 * workflow task ready at the same instant.
 */

import type { StartWorkflowRequest } from "@spool/core";
import { type HistoryRowValues, historyRow } from "./planned-rows.ts";
import { runChecksum } from "./row-checksum.ts";

/** A run to create, as its starter describes it. */
export interface NewRun {
  runId: string;
  workflowId: string;
  workflowName: string;
  version: string | null;
  /** The encoded body of its WorkflowStarted event. */
  startedEventBody: Uint8Array;
  parentRunId: string | null;
  parentWorkflowId: string | null;
  parentStep: number | null;
  /** The run this one continues (continue-as-new), or null. */
  continuedFrom: string | null;
  /** `inputFingerprint` of the run's input, or null when unknown. */
  inputHash: string | null;
}

/**
 * The `runs` row of a new run (status running, last seq 1, created and updated at `now`). Its keys
 * are exactly the named parameters of an INSERT, so SQLite can bind the object as it is.
 */
export interface NewRunRowValues {
  runId: string;
  workflowId: string;
  workflowName: string;
  version: string | null;
  now: number;
  parentRunId: string | null;
  parentWorkflowId: string | null;
  parentStep: number | null;
  continuedFrom: string | null;
  inputHash: string | null;
  /** {@link runChecksum} of a running run with no result or error. */
  crc: number;
}

/** Everything a new run writes; its workflow task is ready at `run.now`. */
export interface NewRunRows {
  run: NewRunRowValues;
  /** WorkflowStarted, event #1. */
  started: HistoryRowValues;
}

/**
 * The rows that create `run` at `now`.
 * @example
 * ```ts
 * const rows = newRunRows({ runId, workflowId, workflowName, version: null, startedEventBody,
 *   parentRunId: null, parentWorkflowId: null, parentStep: null, continuedFrom: null, inputHash: null }, now);
 * ```
 */
export function newRunRows(run: NewRun, now: number): NewRunRows {
  return {
    run: {
      runId: run.runId,
      workflowId: run.workflowId,
      workflowName: run.workflowName,
      version: run.version,
      now,
      parentRunId: run.parentRunId,
      parentWorkflowId: run.parentWorkflowId,
      parentStep: run.parentStep,
      continuedFrom: run.continuedFrom,
      inputHash: run.inputHash,
      crc: runChecksum(run.runId, "running", null, null),
    },
    started: historyRow(1, now, "WorkflowStarted", null, run.startedEventBody),
  };
}

/** The run a client start creates: no parent, not continued from another run. */
export function startedRun(req: StartWorkflowRequest, runId: string): NewRun {
  return {
    runId,
    workflowId: req.workflowId,
    workflowName: req.workflowName,
    version: req.version,
    startedEventBody: req.startedEventBody,
    parentRunId: null,
    parentWorkflowId: null,
    parentStep: null,
    continuedFrom: null,
    inputHash: req.inputHash ?? null,
  };
}
