/**
 * The requests and results of the `Backend`'s state transitions: starting, signalling and
 * cancelling runs, claiming workflow and activity tasks, the activation commit (events, new tasks,
 * timers, child runs, the run's close) and the block request, and the worker registry's records.
 */
import type { HistoryCorruptError } from "../errors.ts";
import type { EventType } from "../history/events.ts";
import type { ClosedStatus, InboxEvent, RawEvent, RunRecord, RunStatus } from "./run-records.ts";

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
