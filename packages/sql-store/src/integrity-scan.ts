/**
 * The row scan behind `spool doctor` for SQL backends: each stored row's checksum checked the way
 * reads check it, collected into an IntegrityReport (the report and its advice are @spool/core's).
 */
import type { IntegrityProblem, IntegrityReport } from "@spool/core";
import { rowCorruption } from "./row-checksum.ts";
import {
  activityRowCorruption,
  runRowCorruption,
  type StoredActivityRow,
  type StoredHistoryRow,
  type StoredInboxRow,
  type StoredRunRow,
} from "./stored-rows.ts";

/**
 * Accumulates a scan. History rows must arrive ordered by (run_id, seq), so gaps are found
 * without holding a run's history in memory.
 */
export class IntegrityScan {
  readonly report: IntegrityReport = {
    engine: null,
    scanned: { history: 0, inbox: 0, runs: 0, activity_tasks: 0 },
    unverified: { runs: 0, activity_tasks: 0 },
    problems: [],
    statusOf: {},
  };
  private historyRun: string | null = null;
  private nextSeq = 1;

  /** A `runs` row. */
  run(row: StoredRunRow): void {
    this.report.scanned.runs++;
    if (row.crc === null || row.crc === undefined) this.report.unverified.runs++;
    const problem = runRowCorruption(row);
    if (problem !== null) this.add({ table: "runs", runId: row.run_id, row: "record", reason: problem });
  }

  /** A `history` row, in (run_id, seq) order. */
  history(row: StoredHistoryRow & { run_id: string }): void {
    this.report.scanned.history++;
    if (row.run_id !== this.historyRun) {
      this.historyRun = row.run_id;
      this.nextSeq = 1;
    }
    if (row.seq !== this.nextSeq) {
      this.add({
        table: "history",
        runId: row.run_id,
        row: `event #${this.nextSeq}`,
        reason: `missing (the next stored event is #${row.seq})`,
      });
    }
    this.nextSeq = row.seq + 1;
    const problem = rowCorruption(row.seq, row);
    if (problem !== null)
      this.add({ table: "history", runId: row.run_id, row: `event #${row.seq}`, reason: problem });
  }

  /** An `inbox` row. */
  inbox(row: StoredInboxRow & { run_id: string }): void {
    this.report.scanned.inbox++;
    const problem = rowCorruption(0, row);
    if (problem !== null)
      this.add({ table: "inbox", runId: row.run_id, row: `inbox id ${row.id}`, reason: problem });
  }

  /** An `activity_tasks` row. */
  activity(row: StoredActivityRow): void {
    this.report.scanned.activity_tasks++;
    if (row.crc === null || row.crc === undefined) this.report.unverified.activity_tasks++;
    const problem = activityRowCorruption(row);
    if (problem !== null) {
      this.add({
        table: "activity_tasks",
        runId: row.run_id,
        row: `task ${row.task_id} (step ${row.step}, "${row.name}")`,
        reason: problem,
      });
    }
  }

  private add(p: IntegrityProblem): void {
    this.report.problems.push(p);
  }
}
