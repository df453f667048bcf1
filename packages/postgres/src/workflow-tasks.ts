/**
 * Workflow tasks on PostgreSQL: claiming a run's task with its inbox (and handing a corrupt inbox
 * or run row to the worker to park the run, instead of failing the claim), reading history and
 * inbox, committing activations, parking runs, releasing tasks and retrying blocked runs.
 */
import {
  type ActivationCommit,
  type ActivationResult,
  type BlockRequest,
  type ClaimedWorkflowTask,
  type ConflictError,
  HistoryCorruptError,
  type InboxEvent,
  type RawEvent,
} from "@spool/core";
import {
  runChecksum,
  runRowCorruption,
  runRowError,
  staleTaskConflict,
  toInboxEvents,
  toRawEvents,
  toRunRecordUnchecked,
  validateCommit,
  withRunStatus,
} from "@spool/sql-store";
import type { CommitExecutor } from "./commit-executor.ts";
import type { PgConnection } from "./connection.ts";
import { Outbox } from "./notifier.ts";
import { splitClaimRows } from "./records.ts";
import type { ClaimRow, HistoryRow, InboxRow } from "./statements.ts";

/** The workflow-task methods of the Backend contract; see there. */
export class WorkflowTasks {
  constructor(
    private readonly db: PgConnection,
    private readonly executor: CommitExecutor,
    /** Lease when a claim's `leaseMs` is not positive. */
    private readonly workflowLeaseMs: number,
  ) {}

  /** Leases the oldest claimable workflow task of these workflows; null when there is none. */
  async claimWorkflowTask(req: {
    workerId: string;
    workflowNames: string[];
    leaseMs: number;
  }): Promise<ClaimedWorkflowTask | null> {
    if (req.workflowNames.length === 0) return null;
    const leaseMs = req.leaseMs > 0 ? Math.ceil(req.leaseMs) : this.workflowLeaseMs;
    const { rows } = await this.db.one<ClaimRow>(
      this.db.stmts.claimWorkflowTask.with({
        offset: this.db.offset(),
        owner: req.workerId,
        leaseMs,
        names: req.workflowNames,
      }),
    );
    if (rows.length === 0) return null;
    const claimed = splitClaimRows(rows);
    // Verified after the claim committed: a corrupt inbox row is handed to the worker, which parks
    // the run with the error, while every other run keeps flowing.
    // A damaged run record goes the same way: the worker parks the run.
    const run = toRunRecordUnchecked(claimed.run);
    const damaged = runRowCorruption(claimed.run);
    if (damaged !== null) {
      return { run, fence: claimed.fence, inbox: [], inboxError: runRowError(claimed.run, damaged) };
    }
    try {
      return { run, fence: claimed.fence, inbox: toInboxEvents(run.runId, claimed.inbox) };
    } catch (err) {
      if (!HistoryCorruptError.is(err)) throw err;
      return { run, fence: claimed.fence, inbox: [], inboxError: err };
    }
  }

  /** History events with seq > afterSeq, checksums verified. @throws HistoryCorruptError */
  async getHistory(runId: string, afterSeq = 0): Promise<RawEvent[]> {
    const { rows } = await this.db.one<HistoryRow>(this.db.stmts.selectHistory.with({ runId, afterSeq }));
    try {
      return toRawEvents(runId, afterSeq, rows);
    } catch (err) {
      const state = await this.db.one<{ status: string }>(this.db.stmts.runState.with({ runId }));
      throw withRunStatus(err, state.rows[0]?.status);
    }
  }

  /** The run's unconsumed inbox, in consumption order. @throws HistoryCorruptError */
  async getInbox(runId: string): Promise<InboxEvent[]> {
    const { rows } = await this.db.one<InboxRow>(this.db.stmts.selectInbox.with({ runId }));
    return toInboxEvents(runId, rows);
  }

  /**
   * Commits one activation in one transaction (see CommitExecutor).
   * @throws ConflictError when a guard fails; InternalContractError when the request is malformed
   */
  async commitActivation(req: ActivationCommit): Promise<ActivationResult> {
    validateCommit(req);
    return this.db.tx((tx) => this.executor.commitIn(tx, req));
  }

  /** Parks the run as blocked until `retryAt`; history untouched. @throws ConflictError (stale fence) */
  async blockRun(req: BlockRequest): Promise<void> {
    const out = new Outbox();
    out.workflowTask = true;
    const res = await this.db.one(
      this.db.stmts.blockRun.with({
        offset: this.db.offset(),
        runId: req.runId,
        fence: req.fence,
        retryAt: Math.floor(req.retryAt),
        error: req.error,
        reason: req.reason,
        ...this.db.notice(out),
        runCrc: runChecksum(req.runId, "blocked", null, req.error),
      }),
    );
    if (res.rowCount !== 1) throw await this.staleTask("blockRun", req.runId, req.fence);
    this.db.emit(out);
  }

  /** Gives the task back, claimable at `retryAt` (default now). @throws ConflictError (stale fence) */
  async releaseWorkflowTask(req: { runId: string; fence: number; retryAt?: number }): Promise<void> {
    const out = new Outbox();
    out.workflowTask = true;
    const res = await this.db.one(
      this.db.stmts.releaseWorkflowTask.with({
        offset: this.db.offset(),
        runId: req.runId,
        fence: req.fence,
        at: req.retryAt === undefined ? null : Math.floor(req.retryAt),
        ...this.db.notice(out),
      }),
    );
    if (res.rowCount !== 1) throw await this.staleTask("releaseWorkflowTask", req.runId, req.fence);
    this.db.emit(out);
  }

  /** Makes the unleased tasks of blocked runs of these workflows claimable now; returns how many. */
  async retryBlockedRuns(workflowNames: string[]): Promise<number> {
    if (workflowNames.length === 0) return 0;
    const out = new Outbox();
    out.workflowTask = true;
    const { rows } = await this.db.one<{ n: number }>(
      this.db.stmts.retryBlockedRuns.with({
        offset: this.db.offset(),
        names: workflowNames,
        ...this.db.notice(out),
      }),
    );
    const n = rows[0]?.n ?? 0;
    if (n > 0) this.db.emit(out);
    return n;
  }

  private async staleTask(op: string, runId: string, fence: number): Promise<ConflictError> {
    const { rows } = await this.db.one<{ fence: number }>(this.db.stmts.workflowTaskFence.with({ runId }));
    return staleTaskConflict(op, runId, fence, rows[0]?.fence);
  }
}
