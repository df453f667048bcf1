/**
 * @spool/sql-store — what Spool's SQL backends (SQLite, PostgreSQL) share, written once: the
 * stored-row types and their conversion into the Backend contract's records (with the integrity
 * checks every read must pass), row checksums, the start-conflict rule, the lease expression in
 * SQL, the integrity scan behind `spool doctor`, and the activation plan — what one commit writes,
 * as plain data — with the conflict texts, option checks, outbox and cursors around it. Each
 * backend keeps its transaction mechanics and its dialect's SQL. Not for applications: they use
 * the backends.
 */
export {
  type ActivationPlan,
  type ActivationRunRow,
  type NewWork,
  type PlannedActivityTask,
  type PlannedChild,
  type PlannedChildCancellation,
  type PlannedClose,
  type PlannedTimer,
  type PlanOptions,
  planActivation,
  planHistoryRows,
  planNewWork,
  planRunUpdate,
  type RunUpdate,
} from "./activation-plan.ts";
export { positiveIntOption } from "./backend-options.ts";
export * from "./commit-validation.ts";
export {
  activationConflict,
  completedActivityConflict,
  conflictNeedsFence,
  consumedInboxConflict,
  type GuardedRunState,
  inboxWaitingConflict,
  staleAttempt,
  staleTaskConflict,
} from "./conflicts.ts";
export { compareDueTimers, type FiredTimerRow } from "./due-timers.ts";
export * from "./integrity-scan.ts";
export * from "./lease-sql.ts";
export { type NewRun, type NewRunRows, type NewRunRowValues, newRunRows, startedRun } from "./new-run.ts";
export { Outbox } from "./outbox.ts";
export { type HistoryRowValues, historyRow, type InboxRowValues, inboxRow } from "./planned-rows.ts";
export * from "./row-checksum.ts";
export { decodeRunCursor, encodeRunCursor } from "./run-cursor.ts";
export * from "./stored-rows.ts";
