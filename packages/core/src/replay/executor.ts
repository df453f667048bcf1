/**
 * The replay engine's entry point. A `WorkflowExecutor` runs one workflow run's code against its
 * history: it feeds the recorded inbound events (activity results, timer firings, signals...) to
 * the code in history order, checks at every step that the code produces exactly the recorded
 * commands, and, once history is exhausted, records what the code does next as new events.
 *
 * It is pure: no clock (time is the timestamp of the event being processed), no database, no
 * timers. The only awaits are the workflow generator's own, and those may take microtask turns
 * only (see settleWithinMicrotasks). The same (definition, history) therefore always yields the
 * same commands, which is what makes crash recovery by replay correct.
 *
 * This file owns the lifecycle (replayHistory, apply, takeNewEvents, query). The parts: the run's
 * state (run-state.ts), the recorder that writes and matches history (recorder.ts), the fiber
 * scheduler (scheduler.ts, whose order is documented there), one module per step kind (steps/),
 * how a run ends (run-end.ts) and the `ctx` object (context.ts).
 */
import type { QueryDefinition } from "../definitions/query.ts";
import type { Schema } from "../definitions/schema.ts";
import type { WorkflowContext, WorkflowDefinition } from "../definitions/workflow.ts";
import { InternalContractError, InvalidOptionsError, WorkflowCodeError } from "../errors.ts";
import {
  type EventOf,
  type HistoryEvent,
  type InboundEventType,
  isInbound,
  type NewEvent,
  RUN_LEVEL_EVENT_TYPES,
} from "../history/events.ts";
import { makeContext } from "./context.ts";
import {
  type ExecutorOptions,
  type ExecutorStatus,
  HISTORY_LIMIT,
  HISTORY_WARN_AT,
} from "./executor-options.ts";
import { Recorder } from "./recorder.ts";
import { checkHistorySize } from "./run-end.ts";
import { RunState } from "./run-state.ts";
import { Scheduler } from "./scheduler.ts";
import { feedInbound } from "./steps/index.ts";
import { checkSignal } from "./steps/signal-wait.ts";
import { startExecutionTimeout } from "./steps/timer.ts";

export * from "./executor-options.ts";

/** An inbound event that has not been recorded yet (from the inbox; never a SignalRejected). */
export type NewInboundEvent = Extract<NewEvent, { type: Exclude<InboundEventType, "SignalRejected"> }>;

/**
 * Executes one run of a workflow against its history. Create it, call `replayHistory` with the
 * recorded events, then `apply` new inbound events; `takeNewEvents` returns what to append.
 * Throws NonDeterminismError / WorkflowAwaitError / code-bug errors: the caller parks the run.
 */
export class WorkflowExecutor<I extends Schema = Schema, O extends Schema = Schema> {
  readonly workflowId: string;
  readonly runId: string;
  readonly ctx: WorkflowContext;
  private readonly s: RunState;
  private readonly rec: Recorder;
  private readonly sched: Scheduler;
  private poisoned: unknown = undefined;

  constructor(
    readonly definition: WorkflowDefinition<I, O>,
    options: ExecutorOptions,
  ) {
    this.workflowId = options.workflowId;
    this.runId = options.runId;
    this.s = new RunState(definition as unknown as WorkflowDefinition, options.workflowId, options.runId, {
      strict: false,
      historyWarnAt: HISTORY_WARN_AT,
      historyLimit: HISTORY_LIMIT,
      maxMicrotaskTurns: 10_000,
      defaultActivityTimeoutMs: 5 * 60_000,
      ...options,
    });
    this.rec = new Recorder(this.s);
    this.sched = new Scheduler(this.s, this.rec);
    this.ctx = makeContext(this.s);
  }

  /** Run state as the engine sees it. */
  get status(): ExecutorStatus {
    return this.s.status;
  }
  /** The run's result (completed). */
  get result(): unknown {
    return this.s.result;
  }
  /** The run's error (failed/cancelled). */
  get error(): unknown {
    return this.s.error;
  }
  /** The input of the next run (continued). */
  get continueInput(): unknown {
    return this.s.continueInput;
  }

  /** True while recorded history is being replayed. */
  get isReplaying(): boolean {
    return this.s.isReplaying;
  }

  /** Sequence number of the last event, recorded or new. */
  get seq(): number {
    return this.s.lastSeq;
  }

  /**
   * Signals received and recorded but not yet taken by `signal.wait()`. The worker records it
   * with each activation so the backend can cap a run's unconsumed signals (maxBufferedSignals).
   */
  get bufferedSignalCount(): number {
    let n = 0;
    for (const items of this.s.signalBuffer.values()) n += items.length;
    return n;
  }

  /** True once the run has ended (completed, failed, cancelled or continued). */
  get isClosed(): boolean {
    return this.s.closed;
  }

