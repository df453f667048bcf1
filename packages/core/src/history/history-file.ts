/**
 * History files: a run's history as a portable JSON document that `replayHistory`, golden-history
 * tests and the CLI read as-is. Position, time, type and step stay readable; every other field of
 * an event is the base64 of Spool's msgpack encoding, so Date, Map, Set, BigInt, undefined and
 * Uint8Array round-trip exactly. A `note` per event describes it for humans and is ignored on read.
 *
 * ```json
 * { "format": "spool-history", "version": 1, "workflowId": "order-1", "runId": "01J...",
 *   "workflowName": "order.process", "events": [ { "seq": 1, "ts": 1704067200000,
 *   "type": "WorkflowStarted", "body": "gqx3b3Jr...", "note": "WorkflowStarted" } ] }
 * ```
 */
import { fromBase64, toBase64 } from "../codec/base64.ts";
import { decodeValue, encodeValue } from "../codec/msgpack-codec.ts";
import { HistoryFileError } from "../errors.ts";
import { describeEvent } from "../replay/describe.ts";
import { type HistoryEvent, historyEventSchema } from "./events.ts";

/** The identity of the run a history belongs to. */
export interface HistoryFileMeta {
  workflowId: string;
  /** The run id: `ctx.random()`/`ctx.uuid()` are seeded from it, so replay needs the original. */
  runId: string;
  /** Default: the name in the WorkflowStarted event. */
  workflowName?: string;
}

/** One event as stored in a history file. */
export interface HistoryFileEvent {
  seq: number;
  ts: number;
  type: HistoryEvent["type"];
  step?: number;
  /** base64 of the msgpack encoding of the other fields (absent when there are none). */
  body?: string;
  /** Human-readable description; ignored when reading. */
  note?: string;
}

/**
 * A history file (format "spool-history", version 1), as JSON.
 *
 * @example
 * ```ts
 * const file = JSON.parse(await env.exportHistory("order-1")) as HistoryFile;
 * console.log(file.events.map((e) => e.note));
 * ```
 */
export interface HistoryFile {
  format: "spool-history";
  version: 1;
  workflowId: string;
  runId: string;
  workflowName: string;
  exportedAt?: string;
  events: HistoryFileEvent[];
}

/** A history read from a file. */
export interface ParsedHistory {
  workflowId: string;
  runId: string;
  workflowName: string;
  events: HistoryEvent[];
}

function bodyOf(e: HistoryEvent): Record<string, unknown> | null {
  let body: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(e)) {
    if (k === "seq" || k === "ts" || k === "type" || k === "step") continue;
    body ??= {};
    body[k] = v;
  }
  return body;
}

/**
 * Serialises a history as a history file (JSON text, one event per line).
 *
 * @throws HistoryFileError when the history is empty or does not start with WorkflowStarted.
 * @example
 * ```ts
 * const text = exportHistory(await handle.history(), { workflowId: handle.workflowId, runId: handle.runId! });
 * fs.writeFileSync("test/histories/order-v1.json", text);
 * ```
 */
export function exportHistory(events: readonly HistoryEvent[], meta: HistoryFileMeta): string {
  const first = events[0];
  if (first?.type !== "WorkflowStarted") {
    throw new HistoryFileError("exportHistory: a history must start with a WorkflowStarted event");
  }
  const head: Omit<HistoryFile, "events"> = {
    format: "spool-history",
    version: 1,
    workflowId: meta.workflowId,
    runId: meta.runId,
    workflowName: meta.workflowName ?? first.workflowName,
    exportedAt: new Date().toISOString(),
  };
  const rows = events.map((e) => {
    const row: HistoryFileEvent = { seq: e.seq, ts: e.ts, type: e.type };
    if ("step" in e) row.step = e.step;
    const body = bodyOf(e);
    if (body) row.body = toBase64(encodeValue(body, `event #${e.seq}`));
    row.note = describeEvent(e);
    return `    ${JSON.stringify(row)}`;
  });
  const headText = JSON.stringify(head, null, 2).replace(/\n}$/, "");
  return `${headText},\n  "events": [\n${rows.join(",\n")}\n  ]\n}\n`;
}

/**
 * Reads a history file.
 *
 * @throws HistoryFileError for text that is not JSON, another format or version, or an event that
 *   cannot be decoded or fails the event schema (naming its sequence number).
 * @example
 * ```ts
 * const { events, runId } = parseHistoryFile(fs.readFileSync("test/histories/order-v1.json", "utf8"));
 * ```
 */
export function parseHistoryFile(text: string): ParsedHistory {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new HistoryFileError(`not a history file: the text is not JSON (${(err as Error).message})`);
  }
  return parseHistoryDocument(doc);
}

/** Reads an already-parsed history file object. @throws HistoryFileError */
export function parseHistoryDocument(doc: unknown): ParsedHistory {
  const d = doc as Partial<HistoryFile> | null;
  if (typeof d !== "object" || d === null || d.format !== "spool-history") {
    throw new HistoryFileError('not a history file: expected { "format": "spool-history", ... }');
  }
  if (d.version !== 1) {
    throw new HistoryFileError(
      `history file version ${String(d.version)} is not supported (this release reads version 1)`,
    );
  }
  if (typeof d.workflowId !== "string" || typeof d.runId !== "string" || !Array.isArray(d.events)) {
    throw new HistoryFileError("history file: workflowId, runId and events are required");
  }
  const events: HistoryEvent[] = d.events.map((row, i) => {
    const where = `history file event ${i + 1}`;
    if (typeof row !== "object" || row === null) throw new HistoryFileError(`${where} is not an object`);
    let body: unknown = {};
    if (row.body !== undefined) {
      try {
        body = decodeValue(fromBase64(row.body));
      } catch (err) {
        throw new HistoryFileError(
          `${where} (#${row.seq}, ${String(row.type)}): its body cannot be decoded (${(err as Error).message})`,
        );
      }
    }
    const candidate: Record<string, unknown> = {
      ...(body as object),
      seq: row.seq,
      ts: row.ts,
      type: row.type,
    };
    if (row.step !== undefined) candidate.step = row.step;
    const parsed = historyEventSchema.safeParse(candidate);
    if (!parsed.success) {
      throw new HistoryFileError(
        `${where} (#${row.seq}, ${String(row.type)}) does not match the event schema: ${parsed.error.issues[0]?.message}`,
      );
    }
    if (row.seq !== i + 1)
      throw new HistoryFileError(`${where} has seq ${row.seq}; expected ${i + 1} (no gaps)`);
    // The decoded object, not zod's copy: class instances in unknown fields must survive.
    return candidate as HistoryEvent;
  });
  const first = events[0];
  if (first?.type !== "WorkflowStarted") {
    throw new HistoryFileError("history file: the first event must be WorkflowStarted");
  }
  return {
    workflowId: d.workflowId,
    runId: d.runId,
    workflowName: d.workflowName ?? first.workflowName,
    events,
  };
}
