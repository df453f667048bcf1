/**
 * What a backend stores about a run and hands back: its status (and which statuses are open), its
 * record, the history events as stored and the inbound events waiting in its inbox. Bodies are
 * opaque encoded bytes; only ids, event types, step numbers and timestamps are plain columns.
 */
import type { EventType } from "../history/events.ts";

/** Run statuses. `blocked` is open: parked by a replay error until fixed code is deployed. */
export type RunStatus = "running" | "blocked" | "completed" | "failed" | "cancelled" | "continued";
/** Statuses of a finished run. */
export type ClosedStatus = "completed" | "failed" | "cancelled" | "continued";
/** True when the status is final. */
export function isClosedStatus(s: RunStatus): s is ClosedStatus {
  return s !== "running" && s !== "blocked";
}
/** True for an open run's status (`running`, `blocked`), given as stored text. */
export function isOpenStatus(status: string): boolean {
  return status === "running" || status === "blocked";
}

/**
 * An event as stored: position, time, type and step are plain columns; every other field is in
 * `body` (encoded), or `body` is null when the event has no other fields (TimerFired...).
 */
export interface RawEvent {
  seq: number;
  ts: number;
  type: EventType;
  step: number | null;
  body: Uint8Array | null;
}

/** An inbound event waiting in a run's inbox; it gets a `seq` when an activation consumes it. */
export interface InboxEvent {
  /** Position in the backend's inbox: activations consume inbox events in this order. */
  id: number;
  ts: number;
  type: EventType;
  step: number | null;
  body: Uint8Array | null;
}

/** What the backend knows about a run. */
export interface RunRecord {
  runId: string;
  workflowId: string;
  workflowName: string;
  status: RunStatus;
  version: string | null;
  createdAt: number;
  updatedAt: number;
  closedAt: number | null;
  /** Sequence number of the last history event (history positions are 1..lastSeq, no gaps). */
  lastSeq: number;
  parentRunId: string | null;
  parentWorkflowId: string | null;
  parentStep: number | null;
  continuedFromRunId: string | null;
  continuedToRunId: string | null;
  /** Encoded result of a completed run. */
  result: Uint8Array | null;
  /** Encoded SerializedError of a failed, cancelled or blocked run. */
  error: Uint8Array | null;
  /** For blocked runs: a one-line reason (also inside `error`). */
  blockedReason: string | null;
}
