/**
 * Human-readable descriptions of history events, for error messages and the CLI.
 */
import type { HistoryEvent } from "../history/events.ts";

/** Describes an event as a step, e.g. `activity "payments.charge" (step 3)`. */
export function describeEvent(e: HistoryEvent | undefined): string {
  if (!e) return "nothing (end of history)";
  switch (e.type) {
    case "ActivityScheduled":
      return `activity "${e.name}" (step ${e.step})`;
    case "TimerStarted":
      return `timer of ${e.durationMs} ms (step ${e.step})`;
    case "ChildStarted":
      return `child workflow "${e.name}" id "${e.workflowId}" (step ${e.step})`;
    case "SideEffect":
      return `sideEffect (step ${e.step})`;
    case "PatchMarker":
      return `patched("${e.patchId}")`;
    case "ActivityCancelled":
    case "TimerCancelled":
    case "ChildCancelled":
      return `${e.type} of step ${e.step}`;
    case "WorkflowCompleted":
      return "workflow completion";
    case "WorkflowFailed":
      return "workflow failure";
    case "WorkflowCancelled":
      return "workflow cancellation";
    case "WorkflowContinued":
      return "continueAsNew";
    case "SignalReceived":
      return `signal "${e.name}"`;
    case "SignalRejected":
      return `rejected signal "${e.name}" (${e.reason})`;
    default:
      return "step" in e ? `${e.type} (step ${e.step})` : e.type;
  }
}
