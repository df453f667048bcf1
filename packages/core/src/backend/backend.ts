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
import type { HistoryCorruptError } from "../errors.ts";
import type { EventType } from "../history/events.ts";
import type { IntegrityReport } from "./integrity.ts";

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

/**
 * How `startWorkflow` treats an id that already has a run. A start asks for a run with a given
 * input: "attach" and "startNewIfClosed" return an existing run only when it was started with the
 * same input (compared by {@link StartWorkflowRequest.inputHash}); a different input is a
 * WorkflowAlreadyStartedError naming the run. Runs created before schema version 3 stored no
 * fingerprint: their input counts as unknown and they are attached as before.
 */
export type IdConflictPolicy =
  /** Return the latest run with this id, open or closed, if its input matches (the default). */
  | "attach"
  /** Return the latest run with this id, open or closed, whatever its input. */
  | "useExisting"
  /** Throw WorkflowAlreadyStartedError if any run has this id. */
  | "fail"
  /** Attach to an open run (if its input matches); start a new run if the latest one is closed. */
  | "startNewIfClosed";

/** A request to start a run. */
export interface StartWorkflowRequest {
  workflowId: string;
  workflowName: string;
  version: string | null;
  /** Encoded body of the WorkflowStarted event (history event #1). */
  startedEventBody: Uint8Array;
  onConflict: IdConflictPolicy;
  /**
   * `inputFingerprint` of the encoded input: stored with a new run, compared with an existing
   * run's on attach. Omitted or null: unknown (stored as unknown, never a conflict).
   */
  inputHash?: string | null;
}

/** The outcome of `startWorkflow`. */
export interface StartWorkflowResult {
  runId: string;
  /** False when an existing run was returned (attach). */
  created: boolean;
  /** The existing run's workflow name when attached (the caller checks it matches). */
  workflowName: string;
}

/** A request to deliver a signal. */
export interface SignalRequest {
  workflowId: string;
  /** Target a specific run; by default the open run with this workflow id. */
  runId?: string;
  /** Encoded body of the SignalReceived event (name and payload). */
  body: Uint8Array;
  /**
   * De-duplication key. A signal whose key the run has already received is not delivered again:
   * the call succeeds with that run's id and writes nothing. Keys are kept for the run's lifetime
   * (a run continued as new starts with none).
   */
  requestId?: string;
}

/** A request to cancel a run. */
export interface CancelRequest {
  workflowId: string;
  runId?: string;
  /** Encoded body of the CancelRequested event (the reason). */
  body: Uint8Array;
}

/** The outcome of a cancel request. */
export interface CancelResult {
  /** `requested` when recorded; `alreadyClosed` when the run had finished (a no-op). */
  outcome: "requested" | "alreadyClosed";
  runId: string;
  status: RunStatus;
}

/** A workflow task handed to one worker under a lease. */
export interface ClaimedWorkflowTask {
  run: RunRecord;
  /** Fencing token: the commit must present it; a newer claim invalidates older tokens. */
  fence: number;
  /** Unconsumed inbound events, in the order activations must consume them. */
  inbox: InboxEvent[];
  /**
   * Set when an inbox row failed its checksum: `inbox` is then empty and the worker parks the run
   * with this error. (Throwing from the claim instead would leave the run leased and unexplained.)
   */
  inboxError?: HistoryCorruptError;
}

/** An activity task to create in an activation. */
export interface NewActivityTask {
  step: number;
  name: string;
  /** Encoded input. */
  input: Uint8Array;
  /** Encoded retry policy etc. as recorded; the worker decodes it. */
  options: Uint8Array;
  /** Attempt timeout (start-to-close) in ms; the lease of an attempt is derived from it. */
  timeoutMs: number;
  /** 0 = no heartbeat timeout. */
  heartbeatTimeoutMs: number;
}

/** A timer to create: fires (as a TimerFired inbox event) at `dueAt`. */
export interface NewTimer {
  step: number;
  dueAt: number;
}

/** A child run to create in an activation. */
export interface NewChildRun {
  step: number;
  workflowId: string;
  workflowName: string;
  version: string | null;
  startedEventBody: Uint8Array;
  /** `inputFingerprint` of the child's encoded input, stored with its run (optional). */
  inputHash?: string | null;
}

/** A cancellation to deliver to a child run. */
export interface ChildCancellation {
  step: number;
  workflowId: string;
  /** Encoded CancelRequested body for the child's inbox. */
  body: Uint8Array;
}

