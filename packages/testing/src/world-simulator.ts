/**
 * The world simulator: plays one world against the pure engine the way a worker would — start the
 * run, then deliver activity results, timer firings, child outcomes, signals and cancellation in
 * the world's order, one activation at a time — and records the history and a readable script of
 * what happened. No database, no clock, no timers: a whole run takes well under a millisecond.
 */
import {
  type ActivityDefinition,
  decodeRetryPolicy,
  describeEvent,
  type EventOf,
  formatDuration,
  type HistoryEvent,
  historyOf,
  InvalidOptionsError,
  isInbound,
  type NewInboundEvent,
  NonRetryableError,
  parseWith,
  retryDelayMs,
  serializeError,
  TimeoutError,
  type WorkflowDefinition,
  WorkflowExecutor,
} from "@spool/core";
import { formatValue } from "./format-value.ts";
import { macrotask, type TrapWindow, withTraps } from "./nondeterminism-traps.ts";
import { PendingSteps } from "./pending-steps.ts";
import type { DefinitionCatalog } from "./step-observer.ts";
import type { ScriptSource, World } from "./world.ts";

/** One line of a world's script: what arrived, when, as which history event. */
export interface ScriptLine {
  /** Sequence number of the inbound event in history (undefined if the run had ended first). */
  seq: number | undefined;
  /** Workflow time since the start of the run. */
  atMs: number;
  text: string;
  /** Delivered in the same activation as the previous line. */
  batched: boolean;
}

/** Counts of the faults and orderings a simulation exercised. */
export interface Exercised {
  activities: number;
  retries: number;
  activityFailures: number;
  signals: number;
  timers: number;
  children: number;
  cancellations: number;
  batches: number;
  reordered: number;
}

/** How a simulated run ended. */
export type SimulationOutcome =
  | "completed"
  | "failed"
  | "cancelled"
  | "continued"
  /** Nothing left in the world that could wake it (it waits for a signal). */
  | "waiting"
  /** It produced more than `maxEvents` events (an endless loop?). */
  | "event-limit"
  /** The engine threw: WorkflowAwaitError, a TypeError in the workflow code... */
  | "engine-error";

/** The result of playing a world. */
export interface Simulation {
  history: HistoryEvent[];
  outcome: SimulationOutcome;
  /** The engine error, for `engine-error`. */
  error?: unknown;
  script: ScriptLine[];
  exercised: Exercised;
}

/** How to play. */
export interface SimulateOptions {
  catalog: DefinitionCatalog;
  workflowId: string;
  runId: string;
  strict: boolean;
  startTime: number;
  maxEvents: number;
  /** Trap window for the engine calls (null: no traps). */
  traps: TrapWindow | null;
  /** Yield a macrotask between activations, as time passes between a worker's activations. */
  gap: boolean;
}

/** A new, empty tally. */
export function noneExercised(): Exercised {
  return {
    activities: 0,
    retries: 0,
    activityFailures: 0,
    signals: 0,
    timers: 0,
    children: 0,
    cancellations: 0,
    batches: 0,
    reordered: 0,
  };
}

interface Candidate {
  at: number;
  order: number;
  kind: "activity" | "timer" | "child" | "signal" | "cancel";
  event: (now: number) => NewInboundEvent;
  text: string;
  count: (x: Exercised) => void;
  consume: () => void;
}

/** Makes the WorkflowStarted event of a simulated run. */
export function startedEvent(def: WorkflowDefinition, rawInput: unknown, ts: number): HistoryEvent {
  const input = parseWith(def.inputSchema, rawInput, `generated input of workflow "${def.name}"`);
  return historyOf(def, input, { startTs: ts }).build()[0]!;
}

/**
 * Plays `world` with `def`. Engine errors are returned (outcome `engine-error`), not thrown;
 * configuration problems of the check itself (a generated value failing its schema) are thrown.
 */
