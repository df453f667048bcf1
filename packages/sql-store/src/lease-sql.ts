/**
 * Activity attempt leases in SQL: `attemptLeaseMs` (in @spool/core) as an expression over an
 * activity task row's columns, so a claim computes each task's lease in the same statement.
 */

/** `attemptLeaseMs` in SQL, over the columns `heartbeat_timeout_ms` and `timeout_ms`. */
export function attemptLeaseSql(defaultParam: string): string {
  const base = `(CASE WHEN heartbeat_timeout_ms > 0 THEN heartbeat_timeout_ms WHEN timeout_ms > 0 THEN timeout_ms ELSE ${defaultParam} END)`;
  return `(${base} + MIN(1000, MAX(100, ${base} / 2)))`;
}
