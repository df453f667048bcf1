/**
 * `checkIntegrity()` on PostgreSQL: every row's checksum (history, inbox, runs, activity tasks),
 * read in keyset pages so a large store is scanned in bounded memory. PostgreSQL's own page
 * checks (data checksums, `amcheck`) are the server administrator's: they need superuser rights
 * and settings Spool does not own, so `engine` is null here.
 */
import type { IntegrityReport } from "@spool/core";
import {
  IntegrityScan,
  type StoredActivityRow,
  type StoredHistoryRow,
  type StoredInboxRow,
} from "@spool/sql-store";
import type pg from "pg";
import { RUN_COLUMNS, type RunRow } from "./statements.ts";

/** Rows per page of the scan. */
const PAGE = 1000;

/** Runs one ad-hoc statement. */
type Query = <R extends pg.QueryResultRow>(text: string, values: unknown[]) => Promise<R[]>;

/** Scans the schema `S` (quoted); read-only. Rows written while it runs may or may not be seen. */
export async function checkPostgresIntegrity(query: Query, S: string): Promise<IntegrityReport> {
  const scan = new IntegrityScan();
  let after = "";
  for (;;) {
    const rows = await query<RunRow>(
      `SELECT ${RUN_COLUMNS} FROM ${S}.runs WHERE run_id > $1 ORDER BY run_id LIMIT ${PAGE}`,
      [after],
    );
    for (const r of rows) scan.run(r);
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.run_id;
  }
  let pos: [string, number] = ["", 0];
  for (;;) {
    const rows = await query<StoredHistoryRow & { run_id: string }>(
      `SELECT run_id, seq, ts, type, step, body, crc FROM ${S}.history
       WHERE (run_id, seq) > ($1, $2) ORDER BY run_id, seq LIMIT ${PAGE}`,
      pos,
    );
    for (const r of rows) scan.history(r);
    if (rows.length < PAGE) break;
    const last = rows[rows.length - 1]!;
    pos = [last.run_id, last.seq];
  }
  let id = -1;
  for (;;) {
    const rows = await query<StoredInboxRow & { run_id: string }>(
      `SELECT id, run_id, ts, type, step, body, crc FROM ${S}.inbox WHERE id > $1 ORDER BY id LIMIT ${PAGE}`,
      [id],
    );
    for (const r of rows) scan.inbox(r);
    if (rows.length < PAGE) break;
    id = rows[rows.length - 1]!.id;
  }
  after = "";
  for (;;) {
    const rows = await query<StoredActivityRow>(
      `SELECT task_id, run_id, workflow_id, step, name, input, options, attempt, fence, timeout_ms,
         heartbeat_timeout_ms, scheduled_at, lease_expires_at, crc
       FROM ${S}.activity_tasks WHERE task_id > $1 ORDER BY task_id LIMIT ${PAGE}`,
      [after],
    );
    for (const r of rows) scan.activity(r);
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.task_id;
  }
  const runIds = [...new Set(scan.report.problems.map((p) => p.runId))];
  if (runIds.length > 0) {
    const rows = await query<{ run_id: string; status: string }>(
      `SELECT run_id, status FROM ${S}.runs WHERE run_id = ANY($1::text[])`,
      [runIds],
    );
    for (const r of rows) scan.report.statusOf[r.run_id] = r.status;
  }
  return scan.report;
}