export async function simulate(
  def: WorkflowDefinition,
  world: World,
  scripts: ScriptSource,
  opts: SimulateOptions,
): Promise<Simulation> {
  const started = startedEvent(def, world.input, opts.startTime);
  const history: HistoryEvent[] = [started];
  const pending = new PendingSteps();
  pending.observe(started);
  const script: ScriptLine[] = [];
  const exercised = noneExercised();
  const ex = new WorkflowExecutor(def, {
    workflowId: opts.workflowId,
    runId: opts.runId,
    strict: opts.strict,
  });
  const absorb = () => {
    for (const e of ex.takeNewEvents()) {
      history.push(e);
      pending.observe(e);
    }
  };
  const done = (outcome: SimulationOutcome, error?: unknown): Simulation => ({
    history,
    outcome,
    error,
    script,
    exercised,
  });

  try {
    await withTraps(opts.traps, () => ex.replayHistory([started]));
  } catch (err) {
    absorb();
    return done("engine-error", err);
  }
  absorb();

  const planned = new Map<number, Candidate>();
  const occurrences = new Map<string, number>();
  const nextOccurrence = (name: string) => {
    const n = occurrences.get(name) ?? 0;
    occurrences.set(name, n + 1);
    return n;
  };
  const signals = [...world.signals].sort((a, b) => a.atMs - b.atMs);
  let signalIndex = 0;
  let cancelled = false;
  let now = opts.startTime;
  let activation = 0;

  while (!ex.isClosed) {
    if (history.length >= opts.maxEvents) return done("event-limit");
    const candidates: Candidate[] = [];
    for (const a of pending.activities.values()) {
      let c = planned.get(a.step);
      if (!c) {
        c = planActivity(a, opts.catalog, scripts, nextOccurrence(a.name));
        planned.set(a.step, c);
      }
      candidates.push(c);
    }
    let firstDue = Number.POSITIVE_INFINITY;
    for (const t of pending.timers.values()) firstDue = Math.min(firstDue, t.dueAt);
    for (const t of pending.timers.values()) if (t.dueAt === firstDue) candidates.push(planTimer(t));
    for (const c of pending.children.values()) {
      let p = planned.get(c.step);
      if (!p) {
        p = planChild(c, opts.catalog, scripts, nextOccurrence(`child:${c.name}`));
        planned.set(c.step, p);
      }
      candidates.push(p);
    }
    const sig = signals[signalIndex];
    if (sig) {
      const payload = sig.payload;
      candidates.push({
        at: opts.startTime + sig.atMs,
        order: 3,
        kind: "signal",
        event: (ts) => ({ type: "SignalReceived", ts, name: sig.name, payload }),
        text: `signal "${sig.name}" arrives with ${formatValue(payload)}`,
        count: (x) => x.signals++,
        consume: () => signalIndex++,
      });
    }
    if (world.cancelAfter !== null && !cancelled && activation >= world.cancelAfter) {
      candidates.push({
        at: now,
        order: 4,
        kind: "cancel",
        event: (ts) => ({ type: "CancelRequested", ts, reason: "cancelled by the simulated world" }),
        text: "cancellation requested",
        count: (x) => x.cancellations++,
        consume: () => {
          cancelled = true;
        },
      });
    }
    if (candidates.length === 0) return done("waiting");

    candidates.sort((x, y) => x.at - y.at || x.order - y.order);
    const [pick, extra] = world.choices[activation] ?? [0, 0];
    const index = pick % candidates.length;
    const first = candidates[index] as Candidate;
    const batch = [first, ...candidates.filter((c) => c !== first).slice(0, extra)];
    if (index > 0) exercised.reordered++;
    if (batch.length > 1) exercised.batches++;
    for (const c of batch) now = Math.max(now, c.at);
    const events = batch.map((c) => {
      c.consume();
      c.count(exercised);
      return c.event(now);
    });

    if (opts.gap) await macrotask();
    try {
      await withTraps(opts.traps, () => ex.apply(events, now));
    } catch (err) {
      absorb();
      return done("engine-error", err);
    }
    const before = history.length;
    absorb();
    const fed = history.slice(before).filter(isInbound);
    batch.forEach((c, i) => {
      script.push({ seq: fed[i]?.seq, atMs: now - opts.startTime, text: c.text, batched: i > 0 });
    });
    activation++;
  }
  return done(ex.status === "running" ? "waiting" : ex.status);
}

function planTimer(t: EventOf<"TimerStarted">): Candidate {
  return {
    at: t.dueAt,
    order: 1,
    kind: "timer",
    event: (ts) => ({ type: "TimerFired", ts, step: t.step }),
    text: `timer (step ${t.step}, ${formatDuration(t.durationMs)}) fires`,
    count: (x) => x.timers++,
    consume: () => undefined,
  };
}

