/**
 * A tiny simulated worker for pure engine tests: starts a run, feeds inbound events, records the
 * full history — no database, no clock, no timers.
 */
import {
  type DistributiveOmit,
  type HistoryEvent,
  historyOf,
  type NewInboundEvent,
  replay,
  type Schema,
  type WorkflowDefinition,
  WorkflowExecutor,
} from "../../src/index.ts";

/** A run driven by hand. */
export class Sim {
  readonly history: HistoryEvent[] = [];
  /** Commands (and fed events) produced by the last start/feed. */
  last: HistoryEvent[] = [];
  private constructor(
    readonly def: WorkflowDefinition,
    readonly ex: WorkflowExecutor,
  ) {}

  static async start<I extends Schema, O extends Schema>(
    def: WorkflowDefinition<I, O>,
    input: unknown,
    opts: { runId?: string; ts?: number; strict?: boolean; started?: Partial<HistoryEvent> } = {},
  ): Promise<Sim> {
    const ex = new WorkflowExecutor(def as WorkflowDefinition, {
      workflowId: "wf-1",
      runId: opts.runId ?? "run-1",
      strict: opts.strict,
    });
    const [first] = historyOf(def.name, input, { startTs: opts.ts ?? 1_000 }).build();
    const started = { ...first, ...opts.started } as HistoryEvent;
    await ex.replayHistory([started]);
    const sim = new Sim(def as WorkflowDefinition, ex);
    sim.history.push(started);
    sim.collect();
    return sim;
  }

  private collect(): void {
    this.last = this.ex.takeNewEvents();
    this.history.push(...this.last);
  }

  /** Feeds inbound events (ts defaults to the previous event's ts + 1). */
  async feed(
    ...events: (DistributiveOmit<NewInboundEvent, "ts"> & { ts?: number })[]
  ): Promise<HistoryEvent[]> {
    let ts = this.history[this.history.length - 1]?.ts ?? 0;
    const full = events.map((e) => ({ ...e, ts: e.ts ?? ++ts }) as NewInboundEvent);
    await this.ex.apply(full);
    this.collect();
    return this.last;
  }

  complete(step: number, result: unknown, attempt = 1) {
    return this.feed({ type: "ActivityCompleted", step, result, attempt });
  }

  commands(): string[] {
    return this.last.filter((e) => !inboundTypes.has(e.type)).map(short);
  }

  get status() {
    return this.ex.status;
  }
}

const inboundTypes = new Set([
  "ActivityCompleted",
  "ActivityFailed",
  "TimerFired",
  "SignalReceived",
  "ChildCompleted",
  "ChildFailed",
  "ChildStartFailed",
  "CancelRequested",
]);

/** A compact description of an event for assertions, e.g. `ActivityScheduled:2:charge`. */
export function short(e: HistoryEvent): string {
  const r = e as Record<string, unknown>;
  return [e.type, r.step, r.name ?? r.patchId].filter((x) => x !== undefined).join(":");
}

/** Replays a complete history from scratch and returns what the engine says. */
export function replayFresh(def: WorkflowDefinition, history: HistoryEvent[], strict = false) {
  return replay(def, undefined, history, { runId: "run-1", workflowId: "wf-1", strict });
}
