/**
 * The replay engine. A `WorkflowExecutor` runs one workflow run's code against its history: it
 * feeds the recorded inbound events (activity results, timer firings, signals...) to the code in
 * history order, checks at every step that the code produces exactly the recorded commands, and,
 * once history is exhausted, records what the code does next as new events.
 *
 * It is pure: no clock (time is the timestamp of the event being processed), no database, no
 * timers. The only awaits are the workflow generator's own, and those may take microtask turns
 * only (see settleWithinMicrotasks). The same (definition, history) therefore always yields the
 * same commands, which is what makes crash recovery by replay correct.
 *
 * Scheduling order (documented, and relied on for determinism): the root fiber runs until it
 * blocks; a group (`all`/`race`) starts its branches in array order, each until it blocks; each
 * inbound event resumes the fiber waiting for it, and any fibers made runnable as a consequence
 * run in FIFO order until none can run; only then is the next event fed.
 */
import type { z } from "zod";
import { deserializeError, serializeError } from "../codec/error-serialization.ts";
import { encodeValue } from "../codec/msgpack-codec.ts";
import type { ActivityStep } from "../definitions/activity.ts";
import type { QueryDefinition } from "../definitions/query.ts";
import { parseWith, type Schema } from "../definitions/schema.ts";
import type { SignalWaitStep } from "../definitions/signal.ts";
import type { WorkflowContext, WorkflowDefinition, WorkflowLogger } from "../definitions/workflow.ts";
import { toMs } from "../duration.ts";
import {
  ActivityFailure,
  CancelledError,
  ChildWorkflowFailure,
  ConfigurationError,
  NonDeterminismError,
  TimeoutError,
  WorkflowAlreadyStartedError,
  WorkflowAwaitError,
} from "../errors.ts";
import {
  type EventDraft,
  type EventOf,
  type HistoryEvent,
  isInbound,
  type NewEvent,
  type RecordedActivityOptions,
} from "../history/events.ts";
import { encodeRetryPolicy, resolveRetryPolicy } from "../retry-policy.ts";
import type { ChildStep } from "../steps/child.ts";
import type { GroupStep } from "../steps/concurrency.ts";
import type { ContinueAsNewStep } from "../steps/continue-as-new.ts";
import type { PatchStep } from "../steps/patch.ts";
import type { SideEffectStep } from "../steps/side-effect.ts";
import { isStep, type Step } from "../steps/step.ts";
import type { TimerStep } from "../steps/timer.ts";
import { describeEvent } from "./describe.ts";
import { type Action, Fiber, type GroupState, type Outcome, settleWithinMicrotasks } from "./fiber.ts";
import { seededRandom } from "./random.ts";

/** Recorded options of definitions scheduled without per-call options (see recordedOptions). */
const sharedOptions = new WeakMap<object, { defaultTimeoutMs: number; options: RecordedActivityOptions }>();

/** A log line written by workflow code (only when not replaying). */
export interface WorkflowLogEntry {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown> | undefined;
  workflowId: string;
  runId: string;
  /** Workflow time of the line. */
  ts: number;
}

/** Options of a WorkflowExecutor. */
export interface ExecutorOptions {
  workflowId: string;
  runId: string;
  /** Also compare activity and child inputs and timer durations with history (default false). */
  strict?: boolean;
  /** Receives `ctx.log` lines written while not replaying. */
  log?: (entry: WorkflowLogEntry) => void;
  /** A warning is logged once the history reaches this many events (default 10,000). */
  historyWarnAt?: number;
  /** The run fails with a clear error at this many events (default 50,000): continue as new before. */
  historyLimit?: number;
  /** Microtask turns a workflow `await` may take before it counts as real I/O (default 10,000). */
  maxMicrotaskTurns?: number;
  /** Default start-to-close timeout of activities without one (default 5 minutes). */
  defaultActivityTimeoutMs?: number;
}

/** Run state as the engine sees it. */
export type ExecutorStatus = "running" | "completed" | "failed" | "cancelled" | "continued";

/** An inbound event that has not been recorded yet (from the inbox). */
export type NewInboundEvent = Extract<
  NewEvent,
  {
    type:
      | "ActivityCompleted"
      | "ActivityFailed"
      | "TimerFired"
      | "SignalReceived"
      | "ChildCompleted"
      | "ChildFailed"
      | "ChildStartFailed"
      | "CancelRequested";
  }
>;

/** Default history limits. */
export const HISTORY_WARN_AT = 10_000;
export const HISTORY_LIMIT = 50_000;

/** Errors that mean the workflow code is broken (not the business outcome): the run is parked, not failed. */
function isCodeBug(err: unknown): boolean {
  return (
    err instanceof TypeError ||
    err instanceof ReferenceError ||
    err instanceof SyntaxError ||
    ConfigurationError.is(err) ||
    NonDeterminismError.is(err) ||
    WorkflowAwaitError.is(err)
  );
}

const CONTINUED = Symbol("continued");

