/**
 * Between history events in memory and rows in storage. Position, time, type and step are plain
 * columns; every other field goes into one encoded body (msgpack, then the PayloadCodec), so
 * encryption at rest covers names, inputs, results and error messages alike.
 */
import type { InboxEvent, RawEvent } from "../backend/backend.ts";
import type { DataConverter } from "../codec/payload-codec.ts";
import { HistoryCorruptError } from "../errors.ts";
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
  return dc.isSync
    ? dc.encodeSync(body, what ?? `${e.type} event`)
    : await dc.encode(body, what ?? `${e.type} event`);
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
  let body: unknown = {};
  if (raw.body !== null) {
    try {
      body = dc.isSync ? dc.decodeSync(raw.body) : await dc.decode(raw.body);
    } catch (err) {
      throw new HistoryCorruptError(runId, raw.seq, `its body cannot be decoded (${errMsg(err)})`, {
        cause: err,
      });
    }
  }
  if (typeof body !== "object" || body === null) {
    throw new HistoryCorruptError(runId, raw.seq, "its body is not an object");
  }
  const candidate: Record<string, unknown> = {
    ...(body as object),
    seq: raw.seq,
    ts: raw.ts,
    type: raw.type,
  };
  if (raw.step !== null) candidate.step = raw.step;
  const parsed = historyEventSchema.safeParse(candidate);
  if (!parsed.success) {
    throw new HistoryCorruptError(
      runId,
      raw.seq,
      `it does not match the ${raw.type} event schema (${parsed.error.issues[0]?.message ?? "invalid"})`,
    );
  }
  // Return the decoded object itself: zod's copy would drop class instances nested in unknown fields.
  return candidate as HistoryEvent;
}

/** Decodes a whole stored history, in order. */
export async function decodeHistory(
  raws: RawEvent[],
  dc: DataConverter,
  runId: string,
): Promise<HistoryEvent[]> {
  const out = new Array<HistoryEvent>(raws.length);
  for (let i = 0; i < raws.length; i++) out[i] = await decodeEvent(raws[i] as RawEvent, dc, runId);
  return out;
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
