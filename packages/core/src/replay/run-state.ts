/**
 * The explicit state of one run while the engine executes it: where it stands in history, what
 * each waiting fiber waits for, the signal buffer, query handlers, patches and how the run ended.
 * Every other engine module reads and changes the run through this one object, so what the engine
 * knows about a run is listed in one place.
 */
import type { Schema } from "../definitions/schema.ts";
import type { WorkflowDefinition } from "../definitions/workflow.ts";
import type { EventOf, HistoryEvent } from "../history/events.ts";
import type { ExecutorOptions, ExecutorStatus } from "./executor-options.ts";
import type { Fiber } from "./fiber.ts";

/** Executor options with their defaults filled in. */
export type ResolvedOptions = Required<Omit<ExecutorOptions, "log">> & Pick<ExecutorOptions, "log">;

/** One buffered signal: its payload and its arrival order across all names. */
export interface BufferedSignal {
  payload: unknown;
  order: number;
}

export class RunState {
  // ── Position in history ──
  /** The recorded history being replayed (then the point new events are appended after). */
  history: HistoryEvent[] = [];
  /** Index of the next recorded event to replay; at `history.length` the run is live. */
  cursor = 0;
  /** Events produced since the last `takeNewEvents`, with their seq assigned. */
  newEvents: HistoryEvent[] = [];
  lastSeq = 0;
  /** Workflow time: the timestamp of the event being processed. */
  nowTs = 0;
  /** Timestamp for commands produced by a live `apply` (the worker's clock at activation). */
  stampTs: number | undefined;
  /** The last step number handed out (steps are numbered in the order the code yields them). */
  stepCounter = 0;
  fiberCounter = 0;
  started: EventOf<"WorkflowStarted"> | null = null;

  // ── What fibers wait for ──
  /** The fiber waiting on each open step number. */
  readonly waitingSteps = new Map<number, Fiber>();
  /** Every fiber that has not ended. */
  readonly live = new Set<Fiber>();
  readonly signalWaiters = new Map<string, Fiber[]>();
  readonly signalBuffer = new Map<string, BufferedSignal[]>();
  signalOrder = 0;
  /** Payload schemas by signal name: the declared ones, else that of the first wait() on the name. */
  readonly signalSchemas = new Map<string, Schema>();
  readonly queryHandlers = new Map<string, () => unknown>();
  readonly patches = new Map<string, { value: boolean; callSite: string | undefined }>();

  // ── How the run stands ──
  status: ExecutorStatus = "running";
  closed = false;
  cancelRequested = false;
  /** The run's result (completed) or error (failed/cancelled). */
  result: unknown;
  error: unknown;
  /** The input of the next run (continued). */
  continueInput: unknown;
  /** The history-size warning was given. */
  warned = false;

  constructor(
    readonly definition: WorkflowDefinition,
    readonly workflowId: string,
    readonly runId: string,
    readonly opts: ResolvedOptions,
  ) {
    for (const sig of definition.signals ?? []) this.signalSchemas.set(sig.name, sig.schema);
  }

  /** True while recorded history is being replayed. */
  get isReplaying(): boolean {
    return this.cursor < this.history.length;
  }

  /** Hands out the next step number. */
  nextStep(): number {
    return ++this.stepCounter;
  }

  /** Makes `fiber` wait on a step number (an activity, timer or child). */
  waitOn(step: number, fiber: Fiber): void {
    this.waitingSteps.set(step, fiber);
  }
}
