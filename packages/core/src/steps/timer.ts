/**
 * Durable timers on workflow time. They survive restarts, fire once, and a timer that fell due
 * while no worker ran fires as soon as one starts.
 */
import type { Duration } from "../duration.ts";
import { Step } from "./step.ts";

/** A step that completes when its timer fires. */
export class TimerStep extends Step<void> {
  readonly kind = "timer" as const;
  constructor(
    /** A duration from now (workflow time), or an absolute time. */
    readonly at: { duration: Duration } | { until: Date },
  ) {
    super();
  }
  describe(): string {
    return "duration" in this.at
      ? `timer ${String(this.at.duration)}`
      : `timer until ${this.at.until.toISOString()}`;
  }
}

/**
 * Waits for `duration` of workflow time: `yield* sleep("10m")`. Numbers are milliseconds.
 * @throws InvalidOptionsError (at the `yield*`) for an invalid duration.
 */
export function sleep(duration: Duration): TimerStep {
  return new TimerStep({ duration });
}

/** Waits until `date` (workflow time); returns at once if it has passed. */
export function sleepUntil(date: Date): TimerStep {
  return new TimerStep({ until: date });
}