/** How an activation ends the run, when it does. */
export interface RunClose {
  status: ClosedStatus;
  /** Encoded result (completed). */
  result?: Uint8Array;
  /** Encoded SerializedError (failed, cancelled). */
  error?: Uint8Array;
  /** For continued: the next run (same workflow id, fresh history). */
  continueAsNew?: {
    workflowName: string;
    version: string | null;
    startedEventBody: Uint8Array;
    /** `inputFingerprint` of the next run's encoded input (optional). */
    inputHash?: string | null;
    /**
     * Encoded SignalReceived bodies the old run had received but not consumed; they go first into
     * the new run's inbox, before any inbox events the old run never saw.
     */
    carriedSignals?: Uint8Array[];
  };
  /**
   * For a child run: the event to put in the parent's inbox (ChildCompleted or ChildFailed with
   * the parent's step), encoded by the worker since the backend never encodes payloads.
   */
  parentEvent?: { type: EventType; body: Uint8Array | null };
}

/**
 * One activation: everything a workflow task decided, committed in one transaction, guarded by
 * `expectedLastSeq` (the run's last sequence number when the worker read it).
 */
export interface ActivationCommit {
  runId: string;
  /** Fencing token of the claimed workflow task; omitted on the eager path (seq guard only). */
  fence?: number;
  expectedLastSeq: number;
  /** New history events, seq expectedLastSeq+1, +2, ... in order. */
  events: RawEvent[];
  /** Inbox ids consumed by this activation (their events are among `events`). */
  consumedInbox: number[];
  activities: NewActivityTask[];
  /** Steps whose activity tasks are withdrawn (aborting a running attempt). */
  cancelActivities: number[];
  timers: NewTimer[];
  cancelTimers: number[];
  children: NewChildRun[];
  cancelChildren: ChildCancellation[];
  close?: RunClose;
  /**
   * Eager execution: claim the activity tasks created here (of the names this worker runs) for
   * this worker in the same transaction, so it can run them at once without another round trip.
   */
  eagerActivities?: { workerId: string; maxTasks: number; activityNames: string[] };
  /**
   * Eager completion: the activity task whose ActivityCompleted/ActivityFailed event is among
   * `events`; it is removed in the same transaction if its fence still holds.
   */
  completedActivity?: { taskId: string; fence: number };
  /**
   * Signals the run's code holds in its buffer after this activation (received, recorded, not yet
   * taken by `signal.wait()`). The backend stores it with the run and counts it, with the signals
   * still in the inbox, against its cap on unconsumed signals at each delivery. Omitted: unchanged.
   */
  bufferedSignals?: number;
}

/** A commit of a run that could not be replayed: no events, the run is parked until retried. */
export interface BlockRequest {
  runId: string;
  fence: number;
  /** One-line reason, shown by describe() and the CLI. */
  reason: string;
  /** Encoded SerializedError. */
  error: Uint8Array;
  /** When to offer the run to a worker again (back-off). */
  retryAt: number;
}

/** The outcome of a successful activation. */
export interface ActivationResult {
  /** New last sequence number. */
  lastSeq: number;
  /** Activity tasks claimed eagerly for this worker (see ActivationCommit.eagerActivities). */
  claimedActivities: ClaimedActivityTask[];
  /** Run ids created (child runs, continue-as-new). */
  createdRuns: { step: number | null; runId: string; workflowId: string }[];
}

/** An activity attempt handed to one worker under a lease. */
export interface ClaimedActivityTask {
  taskId: string;
  runId: string;
  workflowId: string;
  step: number;
  name: string;
  input: Uint8Array;
  options: Uint8Array;
  /**
   * 1 for the first attempt; every claim (including reclaim after a lost lease) counts, except
   * one given back unstarted by `releaseActivityTask`. The worker enforces `maxAttempts` on it.
   */
  attempt: number;
  fence: number;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
  scheduledAt: number;
  /** When the lease ends unless extended by a heartbeat. */
  leaseExpiresAt: number;
  /**
   * Set when the stored task failed its checksum (its input or name was damaged on disk): the
   * attempt must not run the activity on that input. The worker fails the step for good with this
   * error (reason `validation`), so the run moves on — its code sees an ActivityFailure — instead of
   * the damaged row failing every claim of its activity name.
   */
  corruption?: HistoryCorruptError;
}

/** Identifies one attempt: stale tokens are rejected with ConflictError. */
export interface ActivityAttemptRef {
  taskId: string;
  fence: number;
}

/**
 * A worker as it registers itself in the store's worker registry (Worker.start). The registry lets
 * live workers tell that another worker died, so its leases are released at once rather than when
 * they run out, and tells operators which names the live workers host.
 */
export interface WorkerRegistration {
  /** The id the worker claims tasks with (`lease_owner` of the tasks it holds). */
  workerId: string;
  /**
   * New for every Worker object. Registering an id whose row carries another incarnation means
   * the id's previous process is gone (or is a duplicate): the leases it held are released.
   */
  incarnation: string;
  workflowNames: string[];
  activityNames: string[];
  /** How often the worker heartbeats (ms). */
  heartbeatIntervalMs: number;
  /** After this long without a heartbeat (ms, on the backend's clock) the worker is presumed dead. */
  deadAfterMs: number;
}