/**
 * Executes one run of a workflow against its history. Create it, call `replayHistory` with the
 * recorded events, then `apply` new inbound events; `takeNewEvents` returns what to append.
 * Throws NonDeterminismError / WorkflowAwaitError / code-bug errors: the caller parks the run.
 */
export class WorkflowExecutor<I extends Schema = Schema, O extends Schema = Schema> {
  readonly workflowId: string;
  readonly runId: string;
  status: ExecutorStatus = "running";
  /** The run's result (completed) or error (failed/cancelled). */
  result: unknown;
  error: unknown;
  /** The input of the next run (continued). */
  continueInput: unknown;

  private history: HistoryEvent[] = [];
  private cursor = 0;
  private newEvents: HistoryEvent[] = [];
  private lastSeq = 0;
  private nowTs = 0;
  private stampTs: number | undefined;
  private stepCounter = 0;
  private fiberCounter = 0;
  private root: Fiber | null = null;
  private readonly queue: Action[] = [];
  private readonly waitingSteps = new Map<number, Fiber>();
  private readonly signalWaiters = new Map<string, Fiber[]>();
  private readonly signalBuffer = new Map<string, { payload: unknown; order: number }[]>();
  /** Signals in signalBuffer (received, recorded, not yet taken by a wait). */
  private buffered = 0;
  private signalOrder = 0;
  private readonly queryHandlers = new Map<string, () => unknown>();
  private readonly patches = new Map<string, { value: boolean; callSite: string | undefined }>();
  private readonly live = new Set<Fiber>();
  private cancelRequested = false;
  private closed = false;
  private poisoned: unknown = undefined;
  private started: EventOf<"WorkflowStarted"> | null = null;
  private warned = false;
  private readonly opts: Required<Omit<ExecutorOptions, "log">> & Pick<ExecutorOptions, "log">;
  private readonly rng;
  readonly ctx: WorkflowContext;

  constructor(
    readonly definition: WorkflowDefinition<I, O>,
    options: ExecutorOptions,
  ) {
    this.workflowId = options.workflowId;
    this.runId = options.runId;
    this.opts = {
      strict: false,
      historyWarnAt: HISTORY_WARN_AT,
      historyLimit: HISTORY_LIMIT,
      maxMicrotaskTurns: 10_000,
      defaultActivityTimeoutMs: 5 * 60_000,
      ...options,
    };
    this.rng = seededRandom(this.runId);
    this.ctx = this.makeContext();
  }

  /** True while recorded history is being replayed. */
  get isReplaying(): boolean {
    return this.cursor < this.history.length;
  }

  /** Sequence number of the last event, recorded or new. */
  get seq(): number {
    return this.lastSeq;
  }

  /**
   * Signals received and recorded but not yet taken by `signal.wait()`. The worker records it
   * with each activation so the backend can cap a run's unconsumed signals (maxBufferedSignals).
   */
  get bufferedSignalCount(): number {
    return this.buffered;
  }

  /** Whether the run has ended (a closing event was produced or replayed). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Replays recorded history (which must start with WorkflowStarted). Commands the code produces
   * beyond the end of history become new events.
   */
  async replayHistory(events: readonly HistoryEvent[]): Promise<void> {
    this.assertUsable();
    if (this.root) throw new ConfigurationError("replayHistory() can be called once per executor");
    const first = events[0];
    if (first?.type !== "WorkflowStarted") {
      throw new ConfigurationError("a history must start with a WorkflowStarted event");
    }
    if (first.workflowName !== this.definition.name) {
      throw new ConfigurationError(
        `history is of workflow "${first.workflowName}" but the definition is "${this.definition.name}"`,
      );
    }
    this.history = events.slice();
    this.started = first;
    this.cursor = 1;
    this.lastSeq = first.seq;
    this.nowTs = first.ts;
    try {
      this.startRoot(first);
      await this.runQueue();
      while (this.cursor < this.history.length) {
        this.checkQuiescent();
        const rec = this.history[this.cursor] as HistoryEvent;
        this.cursor++;
        this.lastSeq = rec.seq;
        if (this.closed && isInbound(rec)) continue; // arrived after the end: recorded, not delivered
        if (this.closed) {
          throw new NonDeterminismError({
            step: this.stepCounter,
            seq: rec.seq,
            recorded: describeEvent(rec),
            produced: "nothing (the run had already ended)",
          });
        }
        this.nowTs = rec.ts;
        this.feed(rec);
        await this.runQueue();
      }
      this.checkQuiescent();
    } catch (err) {
      this.poisoned = err;
      throw err;
    }
  }

