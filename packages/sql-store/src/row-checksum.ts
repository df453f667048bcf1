/**
 * Row checksums for stored events (history and inbox), shared by every backend so a history moved
 * between backends keeps valid checksums. Storage engines checksum pages at best, never rows that
 * were rewritten by hand, by a faulty migration or by a restore of the wrong backup — any of which
 * would otherwise be replayed as real history, silently changing what a workflow "remembers".
 * Every event row carries a CRC32 over a canonical byte string of its fields, computed at insert
 * and verified at every read. Pure JavaScript (the `crc-32` package), so the core stays I/O-free.
 */
import CRC32 from "crc-32";

/**
 * CRC32 (unsigned) of one event's fields. The header string covers position, time, type, step and
 * whether a body is present (so a NULL body and an empty body differ); the body bytes are chained
 * onto it. `position` is the history seq, or 0 for an inbox row (whose position a continue-as-new
 * may move to another run). The timestamp is covered because it becomes workflow time
 * (`ctx.now()`) on replay: a flipped bit there changes behaviour as much as one in the body.
 */
export function eventChecksum(
  position: number,
  ts: number,
  type: string,
  step: number | null,
  body: Uint8Array | null,
): number {
  const header = `${position}\u001f${ts}\u001f${type}\u001f${step ?? ""}\u001f${body === null ? "-" : "+"}`;
  const crc = CRC32.str(header);
  return (body === null || body.byteLength === 0 ? crc : CRC32.buf(body, crc)) >>> 0;
}

/**
 * CRC32 (unsigned) of what a `runs` row says about the run's outcome: its id, status, result and
 * error. Computed by every write that sets the status (create, closing or blocking commit), and
 * verified at every read of the row, so one flipped byte in a stored result is an error rather
 * than a wrong value handed to `handle.result()`. Lengths are in the header so bytes cannot move
 * from result to error unnoticed. Columns an ordinary step updates (`last_seq`, `updated_at`) are
 * left out so the hot path writes no checksum.
 */
export function runChecksum(
  runId: string,
  status: string,
  result: Uint8Array | null,
  error: Uint8Array | null,
): number {
  const header = `${runId}\u001f${status}\u001f${result?.byteLength ?? -1}\u001f${error?.byteLength ?? -1}`;
  let crc = CRC32.str(header);
  if (result !== null && result.byteLength > 0) crc = CRC32.buf(result, crc);
  if (error !== null && error.byteLength > 0) crc = CRC32.buf(error, crc);
  return crc >>> 0;
}

/**
 * CRC32 (unsigned) of an activity task's immutable identity and input: run, step, name and input.
 * Computed when the task is created and verified at every claim, so an attempt never runs on a
 * damaged input. The options (the retry policy) are left out on purpose: they are read only when
 * an attempt fails, and a damaged options row already has a defined outcome there (the step fails
 * for good, saying why), while a successful attempt does not need them.
 */
export function activityChecksum(runId: string, step: number, name: string, input: Uint8Array): number {
  const header = `${runId}\u001f${step}\u001f${name}\u001f${input.byteLength}`;
  return CRC32.buf(input, CRC32.str(header)) >>> 0;
}

/** A stored event row as a driver returns it, before it has been checked. */
export interface StoredEventRow {
  ts: unknown;
  type: unknown;
  step: unknown;
  body: unknown;
  crc: unknown;
}

/**
 * Checks one stored row and returns why it is corrupt, or null when it is sound. Column types are
 * checked before the checksum: SQLite's dynamic typing lets a damaged or hand-written row hold a
 * TEXT body or a REAL step, which the checksum alone might not catch.
 */
export function rowCorruption(position: number, row: StoredEventRow): string | null {
  if (typeof row.ts !== "number" || !Number.isFinite(row.ts)) return "timestamp is not a number";
  if (typeof row.type !== "string") return "event type is not text";
  if (row.step !== null && !Number.isInteger(row.step)) return "step is neither an integer nor NULL";
  if (row.body !== null && !(row.body instanceof Uint8Array)) return "body is not binary";
  if (typeof row.crc !== "number") return "checksum column is missing or not an integer";
  const actual = eventChecksum(
    position,
    row.ts,
    row.type,
    row.step as number | null,
    row.body as Uint8Array | null,
  );
  if (actual !== row.crc) return `checksum mismatch (stored ${row.crc}, computed ${actual})`;
  return null;
}

/**
 * A zero-copy `Uint8Array` view of a driver's binary value. Drivers return Node Buffers; the
 * Backend contract speaks `Uint8Array`, and a plain view keeps equality checks predictable.
 */
export function asBytes(blob: Uint8Array): Uint8Array;
export function asBytes(blob: Uint8Array | null): Uint8Array | null;
export function asBytes(blob: Uint8Array | null): Uint8Array | null {
  if (blob === null) return null;
  return new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
}
