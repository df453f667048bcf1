/**
 * The storage contract. A backend stores runs, their append-only histories, an inbox of inbound
 * events per run, and three queues (workflow tasks, activity tasks, timers). Every method is one
 * atomic state transition: it happens whole or not at all. Workers and clients see only this
 * interface and are handed an instance; nothing here knows about workflow code.
 *
 * Payloads arrive already encoded (msgpack, then the PayloadCodec): a backend stores opaque bytes
 * and never decodes them, so encryption at rest covers everything but ids, names of event types,
 * step numbers and timestamps.
 *
 * Errors: {@link ConflictError} when an optimistic guard fails (expected sequence number, fencing
 * token), {@link RunNotFoundError} for unknown or closed runs where an open one is needed,
 * {@link WorkflowAlreadyStartedError} for start conflicts, {@link StorageFullError} when the store is
 * full, {@link HistoryCorruptError} when a stored row fails its checksum.
 */
import type { EventType } from "../history/events.ts";
import type { BackendInspector } from "./inspector.ts";
import type { IntegrityReport } from "./integrity.ts";
import type {
  ActivationCommit,
  ActivationResult,
  ActivityAttemptRef,
  BlockRequest,
  CancelRequest,
  CancelResult,
  ClaimedActivityTask,
  ClaimedWorkflowTask,
  DeadWorkerSweep,
  SignalRequest,
  StartWorkflowRequest,
  StartWorkflowResult,
  WorkerRegistration,
} from "./requests.ts";
import type { InboxEvent, RawEvent } from "./run-records.ts";

// The contract's types live beside it, by role; they are re-exported here so that the Backend
// interface and everything it speaks of are imported from one module.
export type {
  BackendInspector,
  BackendStats,
  PendingActivity,
  RunFilter,
  RunPage,
  WaitingWork,
} from "./inspector.ts";
export type {
  ActivationCommit,
  ActivationResult,
  ActivityAttemptRef,
  BlockRequest,
  CancelRequest,
  CancelResult,
  ChildCancellation,
  ClaimedActivityTask,
  ClaimedWorkflowTask,
  DeadWorkerSweep,
  IdConflictPolicy,
  NewActivityTask,
  NewChildRun,
  NewTimer,
  RunClose,
  SignalRequest,
  StartWorkflowRequest,
  StartWorkflowResult,
  WorkerInfo,
  WorkerRegistration,
} from "./requests.ts";
export {
  type ClosedStatus,
  type InboxEvent,
  isClosedStatus,
  isOpenStatus,
  type RawEvent,
  type RunRecord,
  type RunStatus,
} from "./run-records.ts";

/** Notifications a backend emits to listeners in this process (and, for PostgreSQL, across machines). */
export type BackendNotification =
  | { kind: "workflow-task" }
  | { kind: "activity-task" }
  | { kind: "timer" }
  | { kind: "activity-cancelled"; taskId: string }
  | { kind: "run-closed"; runId: string; workflowId: string };

/**
 * The storage contract the worker and client run on. One method per state transition.
 */
export interface Backend {
  /** Prepares storage (migrations); idempotent, safe to call from several processes. */
  init(): Promise<void>;
  /** Releases connections and timers. Calls after close() reject. */
  close(): Promise<void>;

  // ── Client side ──────────────────────────────────────────────────────────────────────────
  /** Creates a run with its WorkflowStarted event and a ready workflow task, or attaches per policy. */
  startWorkflow(req: StartWorkflowRequest): Promise<StartWorkflowResult>;
  /**
   * Appends a SignalReceived event to the open run's inbox and readies its workflow task; with a
   * `requestId` the run already received, does nothing and returns the run's id.
   */
  signalWorkflow(req: SignalRequest): Promise<{ runId: string }>;
  /**
   * Starts the run if no open run has this id, then signals it, in one transaction (with a
   * `requestId` that run already received, the signal is not delivered again).
   */
  signalWithStart(
    start: StartWorkflowRequest,
    signalBody: Uint8Array,
    options?: { requestId?: string },
  ): Promise<StartWorkflowResult>;
  /** Appends CancelRequested to the open run's inbox; a no-op that says so for a closed run. */
  requestCancel(req: CancelRequest): Promise<CancelResult>;