/** A registered worker, as the registry lists it (`backend.inspect.workers()`). */
export interface WorkerInfo {
  workerId: string;
  workflowNames: string[];
  activityNames: string[];
  /** Process id and host name of the worker's process, when the backend records them. */
  pid: number | null;
  host: string | null;
  startedAt: number;
  heartbeatAt: number;
  /**
   * `live`: heartbeating (and, on SQLite on the same machine, its process exists); `dead`: presumed
   * dead (its leases were released, or will be by the next sweep); `stopped`: shut down cleanly.
   */
  status: "live" | "dead" | "stopped";
}

/** What one sweep for dead workers released. */
export interface DeadWorkerSweep {
  /** Workers newly found dead by this sweep. */
  workers: string[];
  /** Workflow and activity task leases they held, now claimable (their fences moved on). */
  workflowTasks: number;
  activityTasks: number;
}

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

/** Filters for listing runs. All are optional and combine with AND. */
export interface RunFilter {
  status?: RunStatus | RunStatus[];
  workflowName?: string;
  workflowId?: string;
  /** Only runs whose workflow id starts with this. */
  workflowIdPrefix?: string;
  parentRunId?: string;
  createdAfter?: number;
  createdBefore?: number;
}

/** A page of runs, newest first; pass `nextCursor` back to get the next page. */
export interface RunPage {
  runs: RunRecord[];
  nextCursor: string | null;
}

/** Counts for monitoring. */
export interface BackendStats {
  runsByStatus: Partial<Record<RunStatus, number>>;
  readyWorkflowTasks: number;
  readyActivityTasks: number;
  runningActivityTasks: number;
  /**
   * Activity tasks waiting out a retry back-off after a failed attempt (not yet due). A number
   * that keeps growing means steps that fail again and again; `spool describe` shows their errors.
   */
  backoffActivityTasks: number;
  pendingTimers: number;
}

/**
 * An activity step of an open run that has not finished: what its latest attempt did and when
 * the next one runs. `running`: an attempt holds a live lease. `backoff`: the last attempt failed
 * and the next waits until `nextAttemptAt`. `waiting`: claimable since `nextAttemptAt` (never
 * attempted, retry due, or a lost attempt's lease ran out) and no worker has claimed it — a long
 * wait means no running worker has this activity's code, or every one is busy.
 */
export interface PendingActivity {
  runId: string;
  step: number;
  name: string;
  /** Attempts made so far (0 before the first claim); a running attempt is included. */
  attempt: number;
  state: "running" | "backoff" | "waiting";
  /** Encoded SerializedError of the last failed attempt, or null. */
  lastError: Uint8Array | null;
  /** When the next attempt may start (`backoff`: in the future; `waiting`: already past); null while running. */
  nextAttemptAt: number | null;
  /** When the running attempt's lease runs out; null unless running. */
  leaseExpiresAt: number | null;
  scheduledAt: number;
}

/** Ready work of one name that nobody has claimed since `oldestReadyAt`. */
export interface WaitingWork {
  kind: "workflow" | "activity";
  name: string;
  count: number;
  oldestReadyAt: number;
}

/** Read-only inspection of a backend. */
export interface BackendInspector {
  /**
   * Ready, unclaimed tasks that became ready at or before `readyBefore`, grouped by kind and name.
   * Workers use it to warn about work no running worker has the code for.
   */
  waitingWork(readyBefore: number): Promise<WaitingWork[]>;
  /**
   * The worker registry: live workers first, then dead and stopped ones (kept about a day), each
   * with the workflow and activity names it registered.
   */
  workers(): Promise<WorkerInfo[]>;
  /** The run, or null. */
  getRun(runId: string): Promise<RunRecord | null>;
  /** The latest run with this workflow id (open if there is one), or null. */
  getLatestRun(workflowId: string): Promise<RunRecord | null>;
  /** Runs matching the filter, newest first, `limit` at most (default 100). */
  listRuns(filter?: RunFilter, page?: { limit?: number; cursor?: string | null }): Promise<RunPage>;
  /** The whole history of a run (seq > afterSeq). */
  getHistory(runId: string, afterSeq?: number): Promise<RawEvent[]>;
  /** Queue and status counts. */
  stats(): Promise<BackendStats>;
  /**
   * The unfinished activity steps of these runs, by run id then step. With `perRun`, at most that
   * many per run: those with the most attempts (a listing's summary of a run with a wide fan-out).
   */
  pendingActivities(runIds: readonly string[], options?: { perRun?: number }): Promise<PendingActivity[]>;
}
