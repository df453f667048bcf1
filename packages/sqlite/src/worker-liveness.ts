/**
 * The SQLite backend's worker-liveness operations: registering a worker with this process's
 * identity, its heartbeats, the sweep that releases dead workers' leases, and a clean stop. How a
 * row is judged dead is worker-registry.ts.
 */
import type { DeadWorkerSweep, WorkerRegistration } from "@spool/core";
import { selfIdentity } from "./process-identity.ts";
import { FORGET_WORKERS_AFTER_MS, isDeadWorker } from "./worker-registry.ts";
import type { SqliteContext, SqliteOutbox, SqliteStore } from "./write-context.ts";

/**
 * Records the worker with this process's identity (host, boot id, PID namespace, pid, process
 * start time), so workers on this machine can tell at once when it dies. A row left by another
 * incarnation of the same id has its leases released first.
 */
export async function registerWorker(store: SqliteStore, reg: WorkerRegistration): Promise<void> {
  await store.queue.write((out) => {
    const s = store.stmts;
    const now = store.clock();
    s.forgetOldWorkers.run(now - FORGET_WORKERS_AFTER_MS);
    const previous = s.workerIncarnation.get(reg.workerId);
    if (previous !== undefined && previous.incarnation !== reg.incarnation) {
      releaseLeasesOf(store, reg.workerId, now, out);
    }
    const me = selfIdentity;
    s.upsertWorker.run({
      workerId: reg.workerId,
      incarnation: reg.incarnation,
      pid: me.pid,
      host: me.host,
      bootId: me.bootId,
      pidNs: me.pidNs,
      startTicks: me.startTicks,
      now,
      intervalMs: Math.round(reg.heartbeatIntervalMs),
      deadAfterMs: Math.round(reg.deadAfterMs),
      workflowNames: JSON.stringify(reg.workflowNames),
      activityNames: JSON.stringify(reg.activityNames),
    });
  });
}

/** Refreshes the worker's heartbeat; false when it was presumed dead or is unknown. */
export function heartbeatWorker(store: SqliteStore, workerId: string): Promise<boolean> {
  return store.queue.write(() => store.stmts.heartbeatWorker.run(store.clock(), workerId).changes === 1);
}

/**
 * Releases the leases of dead workers. The judgement is read-only (a process check per worker on
 * this machine, a heartbeat age otherwise): a sweep that finds nobody dead writes nothing.
 */
export async function releaseDeadWorkers(store: SqliteStore): Promise<DeadWorkerSweep> {
  const none: DeadWorkerSweep = { workers: [], workflowTasks: 0, activityTasks: 0 };
  const now = store.clock();
  const dead = store.queue.read(() => store.stmts.activeWorkers.all()).filter((w) => isDeadWorker(w, now));
  if (dead.length === 0) return none;
  return store.queue.write((out) => {
    const s = store.stmts;
    const at = store.clock();
    const swept: DeadWorkerSweep = { workers: [], workflowTasks: 0, activityTasks: 0 };
    for (const w of dead) {
      // Once per death: a sweep in another process may have marked (and released) it already.
      if (s.markWorkerDead.run(at, w.worker_id).changes !== 1) continue;
      swept.workers.push(w.worker_id);
      const released = releaseLeasesOf(store, w.worker_id, at, out);
      swept.workflowTasks += released.workflowTasks;
      swept.activityTasks += released.activityTasks;
    }
    return swept;
  });
}

/** Marks the worker stopped (clean shutdown). */
export async function unregisterWorker(store: SqliteStore, workerId: string): Promise<void> {
  await store.queue.write(() => {
    store.stmts.stopWorker.run(store.clock(), workerId);
  });
}

/** Makes every lease `owner` holds claimable now, moving each fence on. */
function releaseLeasesOf(
  ctx: SqliteContext,
  owner: string,
  now: number,
  out: SqliteOutbox,
): { workflowTasks: number; activityTasks: number } {
  const workflowTasks = ctx.stmts.releaseWorkflowLeasesOf.run(now, owner).changes;
  const activityTasks = ctx.stmts.releaseActivityLeasesOf.run(now, owner).changes;
  if (workflowTasks > 0) out.workflowTask = true;
  if (activityTasks > 0) out.activityTask = true;
  return { workflowTasks, activityTasks };
}
