/**
 * Read-only inspection of a SQLite store (CLI, dashboard, `handle.describe()`): runs, listings with
 * keyset pagination, verified histories and queue counts. Nothing here writes.
 */
import type {
  BackendInspector,
  BackendStats,
  PendingActivity,
  RawEvent,
  RunFilter,
  RunPage,
  RunRecord,
  RunStatus,
  WaitingWork,
  WorkerInfo,
} from "@spool/core";
import { InvalidOptionsError } from "@spool/core";
import {
  decodeRunCursor,
  encodeRunCursor,
  type StoredPendingActivityRow,
  toPendingActivity,
  toRawEvents,
  toRunRecord,
  withRunStatus,
} from "@spool/sql-store";
import type Database from "better-sqlite3";
import { RUN_COLUMNS, type RunRow, type Statements } from "./statements.ts";
import { sortWorkers, toWorkerInfo } from "./worker-registry.ts";

/** What the inspector borrows from its backend: the connection, its statements, error handling. */
export interface InspectorHost {
  readonly db: Database.Database;
  readonly stmts: Statements;
  now(): number;
  /** Runs a read, translating SQLite errors and rejecting after close(). */
  read<T>(fn: () => T): T;
}

const DEFAULT_PAGE = 100;

/**
 * {@link BackendInspector} over a SQLite connection. Obtain it as `backend.inspect`.
 *
 * @example
 * ```ts
 * const page = await backend.inspect.listRuns({ status: "blocked" }, { limit: 20 });
 * ```
 */
export class SqliteInspector implements BackendInspector {
  constructor(private readonly host: InspectorHost) {}

  /** The worker registry: live workers first (judged now, by process on this machine), then dead and stopped. */
  async workers(): Promise<WorkerInfo[]> {
    const now = this.host.now();
    return sortWorkers(
      this.host.read(() => this.host.stmts.allWorkers.all()).map((r) => toWorkerInfo(r, now)),
    );
  }

  /** The run, or null. */
  async getRun(runId: string): Promise<RunRecord | null> {
    return this.host.read(() => {
      const row = this.host.stmts.getRun.get(runId);
      return row === undefined ? null : toRunRecord(row);
    });
  }

  /** The open run with this workflow id, else the newest closed one, else null. */
  async getLatestRun(workflowId: string): Promise<RunRecord | null> {
    return this.host.read(() => {
      const s = this.host.stmts;
      const row = s.getOpenRun.get(workflowId) ?? s.getNewestRun.get(workflowId);
      return row === undefined ? null : toRunRecord(row);
    });
  }

