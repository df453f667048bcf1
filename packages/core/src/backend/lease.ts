/**
 * Activity attempt leases. A lease must outlast the attempt's own timeout by a little, so the
 * worker that owns an attempt reports its timeout (and its retry) itself before another worker may
 * take the task over; only a worker that died leaves the lease to run out.
 */

/** The grace added to an attempt's timeout: half of it, at least 100 ms, at most 1 s. */
export function leaseGraceMs(baseMs: number): number {
  return Math.min(1000, Math.max(100, Math.floor(baseMs / 2)));
}

/**
 * The lease of an activity attempt: the heartbeat timeout when set (each heartbeat renews it),
 * else the attempt timeout, else `defaultMs`; plus the grace.
 */
export function attemptLeaseMs(timeoutMs: number, heartbeatTimeoutMs: number, defaultMs: number): number {
  const base = heartbeatTimeoutMs > 0 ? heartbeatTimeoutMs : timeoutMs > 0 ? timeoutMs : defaultMs;
  return base + leaseGraceMs(base);
}