  /**
   * Feeds new inbound events (live, after history) in order; `now` stamps the commands produced.
   * Events that arrive after the run ended are recorded but change nothing; after continue-as-new
   * they are left for the next run.
   */
  async apply(events: readonly NewInboundEvent[], now?: number): Promise<void> {
    this.assertUsable();
    if (!this.root) throw new ConfigurationError("apply() needs replayHistory() first");
    this.stampTs = now;
    try {
      for (const e of events) {
        // After continue-as-new, what is left belongs to the next run (the backend moves it there).
        if (this.closed && this.status === "continued") break;
        // A copy: the caller's event is not ours to change (Object.assign: see emit).
        const full = Object.assign({}, e) as unknown as HistoryEvent;
        full.seq = this.lastSeq + 1;
        this.lastSeq = full.seq;
        this.newEvents.push(full);
        // After the end, inbound events are recorded (an acknowledged signal is never lost) but not delivered.
        if (this.closed) continue;
        this.nowTs = full.ts;
        this.feed(full);
        await this.runQueue();
      }
    } catch (err) {
      this.poisoned = err;
      throw err;
    } finally {
      this.stampTs = undefined;
    }
  }

  /** Returns and forgets the events produced since the last call (in order, with seq assigned). */
  takeNewEvents(): HistoryEvent[] {
    const out = this.newEvents;
    this.newEvents = [];
    return out;
  }

  /** Peeks at the events produced since the last `takeNewEvents`. */
  peekNewEvents(): readonly HistoryEvent[] {
    return this.newEvents;
  }

  /** Answers a query from the run's current state. */
  query<T>(query: QueryDefinition<T> | string): T {
    const name = typeof query === "string" ? query : query.name;
    const handler = this.queryHandlers.get(name);
    if (!handler) {
      throw new ConfigurationError(
        `workflow "${this.definition.name}" has no handler for query "${name}"; register one with ctx.onQuery(${name}, () => ...)`,
      );
    }
    return handler() as T;
  }

  private assertUsable(): void {
    if (this.poisoned !== undefined) {
      throw new ConfigurationError("this executor failed earlier and cannot be used; replay from history", {
        cause: this.poisoned,
      });
    }
  }

  // ── Context ──────────────────────────────────────────────────────────────────────────────

  private makeContext(): WorkflowContext {
    const self = this;
    const logAt =
      (level: WorkflowLogEntry["level"]) =>
      (message: string, fields?: Record<string, unknown>): void => {
        if (self.isReplaying || !self.opts.log) return;
        self.opts.log({
          level,
          message,
          fields,
          workflowId: self.workflowId,
          runId: self.runId,
          ts: self.nowTs,
        });
      };
    const log: WorkflowLogger = {
      debug: logAt("debug"),
      info: logAt("info"),
      warn: logAt("warn"),
      error: logAt("error"),
    };
    return {
      workflowId: this.workflowId,
      runId: this.runId,
      now: () => new Date(self.nowTs),
      random: () => self.rng.random(),
      uuid: () => self.rng.uuid(),
      get isReplaying() {
        return self.isReplaying;
      },
      get cancelRequested() {
        return self.cancelRequested;
      },
      log,
      get info() {
        const s = self.started;
        return {
          workflowName: self.definition.name,
          version: s?.version,
          startedAt: new Date(s?.ts ?? 0),
          parent: s?.parent ? { workflowId: s.parent.workflowId, runId: s.parent.runId } : undefined,
          continuedFrom: s?.continuedFrom,
          historyLength: self.lastSeq,
        };
      },
      onQuery<T>(query: QueryDefinition<T>, handler: () => T): void {
        if (typeof handler !== "function") {
          throw new ConfigurationError(`ctx.onQuery("${query.name}") needs a function`);
        }
        self.queryHandlers.set(query.name, handler);
      },
    };
  }

  // ── Driving fibers ───────────────────────────────────────────────────────────────────────

  private startRoot(started: EventOf<"WorkflowStarted">): void {
    if (started.executionTimeoutMs !== undefined && started.executionTimeoutMs > 0) {
      // The execution timeout is a real, recorded timer (step 1), so it replays like any other.
      const step = ++this.stepCounter;
      const dueAt = started.ts + started.executionTimeoutMs;
      this.emit({ type: "TimerStarted", step, dueAt, durationMs: started.executionTimeoutMs });
      this.waitingSteps.set(step, this.timeoutFiber(step));
    }
    const gen = this.definition.fn(started.input as z.output<I>, this.ctx);
    this.root = this.newFiber(gen as never, null, 0);
    this.queue.push({ fiber: this.root, kind: "next", value: undefined });
  }

  /** A pseudo-fiber that owns the execution-timeout timer. */
  private timeoutFiber(step: number): Fiber {
    const f = new Fiber(-1, null, null, 0);
    f.pending = { kind: "timer", step, internal: "execution-timeout" };
    return f;
  }

  private newFiber(gen: Fiber["gen"], group: GroupState | null, index: number): Fiber {
    const f = new Fiber(++this.fiberCounter, gen, group, index);
    this.live.add(f);
    return f;
  }

  private async runQueue(): Promise<void> {
    while (this.queue.length > 0) {
      const action = this.queue.shift() as Action;
      if (action.fiber.done || this.closed) continue;
      await this.drive(action.fiber, action.kind, action.value);
    }
  }

