/**
 * The backend's clock: the database server's. Leases, due times and timestamps are computed in
 * SQL (or from the clock read at BEGIN), so workers whose clocks disagree still agree on when a
 * lease ends or a timer is due. `backend.now()` is synchronous, though (the worker calls it to
 * compute retry and back-off times), so this module keeps an estimate of the database clock: the
 * local clock plus a skew measured at init and refreshed periodically.
 *
 * The estimate is deliberately a lower bound (it never runs ahead of the database): a time a
 * worker computes as `now() + delay` is then never later than the database's own `now + delay`,
 * so back-offs and retries never come due later than asked.
 *
 * The local side of the estimate is the monotonic clock (`performance.timeOrigin + performance.now()`),
 * not `Date.now()`: a step of this machine's wall clock (NTP, `date -s`) then moves nothing — the
 * skew is measured against a clock that does not step. (A step of the database server's own clock
 * moves every lease and due time, as it moves the server's notion of now; the next re-measure
 * follows it.)
 */

/** Milliseconds on a clock that never steps, near the epoch (the process's start time plus elapsed). */
function localMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Test-only hook: shifts the backend's clock by `offsetMs()` milliseconds, in SQL (added to the
 * database clock in every statement) and in {@link DbClock.now}. Tests move time forward with it
 * (`clock.advance(ms)` adds to the offset) without sleeping. Never set it in production.
 */
export interface PostgresTestClock {
  offsetMs(): number;
}

/** An estimate of the database clock (ms since the epoch), plus the test offset. */
export class DbClock {
  private skewMs = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly test: PostgresTestClock | undefined) {}

  /** The test offset (0 in production), as an integer. */
  offset(): number {
    if (this.test === undefined) return 0;
    const o = this.test.offsetMs();
    if (!Number.isFinite(o))
      throw new TypeError("PostgresBackend clock.offsetMs() must return a finite number");
    return Math.trunc(o);
  }

  /** The estimated database time, never ahead of it. */
  now(): number {
    return Math.floor(localMs() + this.skewMs) + this.offset();
  }

  /**
   * Measures the skew: `readDb` returns the database clock in ms (without the test offset). Takes
   * a few samples and keeps the tightest lower bound: at the local time the answer arrives, the
   * database clock is at least what it reported (minus 1 ms for the two truncations).
   */
  async measure(readDb: () => Promise<number>, samples = 3): Promise<void> {
    let best = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < samples; i++) {
      const db = await readDb();
      const after = localMs();
      best = Math.max(best, db - after - 1);
    }
    if (Number.isFinite(best)) this.skewMs = best;
  }

  /** Re-measures every `everyMs` in the background (errors are ignored: the old estimate stays). */
  refreshEvery(everyMs: number, readDb: () => Promise<number>): void {
    this.stop();
    if (everyMs <= 0) return;
    this.timer = setInterval(() => {
      this.measure(readDb, 1).catch(() => undefined);
    }, everyMs);
    this.timer.unref?.();
  }

  /** Stops the background refresh. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The current skew estimate (database clock minus the local monotonic clock), for diagnostics. */
  get skew(): number {
    return this.skewMs;
  }
}
