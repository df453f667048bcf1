/**
 * A typed builder of decoded histories, for tests: it gives each event its position (`seq`), its
 * workflow time (`ts`) and, for the commands that start a step, the next step number — the way the
 * engine records them — so an engine test can write the history it replays in one readable chain
 * instead of numbering event literals by hand.
 *
 * Time follows the engine's rule: an inbound event (a result, a fired timer, a signal) moves
 * workflow time forward by `tickMs`; the commands recorded after it carry its time.
 */
import { type SerializedError, serializeError } from "../codec/error-serialization.ts";
import type { WorkflowDefinition } from "../definitions/workflow.ts";
import { defaultRetryPolicy, encodeRetryPolicy } from "../retry-policy.ts";
import type { EventDraft, EventOf, HistoryEvent, RecordedActivityOptions } from "./events.ts";
import { isInbound } from "./events.ts";
import { workflowStartedFields } from "./started-event.ts";

/** Where a built history starts and how fast its workflow time moves. */
export interface HistoryBuilderOptions {
  /** Workflow time of the first event, in ms (default 0). */
  startTs?: number;
  /** How far each inbound event moves workflow time, in ms (default 1). */
  tickMs?: number;
}

/** The options an activity scheduled without any records (the engine's default timeout: 5 minutes). */
const DEFAULT_ACTIVITY_OPTIONS: RecordedActivityOptions = {
  retry: encodeRetryPolicy(defaultRetryPolicy),
  timeoutMs: 5 * 60_000,
  heartbeatTimeoutMs: 0,
};

/** An error as history records it: a thrown value is serialised, a serialised one kept. */
const recordedError = (error: Error | SerializedError): SerializedError =>
  error instanceof Error ? serializeError(error) : error;

/**
 * Builds a history event by event. Each method appends one event and returns the builder;
 * {@link HistoryBuilder.build} returns the events. Commands that start a step (activity, timer,
 * child, side effect) take the next step number; events that answer a step take it as argument.
 * The builder does not run workflow code: the history is only as faithful as the chain that
 * describes it (replay is what checks it against the code).
 *
 * @example
 * ```ts
 * const history = historyOf("order", { id: "o1" })
 *   .activityScheduled("payments.charge", { orderId: "o1" }) // step 1
 *   .activityCompleted(1, { chargeId: "ch_1" })
 *   .timerStarted(600_000) // step 2
 *   .build();
 * const r = await replay(order, undefined, history);
 * ```
 */
export class HistoryBuilder {
  private readonly events: HistoryEvent[] = [];
  private ts: number;
  private readonly tickMs: number;
  private step = 0;

  constructor(options: HistoryBuilderOptions = {}) {
    this.ts = options.startTs ?? 0;
    this.tickMs = options.tickMs ?? 1;
  }

  /** The step number the last step-starting command took (0 before any). */
  get lastStep(): number {
    return this.step;
  }

  /** The workflow time the next command gets. */
  get now(): number {
    return this.ts;
  }

  /** Sets workflow time for the events that follow (e.g. an inbound event that came much later). */
  at(ts: number): this {
    this.ts = ts;
    return this;
  }

  /**
   * Appends any event. A command keeps the current time; an inbound event first moves time by
   * `tickMs`, unless it gives its own `ts`. Prefer the named methods; this is for the odd case.
   */
  event(draft: EventDraft & { ts?: number }): this {
    if (draft.ts !== undefined) this.ts = draft.ts;
    else if (isInbound(draft)) this.ts += this.tickMs;
    this.events.push({ ...draft, seq: this.events.length + 1, ts: this.ts } as HistoryEvent);
    return this;
  }

  /**
   * WorkflowStarted. Given a definition, its version and execution timeout are recorded as a
   * client start records them (the execution-timeout timer, if any, is for the chain to add).
   */
  started(
    workflow: string | WorkflowDefinition,
    input: unknown,
    extra: Pick<EventOf<"WorkflowStarted">, "parent" | "continuedFrom"> = {},
  ): this {
    const name = typeof workflow === "string" ? workflow : workflow.name;
    const def = typeof workflow === "string" ? undefined : workflow;
    return this.event(workflowStartedFields(name, def, input, extra));
  }