  /** Runs a fiber until it blocks or ends. */
  private async drive(fiber: Fiber, kind: Action["kind"], value: unknown): Promise<void> {
    let k = kind;
    let v = value;
    for (;;) {
      if (this.closed) return;
      const gen = fiber.gen;
      if (!gen) {
        this.finish(fiber, k === "throw" ? { ok: false, error: v } : { ok: true, value: v });
        return;
      }
      let p: ReturnType<typeof gen.next>;
      try {
        p = k === "next" ? gen.next(v) : k === "throw" ? gen.throw(v) : gen.return(v as never);
      } catch (err) {
        this.finish(fiber, { ok: false, error: err });
        return;
      }
      // A stall (an await on real I/O) throws out of here: it is an engine error, not the code's.
      const settled = await settleWithinMicrotasks(
        p,
        this.opts.maxMicrotaskTurns,
        `after step ${this.stepCounter}`,
      );
      if (!settled.ok) {
        this.finish(fiber, settled);
        return;
      }
      const r = settled.value as IteratorResult<Step<unknown>, unknown>;
      if (r.done) {
        this.finish(fiber, { ok: true, value: r.value });
        return;
      }
      const yielded = r.value as unknown;
      if (!isStep(yielded)) {
        k = "throw";
        v = new ConfigurationError(
          `workflow code yielded ${describeValue(yielded)} instead of a step. Use \`yield*\` (with the star) on ` +
            "steps: activity calls, sleep(), all(), race(), signal.wait(), child(), sideEffect(), patched().",
        );
        continue;
      }
      const outcome = await this.handleStep(fiber, yielded);
      if (outcome === null) return;
      if (outcome === CONTINUED) return;
      k = outcome.ok ? "next" : "throw";
      v = outcome.ok ? outcome.value : outcome.error;
    }
  }

  /** Ends a fiber: the root ends the run; a branch reports to its group. */
  private finish(fiber: Fiber, outcome: Outcome): void {
    if (fiber.done) return;
    fiber.done = true;
    fiber.pending = null;
    this.live.delete(fiber);
    if (fiber.detached) return;
    if (fiber === this.root) {
      this.completeRun(outcome);
      return;
    }
    const g = fiber.group;
    if (g) this.branchDone(g, fiber.index, outcome);
  }

  private branchDone(g: GroupState, index: number, outcome: Outcome): void {
    if (g.settled) return;
    if (!outcome.ok || g.kind === "race") {
      this.settleGroup(g, outcome);
      return;
    }
    g.results[index] = outcome.value;
    g.remaining--;
    if (g.remaining === 0) this.settleGroup(g, { ok: true, value: g.results });
  }

  private settleGroup(g: GroupState, outcome: Outcome): void {
    g.settled = true;
    for (const c of g.children) if (!c.done) this.cancelFiber(c);
    if (g.starting) {
      g.early = outcome;
      return;
    }
    g.parent.pending = null;
    this.queue.push({
      fiber: g.parent,
      kind: outcome.ok ? "next" : "throw",
      value: outcome.ok ? outcome.value : outcome.error,
    });
  }

