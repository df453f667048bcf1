/**
 * The worker registry on PostgreSQL: registering workers (pid and host for operators; liveness is
 * the heartbeat, on the database clock), heartbeats, clean stops, and the sweep that marks dead
 * workers once and releases their leases.
 */
import { hostname } from "node:os";
import type { DeadWorkerSweep, WorkerRegistration } from "@spool/core";
import type { PgConnection, Tx } from "./connection.ts";

/** The worker-liveness methods of the Backend contract; see there. */
export class WorkerRegistry {
  constructor(private readonly db: PgConnection) {}

  /**
   * Records the worker (pid and host for operators; liveness is its heartbeat, on the database
   * clock). A row left by another incarnation of the same id has its leases released first.
   */
  async registerWorker(reg: WorkerRegistration): Promise<void> {
    await this.db.tx(async (tx) => {
      const { rows } = await tx.q<{ previous: string | null }>(
        this.db.stmts.upsertWorker.with({
          offset: this.db.offset(),
          workerId: reg.workerId,
          incarnation: reg.incarnation,
          pid: process.pid,
          host: hostname(),
          heartbeatIntervalMs: Math.round(reg.heartbeatIntervalMs),
          deadAfterMs: Math.round(reg.deadAfterMs),
          workflowNames: reg.workflowNames,
          activityNames: reg.activityNames,
        }),
      );
      const previous = rows[0]?.previous ?? null;
      if (previous !== null && previous !== reg.incarnation) await this.releaseIn(tx, [reg.workerId]);
    });
  }

  /** Refreshes the worker's heartbeat; false when it was presumed dead or is unknown. */
  async heartbeatWorker(workerId: string): Promise<boolean> {
    const res = await this.db.one(this.db.stmts.heartbeatWorker.with({ offset: this.db.offset(), workerId }));
    return res.rowCount === 1;
  }

  /**
   * Marks workers whose heartbeat is older than their timeout (database clock) dead and releases
   * their leases, in one transaction; each death is swept once, by whichever worker gets there
   * first. With nobody dead it is one read (every worker sweeps several times a second).
   */
  async releaseDeadWorkers(): Promise<DeadWorkerSweep> {
    if ((await this.db.one(this.db.stmts.anyDeadWorker.with({ offset: this.db.offset() }))).rowCount === 0) {
      return { workers: [], workflowTasks: 0, activityTasks: 0 };
    }
    return this.db.tx(async (tx) => {
      const { rows } = await tx.q<{ worker_id: string }>(this.db.stmts.markDeadWorkers.with({ now: tx.now }));
      const workers = rows.map((r) => r.worker_id);
      if (workers.length === 0) return { workers, workflowTasks: 0, activityTasks: 0 };
      return { workers, ...(await this.releaseIn(tx, workers)) };
    });
  }

  /** Marks the worker stopped (clean shutdown). */
  async unregisterWorker(workerId: string): Promise<void> {
    await this.db.one(this.db.stmts.stopWorker.with({ offset: this.db.offset(), workerId }));
  }

  private async releaseIn(
    tx: Tx,
    owners: string[],
  ): Promise<{ workflowTasks: number; activityTasks: number }> {
    const { rows } = await tx.q<{ workflow_tasks: number; activity_tasks: number }>(
      this.db.stmts.releaseLeasesOf.with({ now: tx.now, owners }),
    );
    const workflowTasks = rows[0]?.workflow_tasks ?? 0;
    const activityTasks = rows[0]?.activity_tasks ?? 0;
    if (workflowTasks > 0) tx.out.workflowTask = true;
    if (activityTasks > 0) tx.out.activityTask = true;
    return { workflowTasks, activityTasks };
  }
}
