/**
 * The step kinds, wired together: which module starts each step kind, withdraws each kind of
 * waiting, and handles each inbound event type. These three tables are the only places that
 * enumerate kinds; everything a kind means lives in its own module.
 */
import type { EventOf, HistoryEvent, InboundEventType } from "../../history/events.ts";
import type { Fiber, Pending } from "../fiber.ts";
import { deliverCancellation } from "../run-end.ts";
import type { StepOps, StepStart } from "../step-ops.ts";
import { activityCompleted, activityFailed, startActivity, withdrawActivity } from "./activity.ts";
import type { AnyStep } from "./any-step.ts";
import { childCompleted, childFailed, startChild, withdrawChild } from "./child.ts";
import { startContinueAsNew } from "./continue-as-new.ts";
import { startGroup, withdrawGroup } from "./group.ts";
import { startPatch } from "./patch.ts";
import { startSideEffect } from "./side-effect.ts";
import { signalReceived, startSignalWait, withdrawSignalWait } from "./signal-wait.ts";
import { startTimer, timerFired, withdrawTimer } from "./timer.ts";

/** Starts a yielded step: its outcome at once, null when the fiber now waits, or CONTINUED. */
export function startStep(fiber: Fiber, step: AnyStep, ops: StepOps): StepStart | Promise<StepStart> {
  switch (step.kind) {
    case "activity":
      return startActivity(fiber, step, ops);
    case "timer":
      return startTimer(fiber, step, ops);
    case "signal":
      return startSignalWait(fiber, step, ops);
    case "child":
      return startChild(fiber, step, ops);
    case "sideEffect":
      return startSideEffect(step, ops);
    case "patch":
      return startPatch(step, ops);
    case "all":
    case "race":
      return startGroup(fiber, step, ops);
    case "continueAsNew":
      return startContinueAsNew(step, ops);
  }
}

/** Withdraws what a fiber waits for, recording the cancellation command of its kind. */
export function withdrawPending(f: Fiber, p: Pending, ops: StepOps): void {
  switch (p.kind) {
    case "activity":
      withdrawActivity(p, ops);
      break;
    case "timer":
      withdrawTimer(p, ops);
      break;
    case "child":
      withdrawChild(p, ops);
      break;
    case "signal":
      withdrawSignalWait(f, p, ops);
      break;
    case "group":
      withdrawGroup(p, ops);
      break;
  }
}

/** A handler for every inbound event type, checked against the one list in events.ts. */
type InboundTable = { [T in InboundEventType]: (e: EventOf<T>, ops: StepOps) => void };

/** What each inbound event does to the run. */
const INBOUND: InboundTable = {
  ActivityCompleted: activityCompleted,
  ActivityFailed: activityFailed,
  TimerFired: timerFired,
  SignalReceived: signalReceived,
  SignalRejected: () => undefined, // recorded so it can be seen; never delivered
  ChildCompleted: childCompleted,
  ChildFailed: childFailed,
  ChildStartFailed: childFailed,
  CancelRequested: (e, ops) => deliverCancellation(e.reason, ops),
};

/**
 * Feeds one event to the run as an inbound event; false (and nothing done) when its type is not
 * an inbound one — a command where the code waits for a result, which the caller reports.
 */
export function feedInbound(e: HistoryEvent, ops: StepOps): boolean {
  // The table is keyed by the event's own type, so the handler takes this event.
  const handle = (INBOUND as Partial<Record<string, (e: HistoryEvent, ops: StepOps) => void>>)[e.type];
  if (handle === undefined) return false;
  handle(e, ops);
  return true;
}
