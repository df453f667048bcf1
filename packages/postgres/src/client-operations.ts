/**
 * The client's side of the PostgreSQL backend: starting a run (or attaching to one per the
 * conflict policy), signalling, signal-with-start and cancellation requests, each one
 * transaction. A signal goes only to a run whose lock this transaction holds, so a run cannot
 * close between the check and the delivery (which would lose an acknowledged signal).
 */
import {
  type CancelRequest,
  type CancelResult,
  isOpenStatus,
  newId,
  RunNotFoundError,
  type SignalRequest,
  SpoolError,
  type StartWorkflowRequest,
  type StartWorkflowResult,
} from "@spool/core";
import { attachOrConflict, inboxRow, newRunRows, startedRun } from "@spool/sql-store";
import type { PgConnection, Tx } from "./connection.ts";
import { createRun, deliverSignal, deliverToOpen, firstSignal } from "./deliveries.ts";
import type { RunRow } from "./statements.ts";

/** Start, signal and cancel; see the Backend methods of the same names. */
export class ClientOperations {
  constructor(
    private readonly db: PgConnection,
    private readonly maxBufferedSignals: number,
  ) {}

  /** Creates a run (WorkflowStarted + ready task) or attaches per `onConflict`. */
  startWorkflow(req: StartWorkflowRequest): Promise<StartWorkflowResult> {
    return this.db.tx((tx) => this.startIn(tx, req, req.onConflict));
  }

  /**
   * Puts a SignalReceived event in the open run's inbox.
   * @throws RunNotFoundError; SignalBufferFullError when the run holds maxBufferedSignals unconsumed
   */
  signalWorkflow(req: SignalRequest): Promise<{ runId: string }> {
    const s = this.db.stmts;
    return this.db.tx(async (tx) => {
      // Two tries: the open run may close (continue-as-new) while the lock is awaited; the second
      // lookup then finds its successor.
      for (let i = 0; i < 2; i++) {
        const { rows } = await tx.q<{ run_id: string }>(
          s.lockOpenRun.with({
            workflowId: req.workflowId,
            runId: req.runId ?? null,
          }),
        );
        const runId = rows[0]?.run_id;
        if (runId === undefined) continue;
        if (req.requestId !== undefined && !(await firstSignal(tx, s, runId, req.requestId)))
          return { runId };
        await deliverSignal(tx, s, { workflowId: req.workflowId, runId }, req.body, this.maxBufferedSignals);
        return { runId };
      }
      throw new RunNotFoundError(req.workflowId, req.runId, "open run");
    });
  }

  /** Starts a run unless one is open (closed runs never block it), then signals it; one transaction. */
  signalWithStart(
    start: StartWorkflowRequest,
    signalBody: Uint8Array,
    options: { requestId?: string } = {},
  ): Promise<StartWorkflowResult> {
    const s = this.db.stmts;
    return this.db.tx(async (tx) => {
      for (let i = 0; i < 3; i++) {
        const started = await this.startIn(tx, start, "startNewIfClosed", start.onConflict !== "useExisting");
        // An existing run is locked before its signals are counted; if it closed since we looked,
        // the next round starts a new one. A run created just now is this transaction's already.
        if (!started.created) {
          const { rows } = await tx.q<{ run_id: string }>(
            s.lockOpenRun.with({
              workflowId: start.workflowId,
              runId: started.runId,
            }),
          );
          if (rows.length === 0) continue;
        }
        if (
          options.requestId !== undefined &&
          !(await firstSignal(tx, s, started.runId, options.requestId))
        ) {
          return started;
        }
        const run = { workflowId: start.workflowId, runId: started.runId };
        await deliverSignal(tx, s, run, signalBody, this.maxBufferedSignals);
        return started;
      }
      throw new SpoolError(
        `signalWithStart of "${start.workflowId}": its open run kept closing while the signal was delivered; retry.`,
      );
    });
  }

  /** Puts CancelRequested in the open run's inbox, or reports the closed run's status. */
  requestCancel(req: CancelRequest): Promise<CancelResult> {
    const s = this.db.stmts;
    return this.db.tx(async (tx) => {
      for (let i = 0; i < 3; i++) {
        const target = { workflowId: req.workflowId, runId: req.runId };
        const row = inboxRow(tx.now, "CancelRequested", null, req.body);
        const delivered = await deliverToOpen(tx, s, target, row, 1);
        if (delivered !== null) {
          return {
            outcome: "requested",
            runId: delivered.runId,
            status: delivered.blocked ? "blocked" : "running",
          };
        }
        const { rows } =
          req.runId !== undefined
            ? await tx.q<RunRow>(s.getRun.with({ runId: req.runId }))
            : await tx.q<RunRow>(s.getLatestRun.with({ workflowId: req.workflowId }));
        const run = rows[0];
        if (run === undefined || run.workflow_id !== req.workflowId) {
          throw new RunNotFoundError(req.workflowId, req.runId);
        }
        const status = run.status as CancelResult["status"];
        if (!isOpenStatus(run.status)) return { outcome: "alreadyClosed", runId: run.run_id, status };
        // Open, yet the delivery missed it: it was closing (continue-as-new) while we looked. Again.
      }
      throw new SpoolError(`requestCancel of "${req.workflowId}": the run kept changing; retry.`);
    });
  }

  private async startIn(
    tx: Tx,
    req: StartWorkflowRequest,
    policy: StartWorkflowRequest["onConflict"],
    checkInput = policy !== "useExisting",
  ): Promise<StartWorkflowResult> {
    const s = this.db.stmts;
    for (let i = 0; i < 5; i++) {
      const lookup = policy === "startNewIfClosed" ? s.getOpenRun : s.getLatestRun;
      const existing = (await tx.q<RunRow>(lookup.with({ workflowId: req.workflowId }))).rows[0];
      if (existing !== undefined) {
        return attachOrConflict(req, existing, { fail: policy === "fail", checkInput });
      }
      const runId = newId();
      const rows = newRunRows(startedRun(req, runId), tx.now);
      if (await createRun(tx, s, rows)) return { runId, created: true, workflowName: req.workflowName };
      // Another process created the open run since we looked (ON CONFLICT waited for its commit):
      // look again and attach to it, or fail, per the policy.
    }
    throw new SpoolError(`starting "${req.workflowId}": its runs kept changing while starting; retry.`);
  }
}
