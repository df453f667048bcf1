/**
 * What `spool doctor` reports: the damaged rows a backend's integrity scan found (SQL backends use
 * `IntegrityScan` from @spool/sql-store), what the storage engine itself can tell (SQLite's
 * `quick_check`), and the advice per damaged run.
 */
import { isOpenStatus } from "./backend.ts";

/** One damaged row. */
export interface IntegrityProblem {
  table: "history" | "inbox" | "runs" | "activity_tasks";
  runId: string;
  /** The row within its table: `event #7`, `inbox id 12`, `task 01J...`, `record`. */
  row: string;
  reason: string;
}

/** What `checkIntegrity()` found. */
export interface IntegrityReport {
  /** The storage engine's own check (SQLite `PRAGMA quick_check`), or null where there is none. */
  engine: { check: string; ok: boolean; messages: string[] } | null;
  /** Rows checked, per table. */
  scanned: Record<IntegrityProblem["table"], number>;
  /** Rows written before row checksums existed (schema version 3): not verifiable. */
  unverified: { runs: number; activity_tasks: number };
  problems: IntegrityProblem[];
  /** Run statuses by run id, for the runs named in `problems` (status read unverified). */
  statusOf: Record<string, string>;
}

/**
 * What to do about each damaged run, as lines of text: an open run can be ended with `spool
 * terminate` (once a worker has parked it, for a damaged run record); a closed one has nothing to
 * end, only rows to restore.
 */
export function integrityAdvice(report: IntegrityReport): string[] {
  const lines: string[] = [];
  if (report.engine !== null && !report.engine.ok) {
    lines.push(
      `The database file itself is damaged (${report.engine.check} failed). Stop every worker, copy the file ` +
        "(with its -wal file) aside, and restore from a backup; `sqlite3 spool.db .recover` can salvage rows.",
    );
  }
  const runs = [...new Set(report.problems.map((p) => p.runId))];
  for (const runId of runs) {
    const status = report.statusOf[runId];
    const tables = [...new Set(report.problems.filter((p) => p.runId === runId).map((p) => p.table))].join(
      ", ",
    );
    if (status === undefined) {
      lines.push(
        `run ${runId} (${tables}): its run record is missing; restore the rows from a backup or delete them.`,
      );
    } else if (isOpenStatus(status)) {
      lines.push(
        `run ${runId} (${status}; ${tables}): restore the rows from a backup, or end the run with ` +
          "`spool terminate <workflowId>`" +
          (tables.includes("runs") ? " once a worker has parked it as blocked." : "."),
      );
    } else {
      lines.push(
        `run ${runId} (${status}; ${tables}): the run has ended, so there is nothing to terminate. Restore the ` +
          "rows from a backup; until then reading its result or history fails with a typed error, never a wrong value.",
      );
    }
  }
  return lines;
}