  /**
   * Runs matching the filter, newest first (by creation time, then run id). Paging is keyset-based
   * on (created_at, run_id), so pages stay stable while runs are being created: a run created after
   * the first page was read never shifts later pages.
   *
   * @throws InvalidOptionsError for a malformed cursor or a limit below 1.
   */
  async listRuns(
    filter: RunFilter = {},
    page: { limit?: number; cursor?: string | null } = {},
  ): Promise<RunPage> {
    const limit = page.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new InvalidOptionsError(`listRuns: limit must be a positive integer, got ${limit}`);
    }
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status !== undefined) {
      const statuses = Array.isArray(filter.status) ? filter.status : [filter.status];
      if (statuses.length === 0) return { runs: [], nextCursor: null };
      where.push(`status IN (${statuses.map(() => "?").join(", ")})`);
      params.push(...statuses);
    }
    if (filter.workflowName !== undefined) {
      where.push("workflow_name = ?");
      params.push(filter.workflowName);
    }
    if (filter.workflowId !== undefined) {
      where.push("workflow_id = ?");
      params.push(filter.workflowId);
    }
    if (filter.workflowIdPrefix !== undefined && filter.workflowIdPrefix !== "") {
      // The range bound lets the index narrow the scan; substr() is the exact test (no LIKE/GLOB
      // escaping pitfalls with ids that contain % _ * ?).
      where.push("workflow_id >= ? AND substr(workflow_id, 1, length(?)) = ?");
      params.push(filter.workflowIdPrefix, filter.workflowIdPrefix, filter.workflowIdPrefix);
    }
    if (filter.parentRunId !== undefined) {
      where.push("parent_run_id = ?");
      params.push(filter.parentRunId);
    }
    if (filter.createdAfter !== undefined) {
      where.push("created_at > ?");
      params.push(filter.createdAfter);
    }
    if (filter.createdBefore !== undefined) {
      where.push("created_at < ?");
      params.push(filter.createdBefore);
    }
    if (page.cursor != null) {
      const [createdAt, runId] = decodeRunCursor(page.cursor);
      where.push("(created_at, run_id) < (?, ?)");
      params.push(createdAt, runId);
    }
    const sql =
      `SELECT ${RUN_COLUMNS} FROM runs` +
      (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
      " ORDER BY created_at DESC, run_id DESC LIMIT ?";
    params.push(limit + 1);
    return this.host.read(() => {
      const rows = this.host.db.prepare<unknown[], RunRow>(sql).all(...params);
      const more = rows.length > limit;
      const runs = (more ? rows.slice(0, limit) : rows).map(toRunRecord);
      const last = runs[runs.length - 1];
      return { runs, nextCursor: more && last ? encodeRunCursor(last.createdAt, last.runId) : null };
    });
  }

  /** The run's history (seq > afterSeq), checksums verified. @throws HistoryCorruptError */
  async getHistory(runId: string, afterSeq = 0): Promise<RawEvent[]> {
    return this.host.read(() => {
      const rows = this.host.stmts.selectHistory.all(runId, afterSeq);
      try {
        return toRawEvents(runId, afterSeq, rows);
      } catch (err) {
        throw withRunStatus(err, this.host.stmts.runStatus.get(runId)?.status);
      }
    });
  }

  /** Run counts by status and queue depths, measured at the backend's clock. */
  /**
   * Claimable tasks (visible_at is the ready time, or the lease expiry of a leased task) that have
   * been claimable since `readyBefore` or earlier, grouped by kind and name.
   */
  async waitingWork(readyBefore: number): Promise<WaitingWork[]> {
    return this.host.read(() => {
      const rows = this.host.db
        .prepare<
          [number, number],
          { kind: "workflow" | "activity"; name: string; count: number; oldest: number }
        >(
          `SELECT 'workflow' AS kind, workflow_name AS name, count(*) AS count, min(visible_at) AS oldest
             FROM workflow_tasks WHERE visible_at <= ? GROUP BY workflow_name
           UNION ALL
           SELECT 'activity', name, count(*), min(visible_at)
             FROM activity_tasks WHERE visible_at <= ? GROUP BY name`,
        )
        .all(readyBefore, readyBefore);
      return rows.map((r) => ({ kind: r.kind, name: r.name, count: r.count, oldestReadyAt: r.oldest }));
    });
  }

  async stats(): Promise<BackendStats> {
    return this.host.read(() => {
      const s = this.host.stmts;
      const runsByStatus: Partial<Record<RunStatus, number>> = {};
      for (const { status, n } of s.runsByStatus.all()) runsByStatus[status as RunStatus] = n;
      const q = s.queueStats.get({ now: this.host.now() })!;
      return {
        runsByStatus,
        readyWorkflowTasks: q.ready_wf,
        readyActivityTasks: q.ready_act,
        runningActivityTasks: q.running_act,
        backoffActivityTasks: q.backoff_act,
        pendingTimers: q.timers,
      };
    });
  }

  /** The unfinished activity steps of these runs (an index probe per run), state on the backend's clock. */
  async pendingActivities(
    runIds: readonly string[],
    options: { perRun?: number } = {},
  ): Promise<PendingActivity[]> {
    if (runIds.length === 0) return [];
    const perRun = options.perRun ?? 2 ** 31;
    return this.host.read(() => {
      const rows = this.host.db
        .prepare<unknown[], StoredPendingActivityRow>(
          `SELECT * FROM (
             SELECT run_id, step, name, attempt, last_error, visible_at, lease_expires_at, scheduled_at,
               CASE WHEN lease_owner IS NOT NULL AND lease_expires_at > @now THEN 'running'
                    WHEN visible_at > @now THEN 'backoff' ELSE 'waiting' END AS state,
               row_number() OVER (PARTITION BY run_id ORDER BY attempt DESC, step) AS rank
             FROM activity_tasks WHERE run_id IN (${runIds.map(() => "?").join(", ")}))
           WHERE rank <= @perRun ORDER BY run_id, step`,
        )
        .all(...runIds, { now: this.host.now(), perRun });
      return rows.map(toPendingActivity);
    });
  }
}
