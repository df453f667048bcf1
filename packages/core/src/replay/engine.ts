/**
 * `replay()`: the engine as one pure function of (workflow definition, input, history) →
 * (new commands, status). Used by tests, `replayHistory` and the CLI; the worker uses the
 * incremental WorkflowExecutor underneath to keep live runs cached.
 */
import type { Schema } from "../definitions/schema.ts";
import type { WorkflowDefinition } from "../definitions/workflow.ts";
import { InvalidOptionsError } from "../errors.ts";
import { type HistoryEvent, isInbound } from "../history/events.ts";
import {
  type ExecutorOptions,
  type ExecutorStatus,
  type NewInboundEvent,
  WorkflowExecutor,
} from "./executor.ts";

/** The outcome of a replay. */
export interface ReplayResult {
  status: ExecutorStatus;
  /** Events to append after the given history (inbound events fed plus the commands produced), seq assigned. */
  newEvents: HistoryEvent[];
  /** The commands among `newEvents` (what the code asked for). */
  commands: HistoryEvent[];
  result?: unknown;
  error?: unknown;
  /** The executor, positioned after the replay (for queries and further events). */
  executor: WorkflowExecutor;
}

/** Options of `replay`. */
export interface ReplayOptions extends Partial<ExecutorOptions> {
  /** Inbound events to apply after the history, as a worker would from the inbox. */
  apply?: NewInboundEvent[];
  /** Timestamp for the commands produced by `apply`. */
  now?: number;
}

/**
 * Replays `history` with `definition` and returns the commands the code produces beyond it.
 *
 * `input` is the run's input; when `history` is empty a WorkflowStarted event is made from it
 * (at time `options.now ?? 0`), so a fresh run can be simulated from nothing.
 *
 * @throws NonDeterminismError when the code diverges from history; WorkflowAwaitError when the
 * code awaits something that is not a step; the code's own TypeError/ReferenceError.
 * @example
 * ```ts
 * const { commands, status } = await replay(order, { id: "o-1", total: 42 }, history);
 * ```
 */
export async function replay<I extends Schema, O extends Schema>(
  definition: WorkflowDefinition<I, O>,
  input: unknown,
  history: readonly HistoryEvent[],
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const started = history[0];
  if (started && started.type !== "WorkflowStarted") {
    throw new InvalidOptionsError("a history must start with a WorkflowStarted event");
  }
  const events: HistoryEvent[] =
    history.length > 0
      ? history.slice()
      : [{ type: "WorkflowStarted", seq: 1, ts: options.now ?? 0, workflowName: definition.name, input }];
  const ex = new WorkflowExecutor(definition, {
    workflowId: options.workflowId ?? "replay",
    runId: options.runId ?? "replay",
    ...options,
  });
  await ex.replayHistory(events);
  if (options.apply?.length) await ex.apply(options.apply, options.now);
  const newEvents = ex.takeNewEvents();
  return {
    status: ex.status,
    newEvents,
    commands: newEvents.filter((e) => !isInbound(e)),
    result: ex.result,
    error: ex.error,
    executor: ex as unknown as WorkflowExecutor,
  };
}
