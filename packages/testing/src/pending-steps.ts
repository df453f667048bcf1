/**
 * What a run is waiting for, read from its history: activities scheduled and not finished, timers
 * started and not fired, children started and not finished. Used by the world simulator to know
 * which inbound events may come next, and by the test environment to explain a stalled run.
 */
import { describeEvent, type EventOf, type HistoryEvent, isInbound } from "@spool/core";

/** An activity that was scheduled and has no result yet. */
export type PendingActivity = EventOf<"ActivityScheduled">;
/** A timer that was started and has not fired or been cancelled. */
export type PendingTimer = EventOf<"TimerStarted">;
/** A child workflow that was started and has not finished. */
export type PendingChild = EventOf<"ChildStarted">;

/** The open steps of one run, updated event by event. */
export class PendingSteps {
  readonly activities = new Map<number, PendingActivity>();
  readonly timers = new Map<number, PendingTimer>();
  readonly children = new Map<number, PendingChild>();
  closed = false;
  last: HistoryEvent | undefined;

  /** Builds the state of a whole history. */
  static of(history: readonly HistoryEvent[]): PendingSteps {
    const p = new PendingSteps();
    for (const e of history) p.observe(e);
    return p;
  }

  /** Applies one event. */
  observe(e: HistoryEvent): void {
    this.last = e;
    switch (e.type) {
      case "ActivityScheduled":
        this.activities.set(e.step, e);
        break;
      case "ActivityCompleted":
      case "ActivityFailed":
      case "ActivityCancelled":
        this.activities.delete(e.step);
        break;
      case "TimerStarted":
        this.timers.set(e.step, e);
        break;
      case "TimerFired":
      case "TimerCancelled":
        this.timers.delete(e.step);
        break;
      case "ChildStarted":
        this.children.set(e.step, e);
        break;
      case "ChildCompleted":
      case "ChildFailed":
      case "ChildStartFailed":
      case "ChildCancelled":
        this.children.delete(e.step);
        break;
      case "WorkflowCompleted":
      case "WorkflowFailed":
      case "WorkflowCancelled":
      case "WorkflowContinued":
        this.closed = true;
        this.activities.clear();
        this.timers.clear();
        this.children.clear();
        break;
      default:
        break;
    }
  }

  /** True when nothing recorded can wake the run (it waits for a signal, or has ended). */
  get idle(): boolean {
    return this.activities.size === 0 && this.timers.size === 0 && this.children.size === 0;
  }

  /** One line per open step, for error messages. */
  describe(now?: number): string[] {
    const out: string[] = [];
    for (const a of this.activities.values()) out.push(`${describeEvent(a)}, scheduled ${iso(a.ts)}`);
    for (const t of this.timers.values()) {
      const due = now !== undefined ? ` (${t.dueAt <= now ? "due" : `due in ${t.dueAt - now} ms`})` : "";
      out.push(`${describeEvent(t)}, due ${iso(t.dueAt)}${due}`);
    }
    for (const c of this.children.values()) out.push(describeEvent(c));
    if (out.length === 0 && !this.closed)
      out.push("nothing recorded: the run waits for a signal (or a cancellation)");
    return out;
  }
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : String(ms);
}

/** The commands of a history (what the code asked for), without the inbound events. */
export function commandsOf(history: readonly HistoryEvent[]): HistoryEvent[] {
  return history.filter((e) => !isInbound(e));
}
