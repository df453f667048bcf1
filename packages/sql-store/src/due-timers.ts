/**
 * The order in which fired timers reach their runs' inboxes. A sweep's `DELETE ... RETURNING`
 * gives rows in no particular order; inbox order is consumption order, so the rows are sorted
 * first: by due time, then run, then step (a total order, the same on every backend).
 */

/** A fired timer as a sweep returns it. */
export interface FiredTimerRow {
  run_id: string;
  step: number;
  due_at: number;
}

/**
 * Compares two fired timers by due time, then run id (bytewise, as the databases sort it), then
 * step. Use with `Array.prototype.sort`.
 */
export function compareDueTimers(a: FiredTimerRow, b: FiredTimerRow): number {
  return a.due_at - b.due_at || (a.run_id < b.run_id ? -1 : a.run_id > b.run_id ? 1 : 0) || a.step - b.step;
}
