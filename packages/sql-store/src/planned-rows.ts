/**
 * The values of the rows a SQL backend writes for events — history rows and inbox rows — with their
 * checksums computed, as plain data. A backend binds them to its own INSERT; the checksum rules
 * live in row-checksum.ts.
 */
import type { EventType } from "@spool/core";
import { eventChecksum } from "./row-checksum.ts";

/** A `history` row to insert (the run id is the caller's). */
export interface HistoryRowValues {
  seq: number;
  ts: number;
  type: EventType;
  step: number | null;
  body: Uint8Array | null;
  /** {@link eventChecksum} over the position and the other columns. */
  crc: number;
}

/** An `inbox` row to insert (the run id is the caller's; the id is the database's). */
export interface InboxRowValues {
  ts: number;
  type: EventType;
  step: number | null;
  body: Uint8Array | null;
  /** {@link eventChecksum} at position 0: an inbox row has no history position yet. */
  crc: number;
}

/** A history row's values, its checksum computed. */
export function historyRow(
  seq: number,
  ts: number,
  type: EventType,
  step: number | null,
  body: Uint8Array | null,
): HistoryRowValues {
  return { seq, ts, type, step, body, crc: eventChecksum(seq, ts, type, step, body) };
}

/** An inbox row's values, received at `now`, its checksum computed. */
export function inboxRow(
  now: number,
  type: EventType,
  step: number | null,
  body: Uint8Array | null,
): InboxRowValues {
  return { ts: now, type, step, body, crc: eventChecksum(0, now, type, step, body) };
}
