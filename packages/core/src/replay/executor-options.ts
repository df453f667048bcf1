/**
 * The engine's public vocabulary around an executor: its options, the statuses it reports, the
 * log lines workflow code writes, and the default history limits.
 */

/** A log line written by workflow code (only when not replaying). */
export interface WorkflowLogEntry {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown> | undefined;
  workflowId: string;
  runId: string;
  /** Workflow time of the line. */
  ts: number;
}

/** Options of a WorkflowExecutor. */
export interface ExecutorOptions {
  workflowId: string;
  runId: string;
  /** Also compare activity and child inputs and timer durations with history (default false). */
  strict?: boolean;
  /** Receives `ctx.log` lines written while not replaying. */
  log?: (entry: WorkflowLogEntry) => void;
  /** A warning is logged once the history reaches this many events (default 10,000). */
  historyWarnAt?: number;
  /** The run fails with a clear error at this many events (default 50,000): continue as new before. */
  historyLimit?: number;
  /** Microtask turns a workflow `await` may take before it counts as real I/O (default 10,000). */
  maxMicrotaskTurns?: number;
  /** Default start-to-close timeout of activities without one (default 5 minutes). */
  defaultActivityTimeoutMs?: number;
}

/** Run state as the engine sees it. */
export type ExecutorStatus = "running" | "completed" | "failed" | "cancelled" | "continued";

/** Default history limits. */
export const HISTORY_WARN_AT = 10_000;
export const HISTORY_LIMIT = 50_000;