  /**
   * Replays recorded history (which must start with WorkflowStarted). Commands the code produces
   * beyond the end of history become new events.
   */
  async replayHistory(events: readonly HistoryEvent[]): Promise<void> {
    this.assertUsable();
    const s = this.s;
    if (this.sched.root) throw new InternalContractError("replayHistory() can be called once per executor");
    const first = events[0];
    if (first?.type !== "WorkflowStarted") {
      throw new InvalidOptionsError("a history must start with a WorkflowStarted event");
    }
    if (first.workflowName !== this.definition.name) {
      throw new InvalidOptionsError(
        `history is of workflow "${first.workflowName}" but the definition is "${this.definition.name}"`,
      );
    }
    s.history = events.slice();
    s.started = first;
    s.cursor = 1;
    s.lastSeq = first.seq;
    s.nowTs = first.ts;
    try {
      this.startRoot(first);
      await this.sched.runQueue();
      while (s.cursor < s.history.length) {
        this.rec.checkQuiescent();
        const rec = s.history[s.cursor] as HistoryEvent;
        this.rec.consume(rec);
        if (s.closed && isInbound(rec)) continue; // arrived after the end: recorded, not delivered
        if (s.closed) throw this.rec.afterEnd(rec);
        s.nowTs = rec.ts;
        this.feed(rec);
        // Events recorded as delivered in the same turn (see apply) are fed before any branch runs.
        for (let next = s.history[s.cursor]; !s.closed && isTogether(next); next = s.history[s.cursor]) {
          this.rec.consume(next);
          s.nowTs = next.ts;
          this.feed(next);
        }
        await this.sched.runQueue();
      }
      this.rec.checkQuiescent();
    } catch (err) {
      this.poisoned = err;
      throw err;
    }
  }

  /**
   * Feeds new inbound events (live, after history); `now` stamps the commands produced. Returns the
   * indices (into `events`) of the events this run consumed; the others, left after
   * continue-as-new, belong to the next run (the backend moves them there).
   *
   * Signals are delivered before the workflow may close (Temporal's rule): every signal and cancel
   * request of the activation is delivered first, all in one turn — to its waiter or into the
   * buffer — before any branch runs; then the step results, one at a time in arrival order. So a
   * workflow that returns after a step result has seen every signal that arrived with it, and no
   * signal is ever recorded after the run's end. Each event of that turn after the first is marked
   * `together`, so replay delivers the same group in the same turn. A step result that arrives after
   * the run ended has nothing waiting for it: it is consumed but not recorded.
   */
  async apply(events: readonly NewInboundEvent[], now?: number): Promise<number[]> {
    this.assertUsable();
    if (!this.sched.root) throw new InternalContractError("apply() needs replayHistory() first");
    const s = this.s;
    s.stampTs = now;
    const consumed: number[] = [];
    try {
      let inTurn = 0;
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as NewInboundEvent;
        if (!RUN_LEVEL_EVENT_TYPES.has(e.type)) continue;
        if (s.closed && s.status === "continued") break;
        const full = this.rec.recordInbound(checkSignal(e, this.sched));
        if (inTurn++ > 0) (full as { together?: true }).together = true;
        consumed.push(i);
        // Already ended (the history limit): recorded, so nothing acknowledged is lost, not delivered.
        if (s.closed) continue;
        s.nowTs = full.ts;
        this.feed(full);
      }
      if (inTurn > 0) await this.sched.runQueue();
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as NewInboundEvent;
        if (RUN_LEVEL_EVENT_TYPES.has(e.type)) continue;
        if (s.closed && s.status === "continued") break;
        consumed.push(i);
        if (s.closed) continue;
        const full = this.rec.recordInbound(e);
        s.nowTs = full.ts;
        this.feed(full);
        await this.sched.runQueue();
      }
    } catch (err) {
      this.poisoned = err;
      throw err;
    } finally {
      s.stampTs = undefined;
    }
    return consumed;
  }

  /** Returns and forgets the events produced since the last call (in order, with seq assigned). */
  takeNewEvents(): HistoryEvent[] {
    const out = this.s.newEvents;
    this.s.newEvents = [];
    return out;
  }

  /** Peeks at the events produced since the last `takeNewEvents`. */
  peekNewEvents(): readonly HistoryEvent[] {
    return this.s.newEvents;
  }

  /** Answers a query from the run's current state. */
  query<T>(query: QueryDefinition<T> | string): T {
    const name = typeof query === "string" ? query : query.name;
    const handler = this.s.queryHandlers.get(name);
    if (!handler) {
      throw new WorkflowCodeError(
        `workflow "${this.definition.name}" has no handler for query "${name}"; register one with ctx.onQuery(${name}, () => ...)`,
      );
    }
    return handler() as T;
  }

  private assertUsable(): void {
    if (this.poisoned !== undefined) {
      throw new InternalContractError(
        "this executor failed earlier and cannot be used; replay from history",
        {
          cause: this.poisoned,
        },
      );
    }
  }

  private startRoot(started: EventOf<"WorkflowStarted">): void {
    startExecutionTimeout(started, this.sched);
    this.sched.startRoot(this.definition.fn(started.input as never, this.ctx) as never);
  }

  /** Feeds one recorded or new inbound event (a command here is a divergence). */
  private feed(e: HistoryEvent): void {
    checkHistorySize(this.sched);
    if (this.s.closed) return;
    if (!feedInbound(e, this.sched)) throw this.rec.commandWhileWaiting(e);
  }
}

/** True for an inbound event recorded as delivered in the same turn as the one before it. */
function isTogether(e: HistoryEvent | undefined): e is HistoryEvent {
  // Only run-level events carry the mark: compare the type first (cheap on every event).
  if (e === undefined) return false;
  const t = e.type;
  if (t !== "SignalReceived" && t !== "CancelRequested" && t !== "SignalRejected") return false;
  return e.together === true;
}
