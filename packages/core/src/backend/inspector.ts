/**
 * Read-only inspection of a backend, for the CLI, a dashboard and the worker's unhosted-work
 * warning: runs by filter, histories, queue counts, pending activity steps and the worker registry.
 * Kept apart from `Backend`, whose methods change state.
 */
import type { WorkerInfo } from "./requests.ts";
import type { RawEvent, RunRecord, RunStatus } from "./run-records.ts";

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
