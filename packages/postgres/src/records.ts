/**
 * Conversion of PostgreSQL rows into the Backend contract's records, including the integrity
 * checks that every event read must pass before it is handed to replay, and the driver's type
 * parsing (bigint columns as numbers).
 */

import pg from "pg";
import type { ClaimRow, InboxRow, RunRow } from "./statements.ts";

const INT8_OID = 20;

/**
 * Type parsers for every query: `bigint` (times in ms, fences, counts, identity ids) as a JS
 * number. Every value Spool stores in a bigint is far below 2^53, and the contract speaks numbers.
 * Passed per query rather than set globally, so a pool shared with application code is untouched.
 */
export const TYPES = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID && format !== "binary") return (value: string) => Number(value);
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads are keyed by literal oids
    return pg.types.getTypeParser(oid as any, format as any);
  },
};

/** Splits the claim query's rows (run columns repeated, one row per inbox event) into run and inbox. */
export function splitClaimRows(rows: ClaimRow[]): { run: RunRow; fence: number; inbox: InboxRow[] } {
  const first = rows[0]!;
  const inbox: InboxRow[] = [];
  for (const r of rows) {
    if (r.i_id === null) continue;
    inbox.push({ id: r.i_id, ts: r.i_ts, type: r.i_type, step: r.i_step, body: r.i_body, crc: r.i_crc });
  }
  return { run: first, fence: first.fence, inbox };
}
