/**
 * Between history events in memory and rows in storage. Position, time, type and step are plain
 * columns; every other field goes into one encoded body (msgpack, then the PayloadCodec), so
 * encryption at rest covers names, inputs, results and error messages alike.
 */
import type { InboxEvent, RawEvent } from "../backend/backend.ts";
import { isSerializedError } from "../codec/error-serialization.ts";
import { encodeValue } from "../codec/msgpack-codec.ts";
import { msgpackMapFields } from "../codec/msgpack-fields.ts";
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

/**
 * The body of an inbound event as it was stored (in the inbox, or as an activity outcome was
 * encoded for it), kept with the event it was decoded into or encoded from.
 */
export interface StoredBody {
  event: object;
  body: Uint8Array | null;
}

/**
 * Encodes a history event to its stored form.
 *
 * @param stored - the inbound events just applied, with their bodies as stored: an event that
 *   records one of them (same type and step, and the same body fields — keys in order, the very
 *   same values) is given that body as is, rather than encoded again.
 */
export async function encodeEvent(
  e: HistoryEvent,
  dc: DataConverter,
  stored?: readonly StoredBody[],
): Promise<RawEvent> {
  const rec = e as HistoryEvent & Record<string, unknown>;
  const step = "step" in e ? e.step : null;
  if (stored !== undefined) {
    for (const s of stored) {
      const from = s.event as Record<string, unknown>;
      if (from.type === e.type && (from.step ?? null) === step && sameBodyFields(rec, from)) {
        return { seq: e.seq, ts: e.ts, type: e.type, step, body: s.body };
      }
    }
  }
  return { seq: e.seq, ts: e.ts, type: e.type, step, body: await encodeEventBody(rec, dc) };
}

/** True when `a` and `b` have the same body fields (keys in order, identical values). */
function sameBodyFields(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  let n = 0;
  for (const k in a) {
    if (k === "seq" || k === "ts" || k === "type" || k === "step") continue;
    if (!Object.hasOwn(b, k) || !Object.is(a[k], b[k])) return false;
    n++;
  }
  for (const k in b) {
    if (k === "seq" || k === "ts" || k === "type" || k === "step") continue;
    n--;
  }
  return n === 0;
}

/**
 * A history event encoded once, with some of its body fields also as payloads of their own.
 * `bodyMsgpack` is the body before the payload codec, for a body of the same fields stored
 * elsewhere (a ChildCompleted event in the parent's inbox carries its child's `{ result }`).
 */
export interface EncodedEventWithFields<K extends string> {
  event: RawEvent;
  fields: Record<K, Uint8Array>;
  bodyMsgpack: Uint8Array;
}

/**
 * Encodes a history event and, from the same bytes, the named fields of its body as payloads of
 * their own (an activity's input for its task, a run's result for its row): each value is checked
 * and serialized once, and each payload is a slice of the body's msgpack sealed by the payload
 * codec. The stored bytes are those of `encodeEvent` and of `dc.encode(field)`: msgpack writes a
 * map's values exactly as it writes them alone (see msgpack-fields.ts).
 *
 * @param fields - field name → what the field's payload is called in errors (e.g. its size).
 * @throws what `encodeEvent` throws first, then what `dc.encode` throws for a field.
 */
export async function encodeEventWithFields<K extends string>(
  e: HistoryEvent,
  dc: DataConverter,
  fields: Record<K, string>,
): Promise<EncodedEventWithFields<K>> {
  const rec = e as HistoryEvent & Record<string, unknown>;
  const body = bodyOf(rec) ?? {};
  if (isSerializedError(body.error)) {
    // An error body is shrunk to fit (see encodeEventBody): its fields are encoded on their own.
    const event = await encodeEvent(e, dc);
    const out = {} as Record<K, Uint8Array>;
    for (const key in fields) out[key] = await dc.encode(body[key], fields[key]);
    return { event, fields: out, bodyMsgpack: encodeValue(body) };
  }
  const what = `${e.type} event`;
  const bodyMsgpack = encodeValue(body, what);
  const event: RawEvent = {
    seq: e.seq,
    ts: e.ts,
    type: e.type,
    step: "step" in e ? e.step : null,
    body: dc.isSync ? dc.sealSync(bodyMsgpack, what) : await dc.seal(bodyMsgpack, what),
  };
  const keys = Object.keys(fields) as K[];
  const cut = msgpackMapFields(bodyMsgpack, keys);
  const out = {} as Record<K, Uint8Array>;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as K;
    const fieldWhat = fields[key];
    const msgpack = cut[i];
    // Unreachable for an event that has the field; encoded alone rather than failing if not.
    if (msgpack === undefined) out[key] = await dc.encode(body[key], fieldWhat);
    else out[key] = dc.isSync ? dc.sealSync(msgpack, fieldWhat) : await dc.seal(msgpack, fieldWhat);
  }
  return { event, fields: out, bodyMsgpack };
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
