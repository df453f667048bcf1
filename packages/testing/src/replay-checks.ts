/**
 * The laws a recorded history must satisfy, checked against the pure engine:
 *
 * - **crash at any point**: a fresh executor replaying any prefix of the history produces exactly
 *   the commands recorded next (a worker that crashed there and replays must carry on the same way);
 * - **same result**: replaying the whole history ends with the recorded result;
 * - **live again**: feeding the recorded inbound events to a fresh run, activation by activation
 *   and with different microtask timing in between, produces the same events.
 *
 * Each check returns the first divergence as data, or null.
 */
import {
  describeEvent,
  encodeValue,
  type HistoryEvent,
  isInbound,
  type NewInboundEvent,
  NonDeterminismError,
  RUN_LEVEL_EVENT_TYPES,
  WorkflowAwaitError,
  type WorkflowDefinition,
  WorkflowExecutor,
} from "@spool/core";
import { formatValue } from "./format-value.ts";
import { type TrapWindow, withTraps } from "./nondeterminism-traps.ts";

/** What went wrong when re-running recorded history. */
export interface Divergence {
  /** `divergence`: different commands; `result`: same commands, different result; `await`: WorkflowAwaitError; `code-error`: the code threw. */
  kind: "divergence" | "result" | "await" | "code-error";
  /** The history position where it was noticed (when known). */
  seq: number | undefined;
  step: number | undefined;
  /** What history recorded there. */
  recorded: string;
  /** What the code produced now. */
  produced: string;
  /** The engine's error, when it threw one. */
  error: unknown;
}

/** How to run the engine for a check. */
export interface ReplayCheckOptions {
  workflowId: string;
  runId: string;
  strict: boolean;
  traps: TrapWindow | null;
}

function newExecutor(def: WorkflowDefinition, o: ReplayCheckOptions): WorkflowExecutor {
  return new WorkflowExecutor(def, { workflowId: o.workflowId, runId: o.runId, strict: o.strict });
}

/** Turns an engine error into a divergence. */
export function fromEngineError(err: unknown): Divergence {
  if (NonDeterminismError.is(err)) {
    const e = err as NonDeterminismError;
    return {
      kind: "divergence",
      seq: e.seq,
      step: e.step,
      recorded: e.recorded,
      produced: e.produced,
      error: err,
    };
  }
  if (WorkflowAwaitError.is(err)) {
    return { kind: "await", seq: undefined, step: undefined, recorded: "", produced: "", error: err };
  }
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { kind: "code-error", seq: undefined, step: undefined, recorded: "", produced: msg, error: err };
}

function digest(v: unknown): string {
  try {
    return Buffer.from(encodeValue(v)).toString("base64");
  } catch {
    return String(v);
  }
}

/** The identity of an event for comparison (timestamps and sequence numbers excluded). */
export function eventKey(e: HistoryEvent, strict: boolean): string {
  const r = e as Record<string, unknown>;
  let k = `${e.type}|${"step" in e ? e.step : ""}`;
  if (typeof r.name === "string") k += `|${r.name}`;
  if (typeof r.patchId === "string") k += `|${r.patchId}`;
  if (typeof r.workflowId === "string") k += `|${r.workflowId}`;
  if (strict && (e.type === "ActivityScheduled" || e.type === "ChildStarted")) k += `|${digest(e.input)}`;
  if (strict && e.type === "TimerStarted") k += `|${e.durationMs}`;
  return k;
}

function mismatch(recorded: HistoryEvent, produced: HistoryEvent, strict: boolean): Divergence {
  let detail = "";
  if (eventKey(recorded, false) === eventKey(produced, false) && strict) {
    if (recorded.type === "TimerStarted" && produced.type === "TimerStarted") {
      detail = ` (different duration (strict mode): ${produced.durationMs} ms now)`;
    } else if ("input" in recorded && "input" in produced) {
      detail = ` (same step, different input (strict mode): recorded ${formatValue(recorded.input, 60)}, now ${formatValue(produced.input, 60)})`;
    }
  }
  return {
    kind: "divergence",
    seq: recorded.seq,
    step: "step" in recorded ? recorded.step : "step" in produced ? produced.step : undefined,
    recorded: `${describeEvent(recorded)}${isInbound(recorded) ? " (an inbound event: the code should be waiting)" : ""}${detail}`,
    produced: describeEvent(produced),
    error: undefined,
  };
}

/**
 * Compares events produced now with history from position `from` (0-based): they must match one
 * for one, and the code must not stop short of commands history recorded next.
 */
export function compareWithHistory(
  produced: readonly HistoryEvent[],
  history: readonly HistoryEvent[],
  from: number,
  strict: boolean,
  closed: boolean,
): Divergence | null {
  let i = 0;
  for (; i < produced.length; i++) {
    const p = produced[i] as HistoryEvent;
    const h = history[from + i];
    if (!h) {
      return {
        kind: "divergence",
        seq: p.seq,
        step: "step" in p ? p.step : undefined,
        recorded: "nothing (end of history)",
        produced: describeEvent(p),
        error: undefined,
      };
    }
    if (eventKey(p, strict) !== eventKey(h, strict)) return mismatch(h, p, strict);
  }
  const next = history[from + i];
  if (next && !isInbound(next)) {
    return {
      kind: "divergence",
      seq: next.seq,
      step: "step" in next ? next.step : undefined,
      recorded: describeEvent(next),
      produced: closed ? "nothing (the run had already ended)" : "nothing (the code is waiting)",
      error: undefined,
    };
  }
  return null;
}

