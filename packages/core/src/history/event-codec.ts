/**
 * Between history events in memory and rows in storage. Position, time, type and step are plain
 * columns; every other field goes into one encoded body (msgpack, then the PayloadCodec), so
 * encryption at rest covers names, inputs, results and error messages alike.
 */
import type { InboxEvent, RawEvent } from "../backend/backend.ts";
import { isSerializedError } from "../codec/error-serialization.ts";
import type { DataConverter } from "../codec/payload-codec.ts";
import { HistoryCorruptError } from "../errors.ts";
import { eventChecks } from "./event-check.ts";
import { type EventType, type HistoryEvent, historyEventSchema } from "./events.ts";

/** The event fields that live in the body. */
function bodyOf(e: Record<string, unknown>): Record<string, unknown> | null {
  let body: Record<string, unknown> | null = null;
  for (const k in e) {
    if (k === "seq" || k === "ts" || k === "type" || k === "step") continue;
    body ??= {};
    body[k] = e[k];
  }
  return body;
}

/** Encodes the body of an event (null when it has no fields beyond type and step). */
export async function encodeEventBody(
  e: { type: EventType } & Record<string, unknown>,
  dc: DataConverter,
  what?: string,
): Promise<Uint8Array | null> {
  const body = bodyOf(e);
  if (body === null) return null;
  if (isSerializedError(body.error)) {
    // An error must always be recordable, whatever its stack: shrink it to fit rather than fail.
    return (await dc.encodeError(body.error, (error) => ({ ...body, error }), what ?? `${e.type} event`))
      .bytes;
  }
  return dc.isSync
    ? dc.encodeSync(body, what ?? `${e.type} event`)
    : await dc.encode(body, what ?? `${e.type} event`);
}

/** Event types whose events carry no fields beyond type and step: their body is null. */
export type BodilessEventType = "TimerFired" | "TimerCancelled" | "ActivityCancelled" | "ChildStartFailed";

/** An event of a type that always has a body, as a sender builds it (no position, time or step). */
export type BodiedEvent = { type: Exclude<EventType, BodilessEventType> } & Record<string, unknown>;

/**
 * Encodes the body of an event that always has one (a signal, a cancel request, an activity or
 * child outcome...): the typed form of {@link encodeEventBody} for senders, with no null to cast
 * away.
 */
export async function encodeBody(e: BodiedEvent, dc: DataConverter, what?: string): Promise<Uint8Array> {
  const bytes = await encodeEventBody(e, dc, what);
  // Unreachable for a well-typed caller: a bodied event has at least one field.
  if (bytes === null) throw new TypeError(`a ${e.type} event has no fields to encode`);
  return bytes;
}

/** Encodes a history event to its stored form. */
export async function encodeEvent(e: HistoryEvent, dc: DataConverter): Promise<RawEvent> {
  const rec = e as HistoryEvent & Record<string, unknown>;
  return {
    seq: e.seq,
    ts: e.ts,
    type: e.type,
    step: "step" in e ? e.step : null,
    body: await encodeEventBody(rec, dc),
  };
}

/**
 * Decodes a stored event and checks it against the event schema.
 * @throws HistoryCorruptError when the body cannot be decoded or the event is malformed.
 */
export async function decodeEvent(raw: RawEvent, dc: DataConverter, runId: string): Promise<HistoryEvent> {
  if (dc.isSync) return decodeEventSync(raw, dc, runId);
  let body: unknown = {};
  if (raw.body !== null) {
    try {
      body = await dc.decode(raw.body);
    } catch (err) {
      throw undecodable(raw, runId, err);
    }
  }
  return checkedEvent(raw, body, runId);
}

/**
 * Decodes a whole stored history, in order. With a synchronous DataConverter (no payload codec)
 * no event waits for a promise: 10,000 awaits cost more than the checks they would wrap.
 * @throws HistoryCorruptError for the first event whose body cannot be decoded or is malformed.
 */
export async function decodeHistory(
  raws: RawEvent[],
  dc: DataConverter,
  runId: string,
): Promise<HistoryEvent[]> {
  const out = new Array<HistoryEvent>(raws.length);
  if (dc.isSync) {
    for (let i = 0; i < raws.length; i++) out[i] = decodeEventSync(raws[i] as RawEvent, dc, runId);
  } else {
    for (let i = 0; i < raws.length; i++) out[i] = await decodeEvent(raws[i] as RawEvent, dc, runId);
  }
  return out;
}

function decodeEventSync(raw: RawEvent, dc: DataConverter, runId: string): HistoryEvent {
  let body: unknown = {};
  if (raw.body !== null) {
    try {
      body = dc.decodeSync(raw.body);
    } catch (err) {
      throw undecodable(raw, runId, err);
    }
  }
  return checkedEvent(raw, body, runId);
}

function undecodable(raw: RawEvent, runId: string, err: unknown): HistoryCorruptError {
  return new HistoryCorruptError(runId, raw.seq, `its body cannot be decoded (${errMsg(err)})`, {
    cause: err,
  });
}

/** Joins a decoded body and the row's columns into an event, and checks it against its type's schema. */
function checkedEvent(raw: RawEvent, body: unknown, runId: string): HistoryEvent {
  if (typeof body !== "object" || body === null) {
    throw new HistoryCorruptError(runId, raw.seq, "its body is not an object");
  }
  // Object.assign, not spread: with events of many shapes V8's spread falls back to a slow runtime
  // path (it cost more than the msgpack decode). Both copy the same own keys in the same order,
  // except an own `__proto__` key, which assign would turn into a prototype.
  const candidate: Record<string, unknown> = Object.hasOwn(body, "__proto__")
    ? { ...body }
    : Object.assign<Record<string, unknown>, object>({}, body);
  candidate.seq = raw.seq;
  candidate.ts = raw.ts;
  candidate.type = raw.type;
  if (raw.step !== null) candidate.step = raw.step;
  const matches = eventChecks.get(raw.type);
  if (matches === undefined) {
    throw new HistoryCorruptError(
      runId,
      raw.seq,
      `its type "${String(raw.type)}" is not a known event type (written by a newer version of Spool?)`,
    );
  }
  if (!matches(candidate)) {
    // The slow path names the problem, in zod's words; it is also the judge should the fast check
    // ever be stricter than the schema.
    const parsed = historyEventSchema.safeParse(candidate);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue !== undefined && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
      throw new HistoryCorruptError(
        runId,
        raw.seq,
        `it does not match the ${raw.type} event schema (${where}${issue?.message ?? "invalid"})`,
      );
    }
  }
  // Return the decoded object itself: zod's copy would drop class instances nested in unknown fields.
  return candidate as HistoryEvent;
}

/** Decodes an inbox event as a not-yet-positioned inbound event. */
export async function decodeInboxEvent(
  raw: InboxEvent,
  dc: DataConverter,
  runId: string,
): Promise<Omit<HistoryEvent, "seq">> {
  const e = await decodeEvent({ ...raw, seq: 1 }, dc, runId);
  const { seq: _seq, ...rest } = e;
  return rest as Omit<HistoryEvent, "seq">;
}

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