  // ── Workflow tasks ───────────────────────────────────────────────────────────────────────
  /** Leases one ready workflow task of the given workflow names (oldest first), or returns null. */
  claimWorkflowTask(req: {
    workerId: string;
    workflowNames: string[];
    leaseMs: number;
  }): Promise<ClaimedWorkflowTask | null>;
  /** Reads history events with seq > afterSeq, verifying checksums. */
  getHistory(runId: string, afterSeq?: number): Promise<RawEvent[]>;
  /** Reads the run's unconsumed inbox events (the eager path uses this to stay in order). */
  getInbox(runId: string): Promise<InboxEvent[]>;
  /** Commits one activation atomically; ConflictError if the seq or fence guard fails. */
  commitActivation(req: ActivationCommit): Promise<ActivationResult>;
  /** Parks a run as blocked (replay error) without touching its history. */
  blockRun(req: BlockRequest): Promise<void>;
  /** Gives a claimed workflow task back at once (shutdown) or at `retryAt`. */
  releaseWorkflowTask(req: { runId: string; fence: number; retryAt?: number }): Promise<void>;
  /** Makes blocked runs of these workflows ready now (a worker with new code has started). */
  retryBlockedRuns(workflowNames: string[]): Promise<number>;

  // ── Activity tasks ───────────────────────────────────────────────────────────────────────
  /** Leases one ready activity task of the given names, incrementing its attempt, or returns null. */
  claimActivityTask(req: { workerId: string; activityNames: string[] }): Promise<ClaimedActivityTask | null>;
  /** Extends the attempt's lease; ConflictError if the attempt is stale or was cancelled. */
  heartbeatActivityTask(ref: ActivityAttemptRef, leaseMs: number): Promise<{ leaseExpiresAt: number }>;
  /**
   * Ends the task: puts the ActivityCompleted/ActivityFailed event in the run's inbox and removes
   * the task, if the fence still holds (ConflictError otherwise; nothing is written).
   */
  completeActivityTask(ref: ActivityAttemptRef, event: { type: EventType; body: Uint8Array }): Promise<void>;
  /** Schedules another attempt at `retryAt` after a failed one; ConflictError if stale. */
  retryActivityTask(ref: ActivityAttemptRef, retryAt: number, lastError: Uint8Array): Promise<void>;
  /**
   * Gives back a claimed attempt that never started (its worker began draining first): ready at
   * once and not counted, so the next claim has the same attempt number. ConflictError if stale.
   */
  releaseActivityTask(ref: ActivityAttemptRef): Promise<void>;

  // ── Timers ───────────────────────────────────────────────────────────────────────────────
  /** Moves up to `limit` timers due at or before now into their runs' inboxes as TimerFired. */
  fireDueTimers(limit: number): Promise<number>;
  /** The earliest time anything becomes ready (timer due, retry back-off, lease expiry), or null. */
  nextWakeAt(): Promise<number | null>;

  // ── Worker liveness ─────────────────────────────────────────────────────────────────────
  /**
   * Records a worker in the registry (or refreshes its row), with what it hosts and how it proves
   * it is alive. When the row held another incarnation of the same id, the leases that id held
   * are released first (that process is gone).
   */
  registerWorker(reg: WorkerRegistration): Promise<void>;
  /**
   * Records that the worker is alive. Returns false when the registry had presumed it dead (its
   * leases were released) or has no row for it: the worker should register again.
   */
  heartbeatWorker(workerId: string): Promise<boolean>;
  /**
   * Finds registered workers that died — on SQLite, a process on this machine that no longer exists
   * (checked at once, by process id and start time); everywhere, a worker whose last heartbeat is
   * older than its `deadAfterMs` — marks them dead and releases every lease they held: the tasks
   * become claimable now and their fences move on, so a late commit or completion from the
   * presumed-dead worker is rejected. Each death is released once, by whichever worker sweeps first.
   */
  releaseDeadWorkers(): Promise<DeadWorkerSweep>;
  /** Marks the worker stopped (clean shutdown). Its leases, if any are left, run out as usual. */
  unregisterWorker(workerId: string): Promise<void>;

  // ── Wake-ups ─────────────────────────────────────────────────────────────────────────────
  /** Subscribes to notifications; returns the unsubscribe function. */
  subscribe(listener: (n: BackendNotification) => void): () => void;
  /**
   * The backend's clock (ms since epoch): leases and due times are measured on it. It may be an
   * estimate (PostgreSQL: the local clock corrected by a measured skew) that never runs ahead of
   * the store's own clock.
   */
  now(): number;
  /**
   * True when notifications reach every process that shares this store (PostgreSQL NOTIFY);
   * false when other processes must poll (SQLite file shared by several processes).
   */
  readonly notifiesAcrossProcesses: boolean;

  /** Read-only inspection (CLI, dashboard, handle.describe()). */
  readonly inspect: BackendInspector;

  /**
   * Checks every stored row's checksum (history, inbox, runs, activity tasks) and what the
   * storage engine can check itself; read-only (`spool doctor`). Optional: a backend without it
   * cannot be checked by the CLI.
   */
  checkIntegrity?(): Promise<IntegrityReport>;
}
