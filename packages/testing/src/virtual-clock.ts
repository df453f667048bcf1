/**
 * The virtual clock of a test environment: the backend reads every lease, due time and timestamp
 * from it, so a `sleep("30d")` is a number moving, not a month passing. It only moves forward.
 */
import { InvalidOptionsError } from "@spool/core";

/** A clock that moves only when told to. */
export class VirtualClock {
  private t: number;

  constructor(start: number) {
    if (!Number.isFinite(start)) throw new InvalidOptionsError(`virtual clock: invalid start time ${start}`);
    this.t = start;
  }

  /** Milliseconds since the epoch, virtual. */
  now(): number {
    return this.t;
  }

  /** Moves to `t` if it is later; returns true when the clock moved. */
  moveTo(t: number): boolean {
    if (!(t > this.t)) return false;
    this.t = t;
    return true;
  }
}

/** Parses a start time given as a number, Date or ISO string. */
export function toEpochMs(v: number | Date | string): number {
  const ms = typeof v === "number" ? v : typeof v === "string" ? Date.parse(v) : v.getTime();
  if (!Number.isFinite(ms)) throw new InvalidOptionsError(`createTestEnv: invalid startTime ${String(v)}`);
  return ms;
}
