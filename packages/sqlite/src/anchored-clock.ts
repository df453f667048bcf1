/**
 * The SQLite backend's default clock: wall time as of the last anchor, advanced by the machine's
 * monotonic clock. A wall-clock step (NTP `makestep`, an operator's `date -s`, a VM resumed with a
 * corrected clock) moves `Date.now()` but not the monotonic clock, so it shows as a change of the
 * offset between the two; `stepped()` reports it, and the backend then moves every pending time in
 * the database by the step before adopting it (see clock-sync.ts), so a
 * `sleep("5s")` still takes five seconds and a lease still lasts its length.
 *
 * The monotonic clock is `process.hrtime` (CLOCK_MONOTONIC on Linux): one clock for every process
 * of the machine since boot, so processes sharing a file agree on the offset and each step is seen
 * (and applied once) by all of them.
 */

/** Offsets that differ by more than this are a step, not jitter (NTP slews smaller corrections). */
export const STEP_MS = 500;

/** Milliseconds on the machine's monotonic clock (since boot on Linux). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

export class AnchoredClock {
  /** Wall time minus monotonic time, as adopted: every time this clock reports is `mono + offset`. */
  offset: number;
  /**
   * This process's own wall-minus-monotonic offset when it last looked: a step is a change of it.
   * (Kept apart from `offset`, which follows the file's anchor: a process adopts steps another
   * process applied, and only the steps it sees itself are its own to apply.)
   */
  wallBaseline: number;

  constructor() {
    this.offset = this.wallOffset();
    this.wallBaseline = this.offset;
  }

  /** Milliseconds since the epoch, on the adopted anchor. */
  now(): number {
    return monotonicMs() + this.offset;
  }

  /** The offset the wall clock shows right now. */
  wallOffset(): number {
    return Date.now() - monotonicMs();
  }

  /** How far this process's wall clock stepped since it last looked (0 when it did not). */
  localStep(): number {
    const step = this.wallOffset() - this.wallBaseline;
    return Math.abs(step) > STEP_MS ? step : 0;
  }
}