  /** Cancels a fiber that lost a race or whose group failed: its step is withdrawn, its generator closed. */
  private cancelFiber(f: Fiber): void {
    if (f.done || f.detached) return;
    f.detached = true;
    this.withdraw(f);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]?.fiber === f) this.queue.splice(i, 1);
    if (f.gen) this.queue.push({ fiber: f, kind: "return", value: undefined });
    else {
      f.done = true;
      this.live.delete(f);
    }
  }

  /** Withdraws whatever a fiber waits for, recording the cancellation commands. */
  private withdraw(f: Fiber): void {
    const p = f.pending;
    f.pending = null;
    if (!p) return;
    switch (p.kind) {
      case "activity":
        this.waitingSteps.delete(p.step);
        this.emit({ type: "ActivityCancelled", step: p.step });
        break;
      case "timer":
        this.waitingSteps.delete(p.step);
        this.emit({ type: "TimerCancelled", step: p.step });
        break;
      case "child":
        this.waitingSteps.delete(p.step);
        this.emit({ type: "ChildCancelled", step: p.step, workflowId: p.workflowId });
        break;
      case "signal": {
        const list = this.signalWaiters.get(p.name);
        if (list) {
          const i = list.indexOf(f);
          if (i >= 0) list.splice(i, 1);
        }
        if (p.timerStep !== null) {
          this.waitingSteps.delete(p.timerStep);
          this.emit({ type: "TimerCancelled", step: p.timerStep });
        }
        break;
      }
      case "group":
        p.group.settled = true;
        for (const c of p.group.children) this.cancelFiber(c);
        break;
    }
  }

  // ── Steps ────────────────────────────────────────────────────────────────────────────────

  /** Handles a yielded step: returns its outcome when immediate, null when the fiber now waits. */
  private async handleStep(fiber: Fiber, step: Step<unknown>): Promise<Outcome | null | typeof CONTINUED> {
    try {
      switch (step.kind) {
        case "activity":
          return this.scheduleActivity(fiber, step as ActivityStep<Schema, Schema>);
        case "timer":
          return this.startTimer(fiber, step as TimerStep);
        case "signal":
          return this.waitSignal(fiber, step as SignalWaitStep<unknown>);
        case "child":
          return this.startChild(fiber, step as ChildStep<Schema, Schema>);
        case "sideEffect":
          return this.sideEffect(step as SideEffectStep<unknown>);
        case "patch":
          return this.patch(step as PatchStep);
        case "all":
        case "race":
          return await this.startGroup(fiber, step as GroupStep<unknown>);
        case "continueAsNew":
          return this.continueAsNew(step as ContinueAsNewStep);
        default:
          return {
            ok: false,
            error: new ConfigurationError(`unknown step kind "${(step as Step<unknown>).kind}"`),
          };
      }
    } catch (err) {
      // Engine-level failures (non-determinism) stop everything; errors about the step itself
      // (bad input, bad duration) are thrown into the workflow code at its `yield*`.
      if (NonDeterminismError.is(err) || WorkflowAwaitError.is(err)) throw err;
      return { ok: false, error: err };
    }
  }

  private scheduleActivity(fiber: Fiber, s: ActivityStep<Schema, Schema>): Outcome | null {
    const def = s.definition;
    const input = parseWith(def.inputSchema, s.input, `input of activity "${def.name}"`);
    const step = ++this.stepCounter;
    this.emit({
      type: "ActivityScheduled",
      step,
      name: def.name,
      input,
      options: this.recordedOptions(def, s.options),
    });
    fiber.pending = { kind: "activity", step, name: def.name };
    this.waitingSteps.set(step, fiber);
    return null;
  }

  /**
   * The options recorded with a scheduled activity: the definition's, overridden per call. Without
   * per-call options they are worked out once per definition (and default timeout) and shared,
   * frozen, by every step that schedules it — the same object each time also lets the activation
   * builder encode it once.
   */
  private recordedOptions(
    def: ActivityStep<Schema, Schema>["definition"],
    perCall: ActivityStep<Schema, Schema>["options"],
  ): RecordedActivityOptions {
    const defaultTimeoutMs = this.opts.defaultActivityTimeoutMs;
    if (perCall === undefined) {
      const cached = sharedOptions.get(def);
      if (cached !== undefined && cached.defaultTimeoutMs === defaultTimeoutMs) return cached.options;
    }
    const merged = { ...def.options, ...perCall };
    const retry = encodeRetryPolicy(resolveRetryPolicy(merged.retry));
    const timeoutMs =
      merged.timeout === undefined ? defaultTimeoutMs : toMs(merged.timeout, "activity timeout");
    const heartbeatTimeoutMs =
      merged.heartbeatTimeout === undefined ? 0 : toMs(merged.heartbeatTimeout, "activity heartbeatTimeout");
    const options: RecordedActivityOptions = { retry, timeoutMs, heartbeatTimeoutMs };
    if (perCall === undefined) {
      Object.freeze(retry.nonRetryableErrors);
      Object.freeze(retry);
      sharedOptions.set(def, { defaultTimeoutMs, options: Object.freeze(options) });
    }
    return options;
  }

  private startTimer(fiber: Fiber, s: TimerStep): Outcome | null {
    const dueAt =
      "duration" in s.at ? this.nowTs + toMs(s.at.duration, "sleep duration") : s.at.until.getTime();
    if (!Number.isFinite(dueAt)) throw new ConfigurationError("sleepUntil() needs a valid Date");
    if (dueAt <= this.nowTs) return { ok: true, value: undefined };
    const step = ++this.stepCounter;
    this.emit({ type: "TimerStarted", step, dueAt, durationMs: dueAt - this.nowTs });
    fiber.pending = { kind: "timer", step };
    this.waitingSteps.set(step, fiber);
    return null;
  }

  private waitSignal(fiber: Fiber, s: SignalWaitStep<unknown>): Outcome | null {
    const buffered = this.signalBuffer.get(s.signalName);
    if (buffered && buffered.length > 0) {
      this.buffered--;
      return { ok: true, value: buffered.shift()?.payload };
    }
    let timerStep: number | null = null;
    if (s.timeout !== undefined) {
      const ms = toMs(s.timeout, "signal wait timeout");
      timerStep = ++this.stepCounter;
      this.emit({ type: "TimerStarted", step: timerStep, dueAt: this.nowTs + ms, durationMs: ms });
      this.waitingSteps.set(timerStep, fiber);
    }
    fiber.pending = { kind: "signal", name: s.signalName, timerStep };
    const list = this.signalWaiters.get(s.signalName);
    if (list) list.push(fiber);
    else this.signalWaiters.set(s.signalName, [fiber]);
    return null;
  }

  private startChild(fiber: Fiber, s: ChildStep<Schema, Schema>): Outcome | null {
    const def = s.definition;
    const input = parseWith(def.inputSchema, s.input, `input of child workflow "${def.name}"`);
    const step = ++this.stepCounter;
    const workflowId = s.options?.id ?? `${this.workflowId}/${def.name}#${step}`;
    this.emit({ type: "ChildStarted", step, name: def.name, workflowId, input });
    fiber.pending = { kind: "child", step, workflowId, name: def.name };
    this.waitingSteps.set(step, fiber);
    return null;
  }

  private sideEffect(s: SideEffectStep<unknown>): Outcome {
    const step = ++this.stepCounter;
    if (this.isReplaying) {
      const rec = this.matchRecorded({ type: "SideEffect", step, value: undefined }, "side effect");
      return { ok: true, value: (rec as EventOf<"SideEffect">).value };
    }
    const value = s.fn();
    if (value instanceof Promise) {
      throw new ConfigurationError(
        "sideEffect() takes a synchronous function; for async work (I/O) use an activity instead",
      );
    }
    this.emit({ type: "SideEffect", step, value });
    return { ok: true, value };
  }

  private patch(s: PatchStep): Outcome {
    const known = this.patches.get(s.patchId);
    if (known) {
      if (!s.deprecated && known.callSite && s.callSite && known.callSite !== s.callSite) {
        throw new ConfigurationError(
          `patch id "${s.patchId}" is used at two places (${known.callSite} and ${s.callSite}). One patch id guards ` +
            'one change; give each change its own id, e.g. "<change>-part2".',
        );
      }
      return { ok: true, value: known.value };
    }
    const next = this.history[this.cursor];
    const recorded = this.isReplaying && next?.type === "PatchMarker" && next.patchId === s.patchId;
    let value: boolean;
    if (recorded) {
      this.cursor++;
      this.lastSeq = (next as HistoryEvent).seq;
      value = true;
    } else if (this.isReplaying || s.deprecated) {
      // Replaying a run that passed this point before the patch existed: keep the old path.
      // A deprecated patch never records; its new path is the only path.
      value = s.deprecated;
    } else {
      this.emit({ type: "PatchMarker", patchId: s.patchId });
      value = true;
    }
    this.patches.set(s.patchId, { value, callSite: s.callSite });
    return { ok: true, value };
  }

  private async startGroup(fiber: Fiber, s: GroupStep<unknown>): Promise<Outcome | null> {
    if (s.branches.length === 0) {
      if (s.kind === "all") return { ok: true, value: [] };
      throw new ConfigurationError("race([]) can never finish: give race() at least one branch");
    }
    const g: GroupState = {
      kind: s.kind,
      parent: fiber,
      children: [],
      results: new Array(s.branches.length),
      remaining: s.branches.length,
      settled: false,
      starting: true,
      early: null,
    };
    fiber.pending = { kind: "group", group: g };
    for (let i = 0; i < s.branches.length; i++) {
      if (g.settled) break;
      const b = s.branches[i];
      if (isStep(b)) {
        const leaf = this.newFiber(null, g, i);
        g.children.push(leaf);
        markUsed(b);
        const outcome = await this.handleStep(leaf, b);
        if (outcome === CONTINUED) return null;
        if (outcome !== null) this.finish(leaf, outcome);
      } else if (b && typeof (b as { next?: unknown }).next === "function") {
        const child = this.newFiber(b as Fiber["gen"], g, i);
        g.children.push(child);
        await this.drive(child, "next", undefined);
      } else {
        throw new ConfigurationError(
          `${s.kind}() branch ${i} is ${describeValue(b)}; pass steps or generator branches such as (async function* () { ... })()`,
        );
      }
      if (this.closed) return null;
    }
    g.starting = false;
    if (g.early) {
      fiber.pending = null;
      return g.early;
    }
    return null;
  }

  private continueAsNew(s: ContinueAsNewStep): typeof CONTINUED {
    const input = parseWith(
      this.definition.inputSchema,
      s.input,
      `continueAsNew input of "${this.definition.name}"`,
    );
    this.withdrawAll();
    // Signals received but not consumed belong to the workflow, not to this run: hand them on.
    const carried = [...this.signalBuffer.entries()]
      .flatMap(([name, items]) => items.map((i) => ({ name, payload: i.payload, order: i.order })))
      .sort((a, b) => a.order - b.order)
      .map(({ name, payload }) => ({ name, payload }));
    this.emit(
      carried.length > 0
        ? { type: "WorkflowContinued", input, carriedSignals: carried }
        : { type: "WorkflowContinued", input },
    );
    this.closed = true;
    this.status = "continued";
    this.continueInput = input;
    return CONTINUED;
  }

  // ── Inbound events ───────────────────────────────────────────────────────────────────────

  private feed(e: HistoryEvent): void {
    this.checkHistorySize();
    if (this.closed) return;
    switch (e.type) {
      case "ActivityCompleted":
        this.resolveStep(e.step, { ok: true, value: e.result });
        break;
      case "ActivityFailed": {
        const f = this.waitingSteps.get(e.step);
        const name = f?.pending?.kind === "activity" ? f.pending.name : "?";
        const failure = new ActivityFailure(
          { activityName: name, step: e.step, attempt: e.attempt, reason: e.reason },
          { cause: deserializeError(e.error) },
        );
        this.resolveStep(e.step, { ok: false, error: failure });
        break;
      }
      case "TimerFired": {
        const f = this.waitingSteps.get(e.step);
        if (!f?.pending) break;
        if (f.pending.kind === "signal") {
          this.removeSignalWaiter(f, f.pending.name);
          this.waitingSteps.delete(e.step);
          f.pending = null;
          this.queue.push({ fiber: f, kind: "next", value: undefined });
        } else if (f.pending.kind === "timer" && f.pending.internal === "execution-timeout") {
          this.waitingSteps.delete(e.step);
          f.pending = null;
          this.failRun(
            new TimeoutError(
              `workflow "${this.definition.name}" exceeded its execution timeout of ${this.started?.executionTimeoutMs} ms`,
              this.started?.executionTimeoutMs ?? 0,
            ),
          );
        } else this.resolveStep(e.step, { ok: true, value: undefined });
        break;
      }
      case "SignalReceived": {
        const waiters = this.signalWaiters.get(e.name);
        const f = waiters?.shift();
        if (f?.pending?.kind !== "signal") {
          const item = { payload: e.payload, order: this.signalOrder++ };
          const buf = this.signalBuffer.get(e.name);
          if (buf) buf.push(item);
          else this.signalBuffer.set(e.name, [item]);
          this.buffered++;
          break;
        }
        const timerStep = f.pending.timerStep;
        f.pending = null;
        if (timerStep !== null) {
          this.waitingSteps.delete(timerStep);
          this.emit({ type: "TimerCancelled", step: timerStep });
        }
        this.queue.push({ fiber: f, kind: "next", value: e.payload });
        break;
      }
      case "ChildCompleted":
        this.resolveStep(e.step, { ok: true, value: e.result });
        break;
      case "ChildFailed":
      case "ChildStartFailed": {
        const f = this.waitingSteps.get(e.step);
        const p = f?.pending?.kind === "child" ? f.pending : undefined;
        const cause =
          e.type === "ChildFailed"
            ? deserializeError(e.error)
            : new WorkflowAlreadyStartedError(
                p?.workflowId ?? "?",
                "?",
                `child workflow id "${p?.workflowId}" is already used by a running workflow; give child() a unique { id }`,
              );
        const childName = p?.name ?? "?";
        this.resolveStep(e.step, {
          ok: false,
          error: new ChildWorkflowFailure(
            { workflowName: childName, workflowId: p?.workflowId ?? "?" },
            { cause },
          ),
        });
        break;
      }
      case "CancelRequested":
        this.deliverCancellation(e.reason);
        break;
      default:
        throw new NonDeterminismError(
          {
            step: this.stepCounter,
            seq: e.seq,
            recorded: describeEvent(e),
            produced: "nothing (the code is waiting for an inbound event here)",
          },
          { hint: "History has a command where the code expected an activity result, timer, or signal." },
        );
    }
  }

  private resolveStep(step: number, outcome: Outcome): void {
    const f = this.waitingSteps.get(step);
    // A result for a step nobody waits for (a cancelled race loser) changes nothing.
    if (!f) return;
    this.waitingSteps.delete(step);
    f.pending = null;
    this.queue.push({
      fiber: f,
      kind: outcome.ok ? "next" : "throw",
      value: outcome.ok ? outcome.value : outcome.error,
    });
  }

  private removeSignalWaiter(f: Fiber, name: string): void {
    const list = this.signalWaiters.get(name);
    if (!list) return;
    const i = list.indexOf(f);
    if (i >= 0) list.splice(i, 1);
  }

  /** Throws CancelledError at every step the run waits on, in fiber order. */
  private deliverCancellation(reason: string): void {
    if (this.cancelRequested) return;
    this.cancelRequested = true;
    const leaves = [...this.live].filter((f) => f.pending && f.pending.kind !== "group" && !f.detached);
    leaves.sort((a, b) => a.id - b.id);
    for (const f of leaves) {
      this.withdraw(f);
      this.queue.push({ fiber: f, kind: "throw", value: new CancelledError(reason) });
    }
  }

  // ── Ending the run ───────────────────────────────────────────────────────────────────────

  private completeRun(outcome: Outcome): void {
    if (outcome.ok) {
      let result: unknown;
      try {
        result = parseWith(
          this.definition.outputSchema,
          outcome.value,
          `output of workflow "${this.definition.name}"`,
        );
      } catch (err) {
        this.failRun(err);
        return;
      }
      this.withdrawAll();
      this.emit({ type: "WorkflowCompleted", result });
      this.closed = true;
      this.status = "completed";
      this.result = result;
      return;
    }
    const err = outcome.error;
    if (isCodeBug(err)) throw err;
    this.failRun(err);
  }

  private failRun(err: unknown): void {
    this.withdrawAll();
    const cancelled = CancelledError.is(err) && this.cancelRequested;
    this.emit({
      type: cancelled ? "WorkflowCancelled" : "WorkflowFailed",
      error: serializeError(err),
    } as EventDraft);
    this.closed = true;
    this.status = cancelled ? "cancelled" : "failed";
    this.error = err;
  }

  /** A run that ends cancels whatever it left outstanding, so nothing keeps it open. */
  private withdrawAll(): void {
    const timeout = [...this.waitingSteps.entries()].find(([, f]) => f.id === -1);
    const fibers = [...this.live].filter((f) => f.pending).sort((a, b) => a.id - b.id);
    for (const f of fibers) {
      f.detached = true;
      if (f.pending?.kind !== "group") this.withdraw(f);
      else f.pending = null;
    }
    if (timeout) {
      this.waitingSteps.delete(timeout[0]);
      this.emit({ type: "TimerCancelled", step: timeout[0] });
    }
    this.queue.length = 0;
  }

  private checkHistorySize(): void {
    const n = this.lastSeq;
    if (n >= this.opts.historyWarnAt && !this.warned) {
      this.warned = true;
      this.ctx.log.warn(
        `history has ${n} events; continue as new before ${this.opts.historyLimit} (the limit) to keep replay fast`,
      );
    }
    if (n >= this.opts.historyLimit && !this.closed) {
      this.failRun(
        new ConfigurationError(
          `run ${this.runId} reached the history limit of ${this.opts.historyLimit} events. Call ` +
            "`yield* continueAsNew(state)` periodically (e.g. when ctx.info.historyLength > 5,000) to start a " +
            "fresh run with the same workflow id.",
        ),
      );
    }
  }

  // ── Recording and matching ───────────────────────────────────────────────────────────────

  /** Records a command, or during replay checks it against the recorded one. */
  private emit(ev: EventDraft): HistoryEvent {
    if (this.isReplaying) return this.matchRecorded(ev, undefined);
    // Every caller passes a fresh literal, so it is completed in place: a spread into a new object
    // runs on a slow path in V8 for this many event shapes. The keys end up in the spread's order.
    const full = ev as unknown as HistoryEvent;
    full.seq = this.lastSeq + 1;
    full.ts = this.stampTs ?? this.nowTs;
    this.lastSeq = full.seq;
    this.newEvents.push(full);
    return full;
  }

  private matchRecorded(ev: EventDraft, what: string | undefined): HistoryEvent {
    const rec = this.history[this.cursor] as HistoryEvent;
    const produced = what ?? describeEvent(ev as HistoryEvent);
    const step = "step" in ev ? (ev.step as number) : this.stepCounter;
    const mismatch = (detail?: string): never => {
      throw new NonDeterminismError({
        step,
        seq: rec.seq,
        recorded: describeEvent(rec) + (detail ? ` (${detail})` : ""),
        produced,
      });
    };
    if (isInbound(rec) || rec.type !== ev.type) mismatch();
    const r = rec as Record<string, unknown>;
    const e = ev as Record<string, unknown>;
    if ("step" in e && r.step !== e.step) mismatch();
    if ((ev.type === "ActivityScheduled" || ev.type === "ChildStarted") && r.name !== e.name) mismatch();
    if (ev.type === "ChildStarted" && r.workflowId !== e.workflowId) mismatch("different child workflow id");
    if (ev.type === "PatchMarker" && r.patchId !== e.patchId) mismatch();
    if (this.opts.strict) {
      if ((ev.type === "ActivityScheduled" || ev.type === "ChildStarted") && !sameValue(r.input, e.input)) {
        mismatch("same step, different input (strict mode)");
      }
      if (ev.type === "TimerStarted" && r.durationMs !== e.durationMs)
        mismatch("different duration (strict mode)");
    }
    this.cursor++;
    this.lastSeq = rec.seq;
    return rec;
  }

  /** After the code settled, history must not hold further commands it did not produce. */
  private checkQuiescent(): void {
    const rec = this.history[this.cursor];
    if (!rec || isInbound(rec)) return;
    throw new NonDeterminismError({
      step: "step" in rec ? (rec.step as number) : this.stepCounter + 1,
      seq: rec.seq,
      recorded: describeEvent(rec),
      produced: this.closed ? "nothing (the run had already ended)" : "nothing (the code is waiting)",
    });
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  const x = encodeValue(a);
  const y = encodeValue(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function markUsed(step: Step<unknown>): void {
  // Consume the one-shot iterator so the same step object cannot also be yielded directly.
  const it = step[Symbol.iterator]();
  it.next();
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof Promise) return "a Promise";
  if (typeof v === "object") return `an object (${Object.prototype.toString.call(v)})`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}
