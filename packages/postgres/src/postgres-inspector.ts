/**
 * Read-only inspection of a PostgreSQL store (CLI, dashboard, `handle.describe()`): runs, listings
 * with keyset pagination, verified histories, queue counts and waiting work. Nothing here writes.
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
import type pg from "pg";
import type { PgConnection } from "./connection.ts";
import { type HistoryRow, RUN_COLUMNS, type RunRow } from "./statements.ts";

/**
 * What the inspector borrows from its backend: statements, a way to run one (prepared, errors
 * translated, after init) or an ad-hoc one, and the test clock offset (0 in production).
 */
export type InspectorHost = Pick<PgConnection, "stmts" | "one" | "raw" | "offset">;

const DEFAULT_PAGE = 100;

/**
 * {@link BackendInspector} over a PostgreSQL schema. Obtain it as `backend.inspect`.
 *
 * @example
 * ```ts
 * const page = await backend.inspect.listRuns({ status: "blocked" }, { limit: 20 });
 * ```
 */
export class PostgresInspector implements BackendInspector {
  constructor(private readonly host: InspectorHost) {}

  /** The worker registry: live workers first (heartbeat within its timeout, database clock), then dead and stopped. */
  async workers(): Promise<WorkerInfo[]> {
    const { rows } = await this.host.one<{
      worker_id: string;
      pid: number | null;
      host: string | null;
      started_at: number;
      heartbeat_at: number;
      workflow_names: string[];
      activity_names: string[];
      status: WorkerInfo["status"];
    }>(this.host.stmts.listWorkers.with({ offset: this.host.offset() }));
    const rank = { live: 0, dead: 1, stopped: 2 } as const;
    return rows
      .map((r) => ({
        workerId: r.worker_id,
        workflowNames: r.workflow_names,
        activityNames: r.activity_names,
        pid: r.pid,
        host: r.host,
        startedAt: r.started_at,
        heartbeatAt: r.heartbeat_at,
        status: r.status,
      }))
      .sort((a, b) => rank[a.status] - rank[b.status] || a.startedAt - b.startedAt);
  }

  /** The run, or null. */
  async getRun(runId: string): Promise<RunRecord | null> {
    const { rows } = await this.host.one<RunRow>(this.host.stmts.getRun.with({ runId }));
    return rows[0] === undefined ? null : toRunRecord(rows[0]);
  }

  /** The open run with this workflow id, else the newest closed one, else null. */
  async getLatestRun(workflowId: string): Promise<RunRecord | null> {
    const { rows } = await this.host.one<RunRow>(this.host.stmts.getLatestRun.with({ workflowId }));
    return rows[0] === undefined ? null : toRunRecord(rows[0]);
  }

  /**
   * Runs matching the filter, newest first (by creation time, then run id). Paging is keyset-based
   * on (created_at, run_id), so pages stay stable while runs are being created.
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
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (filter.status !== undefined) {
      const statuses = Array.isArray(filter.status) ? filter.status : [filter.status];
      if (statuses.length === 0) return { runs: [], nextCursor: null };
      where.push(`status = ANY(${p(statuses)}::text[])`);
    }
    if (filter.workflowName !== undefined) where.push(`workflow_name = ${p(filter.workflowName)}`);
    if (filter.workflowId !== undefined) where.push(`workflow_id = ${p(filter.workflowId)}`);
    if (filter.workflowIdPrefix !== undefined && filter.workflowIdPrefix !== "") {
      // Ids use the "C" collation, so the range bound lets the index narrow the scan; left() is
      // the exact test (no LIKE escaping pitfalls with ids that contain % or _).
      const prefix = p(filter.workflowIdPrefix);
      where.push(`workflow_id >= ${prefix} AND left(workflow_id, length(${prefix})) = ${prefix}`);
    }
    if (filter.parentRunId !== undefined) where.push(`parent_run_id = ${p(filter.parentRunId)}`);
    if (filter.createdAfter !== undefined) where.push(`created_at > ${p(filter.createdAfter)}`);
    if (filter.createdBefore !== undefined) where.push(`created_at < ${p(filter.createdBefore)}`);
    if (page.cursor != null) {
      const [createdAt, runId] = decodeRunCursor(page.cursor);
      where.push(`(created_at, run_id) < (${p(createdAt)}::bigint, ${p(runId)}::text)`);
    }
    const text =
      `SELECT ${RUN_COLUMNS} FROM ${this.host.stmts.schema}.runs` +
      (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
      ` ORDER BY created_at DESC, run_id DESC LIMIT ${p(limit + 1)}`;
    const { rows } = await this.host.raw<RunRow>(text, params);
    const more = rows.length > limit;
    const runs = (more ? rows.slice(0, limit) : rows).map(toRunRecord);
    const last = runs[runs.length - 1];
    return { runs, nextCursor: more && last ? encodeRunCursor(last.createdAt, last.runId) : null };
  }

  /** The run's history (seq > afterSeq), checksums verified. @throws HistoryCorruptError */
  async getHistory(runId: string, afterSeq = 0): Promise<RawEvent[]> {
    const { rows } = await this.host.one<HistoryRow>(this.host.stmts.selectHistory.with({ runId, afterSeq }));
    try {
      return toRawEvents(runId, afterSeq, rows);
    } catch (err) {
      const state = await this.host.one<{ status: string }>(this.host.stmts.runState.with({ runId }));
      throw withRunStatus(err, state.rows[0]?.status);
    }
  }

  /** Run counts by status and queue depths, measured on the database clock. */
  async stats(): Promise<BackendStats> {
    const s = this.host.stmts;
    const [byStatus, queues] = await Promise.all([
      this.host.one<{ status: string; n: number }>(s.runsByStatus.with({})),
      this.host.one<{
        ready_wf: number;
        ready_act: number;
        running_act: number;
        backoff_act: number;
        timers: number;
      }>(s.queueStats.with({ offset: this.host.offset() })),
    ]);
    const runsByStatus: Partial<Record<RunStatus, number>> = {};
    for (const { status, n } of byStatus.rows) runsByStatus[status as RunStatus] = n;
    const q = queues.rows[0]!;
    return {
      runsByStatus,
      readyWorkflowTasks: q.ready_wf,
      readyActivityTasks: q.ready_act,
      runningActivityTasks: q.running_act,
      backoffActivityTasks: q.backoff_act,
      pendingTimers: q.timers,
    };
  }

  /** The unfinished activity steps of these runs, state on the database clock. */
  async pendingActivities(
    runIds: readonly string[],
    options: { perRun?: number } = {},
  ): Promise<PendingActivity[]> {
    if (runIds.length === 0) return [];
    const { rows } = await this.host.one<StoredPendingActivityRow & pg.QueryResultRow>(
      this.host.stmts.pendingActivities.with({
        offset: this.host.offset(),
        runIds,
        perRun: options.perRun ?? 2 ** 31 - 1,
      }),
    );
    return rows.map(toPendingActivity);
  }

  /**
   * Claimable tasks (visible_at is the ready time, or the lease expiry of a leased task) that have
   * been claimable since `readyBefore` or earlier, grouped by kind and name.
   */
  async waitingWork(readyBefore: number): Promise<WaitingWork[]> {
    const { rows } = await this.host.one<{
      kind: "workflow" | "activity";
      name: string;
      count: number;
      oldest: number;
    }>(this.host.stmts.waitingWork.with({ readyBefore }));
    return rows.map((r) => ({ kind: r.kind, name: r.name, count: r.count, oldestReadyAt: r.oldest }));
  }
}
