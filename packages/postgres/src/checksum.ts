/**
 * Row checksums for stored events (history and inbox). PostgreSQL checksums pages only when the
 * cluster was initialised with `--data-checksums`, and never catches a row that was rewritten by
 * hand, by a faulty migration or by a restore of the wrong backup — any of which would otherwise
 * be replayed as if it were real history. Every event row carries a CRC32 over a canonical byte
 * string of its fields, computed at insert (in this process, which is why write transactions read
 * the database clock first: the timestamp is covered) and verified at every read.
 *
 * The function is byte-for-byte the one `@spool/sqlite` uses, so a history exported from one
 * backend and imported into the other keeps valid checksums.
 */
import { crc32 } from "node:zlib";

/**
 * CRC32 of one event's fields. The header string covers position, time, type, step and whether a
 * body is present (so a NULL body and an empty body differ); the body bytes are chained onto it.
 * `position` is the history seq, or 0 for an inbox row (its position is the identity column, which
 * a continue-as-new may move to another run, so it is not covered).
 */
export function eventChecksum(
  position: number,
  ts: number,
  type: string,
  step: number | null,
  body: Uint8Array | null,
): number {
  const header = `${position}\u001f${ts}\u001f${type}\u001f${step ?? ""}\u001f${body === null ? "-" : "+"}`;
  const crc = crc32(header);
  // Node 20's crc32 returns 0 instead of the running value for a zero-length view without a
  // backing store; skipping empty bodies keeps stored and recomputed checksums equal.
  return body === null || body.byteLength === 0 ? crc : crc32(body, crc);
}

/** A stored event row as the driver returns it, before it has been checked. */
export interface StoredEventRow {
  ts: unknown;
  type: unknown;
  step: unknown;
  body: unknown;
  crc: unknown;
}

/**
 * Checks one stored row and returns why it is corrupt, or null when it is sound. PostgreSQL's
 * column types already rule out a TEXT body or a fractional step, but the checks are cheap and
 * keep the error messages identical to SQLite's.
 */
export function corruption(position: number, row: StoredEventRow): string | null {
  if (typeof row.ts !== "number" || !Number.isFinite(row.ts)) return "timestamp is not a number";
  if (typeof row.type !== "string") return "event type is not text";
  if (row.step !== null && !Number.isInteger(row.step)) return "step is neither an integer nor NULL";
  if (row.body !== null && !(row.body instanceof Uint8Array)) return "body is not bytea";
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
 * A zero-copy `Uint8Array` view of a bytea value. The driver returns Node Buffers; the Backend
 * contract speaks `Uint8Array`, and a plain view keeps equality checks predictable.
 */
export function asBytes(blob: Uint8Array): Uint8Array;
export function asBytes(blob: Uint8Array | null): Uint8Array | null;
export function asBytes(blob: Uint8Array | null): Uint8Array | null {
  if (blob === null) return null;
  return new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
}