  /** ActivityScheduled at the next step; options default to what an activity without any records. */
  activityScheduled(
    activity: string | { readonly name: string },
    input: unknown,
    options: RecordedActivityOptions = DEFAULT_ACTIVITY_OPTIONS,
  ): this {
    const name = typeof activity === "string" ? activity : activity.name;
    return this.event({ type: "ActivityScheduled", step: ++this.step, name, input, options });
  }

  /** ActivityCompleted of `step`. */
  activityCompleted(step: number, result: unknown, attempt = 1): this {
    return this.event({ type: "ActivityCompleted", step, result, attempt });
  }

  /** ActivityFailed of `step` (default: retries exhausted on the first attempt). */
  activityFailed(
    step: number,
    error: Error | SerializedError,
    opts: { attempt?: number; reason?: EventOf<"ActivityFailed">["reason"] } = {},
  ): this {
    return this.event({
      type: "ActivityFailed",
      step,
      error: recordedError(error),
      attempt: opts.attempt ?? 1,
      reason: opts.reason ?? "retries-exhausted",
    });
  }

  /** ActivityCancelled of `step` (the code withdrew it). */
  activityCancelled(step: number): this {
    return this.event({ type: "ActivityCancelled", step });
  }

  /** TimerStarted at the next step, due `durationMs` after the current time. */
  timerStarted(durationMs: number): this {
    return this.event({ type: "TimerStarted", step: ++this.step, dueAt: this.ts + durationMs, durationMs });
  }

  /** TimerFired of `step` (one tick later; `.at(dueAt)` first to fire it at its due time). */
  timerFired(step: number): this {
    return this.event({ type: "TimerFired", step });
  }

  /** TimerCancelled of `step`. */
  timerCancelled(step: number): this {
    return this.event({ type: "TimerCancelled", step });
  }

  /** SignalReceived. */
  signalReceived(name: string, payload: unknown): this {
    return this.event({ type: "SignalReceived", name, payload });
  }

  /** CancelRequested. */
  cancelRequested(reason: string): this {
    return this.event({ type: "CancelRequested", reason });
  }

  /** ChildStarted at the next step. */
  childStarted(name: string, workflowId: string, input: unknown): this {
    return this.event({ type: "ChildStarted", step: ++this.step, name, workflowId, input });
  }

  /** ChildCompleted of `step`. */
  childCompleted(step: number, result: unknown): this {
    return this.event({ type: "ChildCompleted", step, result });
  }

  /** ChildFailed of `step`. */
  childFailed(step: number, error: Error | SerializedError): this {
    return this.event({ type: "ChildFailed", step, error: recordedError(error) });
  }

  /** SideEffect at the next step, with its recorded value. */
  sideEffect(value: unknown): this {
    return this.event({ type: "SideEffect", step: ++this.step, value });
  }

  /** PatchMarker: the run took the patched path of `patchId`. */
  patchMarker(patchId: string): this {
    return this.event({ type: "PatchMarker", patchId });
  }

  /** WorkflowCompleted. */
  completed(result: unknown): this {
    return this.event({ type: "WorkflowCompleted", result });
  }

  /** WorkflowFailed. */
  failed(error: Error | SerializedError): this {
    return this.event({ type: "WorkflowFailed", error: recordedError(error) });
  }

  /** The events so far (a copy: the builder can go on). */
  build(): HistoryEvent[] {
    return [...this.events];
  }
}

/**
 * A history that begins with WorkflowStarted of `workflow` with `input`: the usual start of a
 * {@link HistoryBuilder} chain. A testing aid; production code never builds histories.
 *
 * @example
 * ```ts
 * const history = historyOf(order, { id: "o1" }, { startTs: 1_000 }).activityScheduled(charge, { orderId: "o1" }).build();
 * ```
 */
export function historyOf(
  workflow: string | WorkflowDefinition,
  input: unknown,
  options: HistoryBuilderOptions = {},
): HistoryBuilder {
  return new HistoryBuilder(options).started(workflow, input);
}
