/**
 * `checkIntegrity()` on SQLite: `PRAGMA quick_check` (the file's own structure: pages, b-trees,
 * NOT NULL and index consistency — a quicker `integrity_check` that skips comparing index content),
 * then every row's checksum, read in a single read transaction so the scan sees one state.
 */
import type { IntegrityReport } from "@spool/core";
import {
  IntegrityScan,
  type StoredActivityRow,
  type StoredHistoryRow,
  type StoredInboxRow,
} from "@spool/sql-store";
import type Database from "better-sqlite3";
import { RUN_COLUMNS, type RunRow } from "./statements.ts";

/** Scans the whole database; read-only. */
export function checkSqliteIntegrity(db: Database.Database): IntegrityReport {
  const scan = new IntegrityScan();
  const report = scan.report;
  try {
    const messages = (db.pragma("quick_check") as { quick_check: string }[]).map((r) => r.quick_check);
    report.engine = {
      check: "PRAGMA quick_check",
      ok: messages.length === 1 && messages[0] === "ok",
      messages,
    };
  } catch (err) {
    report.engine = { check: "PRAGMA quick_check", ok: false, messages: [String(err)] };
  }
  const scanAll = db.transaction(() => {
    for (const row of db.prepare(`SELECT ${RUN_COLUMNS} FROM runs`).iterate()) scan.run(row as RunRow);
    for (const row of db
      .prepare("SELECT run_id, seq, ts, type, step, body, crc FROM history ORDER BY run_id, seq")
      .iterate()) {
      scan.history(row as StoredHistoryRow & { run_id: string });
    }
    for (const row of db
      .prepare("SELECT id, run_id, ts, type, step, body, crc FROM inbox ORDER BY id")
      .iterate()) {
      scan.inbox(row as StoredInboxRow & { run_id: string });
    }
    for (const row of db
      .prepare(
        `SELECT task_id, run_id, workflow_id, step, name, input, options, attempt, fence, timeout_ms,
           heartbeat_timeout_ms, scheduled_at, lease_expires_at, crc FROM activity_tasks`,
      )
      .iterate()) {
      scan.activity(row as StoredActivityRow);
    }
    const status = db.prepare<[string], { status: string }>("SELECT status FROM runs WHERE run_id = ?");
    for (const p of report.problems) {
      const s = status.get(p.runId)?.status;
      if (s !== undefined) report.statusOf[p.runId] = s;
    }
  });
  scanAll.deferred();
  return report;
}
