/**
 * The recorder: the one place where the engine writes history or checks the code against it.
 * Live, a command gets the next sequence number and the activation's timestamp; during replay it
 * must equal the recorded event at the cursor. Every NonDeterminismError is built here, so what a
 * divergence says is decided in one place.
 */
import { sameEncodedValue } from "../codec/msgpack-codec.ts";
import { NonDeterminismError } from "../errors.ts";
import { type EventDraft, type HistoryEvent, isInbound, type NewEvent } from "../history/events.ts";
import { describeEvent } from "./describe.ts";
import type { RunState } from "./run-state.ts";

export class Recorder {
  constructor(private readonly s: RunState) {}

  /** Records a command, or during replay checks it against the recorded one. */
  emit(ev: EventDraft): HistoryEvent {
    const s = this.s;
    if (s.isReplaying) return this.match(ev, undefined);
    // Every caller passes a fresh literal, so it is completed in place: a spread into a new object
    // runs on a slow path in V8 for this many event shapes. The keys end up in the spread's order.
    const full = ev as unknown as HistoryEvent;
    full.seq = s.lastSeq + 1;
    full.ts = s.stampTs ?? s.nowTs;
    s.lastSeq = full.seq;
    s.newEvents.push(full);
    return full;
  }

  /** Gives an inbound event its place in history (a copy: the caller's event is not ours to change). */
  recordInbound(e: NewEvent): HistoryEvent {
    const s = this.s;
    // Object.assign rather than a spread: see emit.
    const full = Object.assign({}, e) as unknown as HistoryEvent;
    full.seq = s.lastSeq + 1;
    s.lastSeq = full.seq;
    s.newEvents.push(full);
    return full;
  }

  /**
   * During replay: the recorded event at the cursor must be the command `ev` (same type, step,
   * name...). Consumes it and returns it. `what` names the command in the error when `ev` is only
   * a template (a side effect's value is not known before the match).
   */
  match(ev: EventDraft, what: string | undefined): HistoryEvent {
    const s = this.s;
    const rec = s.history[s.cursor] as HistoryEvent;
    const produced = what ?? describeEvent(ev as HistoryEvent);
    const step = "step" in ev ? (ev.step as number) : s.stepCounter;
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
    if (s.opts.strict) {
      if (
        (ev.type === "ActivityScheduled" || ev.type === "ChildStarted") &&
        !sameEncodedValue(r.input, e.input)
      ) {
        mismatch("same step, different input (strict mode)");
      }
      if (ev.type === "TimerStarted" && r.durationMs !== e.durationMs)
        mismatch("different duration (strict mode)");
    }
    this.consume(rec);
    return rec;
  }

  /** During replay: takes the recorded event at the cursor if it is `ev`-shaped per `is`, else nothing. */
  takeIf(is: (rec: HistoryEvent) => boolean): HistoryEvent | undefined {
    const s = this.s;
    const rec = s.history[s.cursor];
    if (!s.isReplaying || rec === undefined || !is(rec)) return undefined;
    this.consume(rec);
    return rec;
  }

  /** Moves the cursor past a recorded event. */
  consume(rec: HistoryEvent): void {
    this.s.cursor++;
    this.s.lastSeq = rec.seq;
  }

  /** After the code settled, history must not hold further commands it did not produce. */
  checkQuiescent(): void {
    const s = this.s;
    const rec = s.history[s.cursor];
    if (!rec || isInbound(rec)) return;
    throw new NonDeterminismError({
      step: "step" in rec ? (rec.step as number) : s.stepCounter + 1,
      seq: rec.seq,
      recorded: describeEvent(rec),
      produced: s.closed ? "nothing (the run had already ended)" : "nothing (the code is waiting)",
    });
  }

  /** History goes on after the run ended with something other than an inbound event. */
  afterEnd(rec: HistoryEvent): NonDeterminismError {
    return new NonDeterminismError({
      step: this.s.stepCounter,
      seq: rec.seq,
      recorded: describeEvent(rec),
      produced: "nothing (the run had already ended)",
    });
  }

  /** History holds a command where the code waits for an inbound event. */
  commandWhileWaiting(rec: HistoryEvent): NonDeterminismError {
    return new NonDeterminismError(
      {
        step: this.s.stepCounter,
        seq: rec.seq,
        recorded: describeEvent(rec),
        produced: "nothing (the code is waiting for an inbound event here)",
      },
      { hint: "History has a command where the code expected an activity result, timer, or signal." },
    );
  }
}