function sameValue(a: unknown, b: unknown): boolean {
  return digest(a) === digest(b);
}

/** Checks that the closing event replays to the same result or error. */
function compareEnding(history: readonly HistoryEvent[], ex: WorkflowExecutor): Divergence | null {
  const last = history[history.length - 1];
  if (!last) return null;
  const base = { kind: "result" as const, seq: last.seq, step: undefined, error: undefined };
  if (last.type === "WorkflowCompleted" && ex.status === "completed" && !sameValue(last.result, ex.result)) {
    return {
      ...base,
      recorded: `completion with ${formatValue(last.result)}`,
      produced: `completion with ${formatValue(ex.result)}`,
    };
  }
  // Failures compare by error class: messages may legitimately embed details (and the engine's
  // own messages differ between the live and the replay path, e.g. a child's name).
  if ((last.type === "WorkflowFailed" || last.type === "WorkflowCancelled") && ex.error instanceof Error) {
    if (ex.error.name !== last.error.name) {
      return {
        ...base,
        recorded: `failure ${last.error.name}: ${last.error.message}`,
        produced: `failure ${ex.error.name}: ${ex.error.message}`,
      };
    }
  }
  return null;
}

/**
 * True when `cut` is a point a worker can crash at and replay from with the same outcome: a
 * commit is atomic, so a cut inside one activation's commands is only equivalent to a real crash
 * when none of the commands after it is a side effect (replay would run its function again).
 */
export function isReplayableCut(history: readonly HistoryEvent[], cut: number): boolean {
  for (let i = cut; i < history.length; i++) {
    const e = history[i] as HistoryEvent;
    // Not inside one turn of run-level events: a commit holds the whole turn (see executor.apply).
    if (isInbound(e)) return !("together" in e && e.together === true);
    if (e.type === "SideEffect") return false;
  }
  return true;
}

/**
 * Replays the first `cut` events with a fresh executor (a worker that crashed there) and checks
 * the commands it produces next against history.
 */
export async function replayPrefix(
  def: WorkflowDefinition,
  history: readonly HistoryEvent[],
  cut: number,
  o: ReplayCheckOptions,
): Promise<Divergence | null> {
  const ex = newExecutor(def, o);
  try {
    await withTraps(o.traps, () => ex.replayHistory(history.slice(0, cut)));
  } catch (err) {
    return fromEngineError(err);
  }
  const d = compareWithHistory(ex.takeNewEvents(), history, cut, o.strict, ex.isClosed);
  if (d) return d;
  return cut === history.length ? compareEnding(history, ex) : null;
}

/**
 * Feeds the recorded inbound events to a fresh run one activation at a time (the live path, as a
 * worker does after a restart with an empty cache), with `jitter()` microtask turns between
 * activations, and compares every event produced with history.
 */
export async function replayLive(
  def: WorkflowDefinition,
  history: readonly HistoryEvent[],
  o: ReplayCheckOptions & { jitter: () => number },
): Promise<Divergence | null> {
  const ex = newExecutor(def, o);
  try {
    await withTraps(o.traps, () => ex.replayHistory(history.slice(0, 1)));
  } catch (err) {
    return fromEngineError(err);
  }
  let at = 1;
  let produced = ex.takeNewEvents();
  for (;;) {
    const d = compareWithHistory(produced, history, at, o.strict, ex.isClosed);
    if (d) return d;
    at += produced.length;
    if (ex.isClosed || at >= history.length) break;
    // One activation's inbound events as the worker fed them: its signals and cancel requests
    // first (one turn, the later ones marked `together`), then step results. A run-level event
    // that is not `together` with the one before it began a new activation.
    const batch: NewInboundEvent[] = [];
    let results = false;
    while (at + batch.length < history.length && isInbound(history[at + batch.length] as HistoryEvent)) {
      const { seq: _seq, ...rest } = history[at + batch.length] as HistoryEvent;
      const runLevel = RUN_LEVEL_EVENT_TYPES.has(rest.type);
      if (batch.length > 0 && runLevel && (results || !("together" in rest && rest.together))) break;
      results ||= !runLevel;
      if ("together" in rest) delete rest.together; // apply() marks the turn again
      batch.push(rest as NewInboundEvent);
    }
    if (batch.length === 0) break;
    for (let turns = o.jitter(); turns > 0; turns--) await undefined;
    try {
      await withTraps(o.traps, () => ex.apply(batch, batch[batch.length - 1]?.ts));
    } catch (err) {
      return fromEngineError(err);
    }
    produced = ex.takeNewEvents();
  }
  return ex.isClosed ? compareEnding(history, ex) : null;
}
