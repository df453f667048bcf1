/**
 * One-line summaries of what the CLI shows in a table cell: an event's payload (input, result,
 * signal payload, side-effect value, error), a pending activity. Decoded values, cut to a width,
 * so `spool history` tells what each step received and returned without `--json`.
 */
import type { HistoryEvent } from "@spool/core";

/** Width of a summary cell. */
export const SUMMARY_WIDTH = 60;

/** The payload of an event, summarised; "" for events without one. */
export function eventPayloadSummary(e: HistoryEvent, width = SUMMARY_WIDTH): string {
  switch (e.type) {
    case "WorkflowStarted":
    case "WorkflowContinued":
    case "ActivityScheduled":
    case "ChildStarted":
      return `input ${valueSummary(e.input, width - 6)}`;
    case "ActivityCompleted": {
      const head = `attempt ${e.attempt}: result `;
      return `${head}${valueSummary(e.result, width - head.length)}`;
    }
    case "ActivityFailed":
      return cut(`attempt ${e.attempt}, ${e.reason}: ${errorSummary(e.error)}`, width);
    case "WorkflowCompleted":
    case "ChildCompleted":
      return `result ${valueSummary(e.result, width - 7)}`;
    case "SignalReceived":
      return `payload ${valueSummary(e.payload, width - 8)}`;
    case "SideEffect":
      return `value ${valueSummary(e.value, width - 6)}`;
    case "WorkflowFailed":
    case "WorkflowCancelled":
    case "ChildFailed":
      return cut(errorSummary(e.error), width);
    case "CancelRequested":
      return cut(`reason ${e.reason}`, width);
    default:
      return "";
  }
}

/** `Name: message` of a (serialised) error. */
export function errorSummary(error: unknown): string {
  if (typeof error !== "object" || error === null) return String(error);
  const { name, message } = error as { name?: unknown; message?: unknown };
  return `${typeof name === "string" ? name : "Error"}: ${typeof message === "string" ? message : ""}`;
}

/** A value as compact JSON, cut to `width` characters. */
export function valueSummary(value: unknown, width = SUMMARY_WIDTH): string {
  let text: string;
  try {
    text =
      value === undefined
        ? "undefined"
        : (JSON.stringify(value, (_k, v) =>
            typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v,
          ) ?? String(value));
  } catch {
    text = String(value);
  }
  return cut(text, width);
}

/** Cuts `text` to `width` characters (one line), marking the cut with "…". */
export function cut(text: string, width = SUMMARY_WIDTH): string {
  const line = text.replace(/\s+/g, " ");
  return line.length <= width ? line : `${line.slice(0, Math.max(1, width - 1))}…`;
}