function planActivity(
  a: EventOf<"ActivityScheduled">,
  catalog: DefinitionCatalog,
  scripts: ScriptSource,
  occurrence: number,
): Candidate {
  const def = catalog.activities.get(a.name) as ActivityDefinition | undefined;
  if (!def) {
    throw new InvalidOptionsError(
      `checkDeterminism: activity "${a.name}" was scheduled but its definition was not seen; pass it in options.activities`,
    );
  }
  const s = scripts.activity(def, occurrence);
  const policy = decodeRetryPolicy(a.options.retry);
  const max = policy.maxAttempts;
  const timeoutMs = a.options.timeoutMs;
  const label = `activity "${a.name}" (step ${a.step})`;
  let attempt: number;
  let event: (ts: number) => NewInboundEvent;
  let ending: string;
  let failed = false;
  if (s.end === "fails") {
    attempt = Math.min(s.failures + 1, max);
    const error = serializeError(new NonRetryableError(`simulated non-retryable failure of ${a.name}`));
    event = (ts) => ({ type: "ActivityFailed", ts, step: a.step, attempt, reason: "non-retryable", error });
    ending = `attempt ${attempt} throws NonRetryableError → fails (non-retryable)`;
    failed = true;
  } else if (s.end === "times-out" && Number.isFinite(max)) {
    attempt = max;
    const error = serializeError(
      new TimeoutError(`simulated timeout of ${a.name} attempt ${attempt}`, timeoutMs),
    );
    event = (ts) => ({ type: "ActivityFailed", ts, step: a.step, attempt, reason: "timeout", error });
    ending = `attempt ${attempt} times out → fails (timeout)`;
    failed = true;
  } else if (s.failures >= max) {
    attempt = max;
    const error = serializeError(new Error(`simulated failure of ${a.name} attempt ${attempt}`));
    event = (ts) => ({
      type: "ActivityFailed",
      ts,
      step: a.step,
      attempt,
      reason: "retries-exhausted",
      error,
    });
    ending = `attempt ${attempt} fails → gives up (retries exhausted)`;
    failed = true;
  } else {
    attempt = s.failures + 1;
    const r = def.outputSchema.safeParse(s.value);
    if (!r.success) {
      throw new InvalidOptionsError(
        `checkDeterminism generated ${formatValue(s.value)} for the output of activity "${a.name}", but its schema ` +
          `rejects it (${r.error.issues[0]?.message}). Pass an arbitrary: \`arbitraries: { "${a.name}": fc... }\`.`,
      );
    }
    const result = r.data;
    event = (ts) => ({ type: "ActivityCompleted", ts, step: a.step, attempt, result });
    ending = `attempt ${attempt} completes → ${formatValue(result)}`;
  }
  const retried = attempt - 1;
  let at = a.ts;
  for (let k = 1; k < attempt; k++) at += s.durationMs + retryDelayMs(policy, k);
  at += s.end === "times-out" && timeoutMs > 0 ? timeoutMs : s.durationMs;
  const earlier =
    retried === 0
      ? ""
      : retried === 1
        ? "attempt 1 fails (retryable), "
        : `attempts 1–${retried} fail (retryable), `;
  return {
    at,
    order: 0,
    kind: "activity",
    event,
    text: `${label}: ${earlier}${ending}`,
    count: (x) => {
      x.activities++;
      if (retried > 0) x.retries++;
      if (failed) x.activityFailures++;
    },
    consume: () => undefined,
  };
}

function planChild(
  c: EventOf<"ChildStarted">,
  catalog: DefinitionCatalog,
  scripts: ScriptSource,
  occurrence: number,
): Candidate {
  const def = catalog.children.get(c.name);
  const label = `child workflow "${c.name}" (step ${c.step})`;
  if (!def) {
    return {
      at: c.ts,
      order: 2,
      kind: "child",
      event: (ts) => ({ type: "ChildCompleted", ts, step: c.step, result: undefined }),
      text: `${label} completes (definition unknown: result undefined)`,
      count: (x) => x.children++,
      consume: () => undefined,
    };
  }
  const s = scripts.child(def, occurrence);
  const at = c.ts + s.durationMs;
  if (s.end === "fails") {
    const error = serializeError(new Error(`simulated failure of child workflow ${c.name}`));
    return {
      at,
      order: 2,
      kind: "child",
      event: (ts) => ({ type: "ChildFailed", ts, step: c.step, error }),
      text: `${label} fails`,
      count: (x) => x.children++,
      consume: () => undefined,
    };
  }
  const r = def.outputSchema.safeParse(s.value);
  if (!r.success) {
    throw new InvalidOptionsError(
      `checkDeterminism generated ${formatValue(s.value)} for the output of child workflow "${c.name}", but its ` +
        `schema rejects it. Pass an arbitrary: \`arbitraries: { "${c.name}": fc... }\`.`,
    );
  }
  const result = r.data;
  return {
    at,
    order: 2,
    kind: "child",
    event: (ts) => ({ type: "ChildCompleted", ts, step: c.step, result }),
    text: `${label} completes → ${formatValue(result)}`,
    count: (x) => x.children++,
    consume: () => undefined,
  };
}

/** One line per history event, for reports. */
export function describeHistory(history: readonly HistoryEvent[], max = 40): string[] {
  const lines = history.slice(0, max).map((e) => {
    const what =
      e.type === "WorkflowStarted"
        ? `WorkflowStarted ${formatValue(e.input, 60)}`
        : e.type === "WorkflowCompleted"
          ? `WorkflowCompleted → ${formatValue(e.result, 60)}`
          : e.type === "ActivityCompleted"
            ? `ActivityCompleted (step ${e.step}, attempt ${e.attempt}) → ${formatValue(e.result, 50)}`
            : e.type === "ActivityFailed"
              ? `ActivityFailed (step ${e.step}, attempt ${e.attempt}, ${e.reason})`
              : isInbound(e)
                ? `${e.type}${"step" in e ? ` (step ${e.step})` : ""}${e.type === "SignalReceived" ? ` "${e.name}"` : ""}`
                : describeEvent(e);
    return `#${e.seq} ${what}`;
  });
  if (history.length > max) lines.push(`… ${history.length - max} more event(s)`);
  return lines;
}
