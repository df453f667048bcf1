/**
 * How the SQLite backend judges a registered worker: on this machine, by its process (gone, or its
 * pid reused, means dead at once — no heartbeat needs to go stale); elsewhere, or where the process
 * cannot be checked, by its heartbeat's age against the timeout the worker registered.
 */
import type { WorkerInfo } from "@spool/core";
import { processState } from "./process-identity.ts";
import type { WorkerRow } from "./statements.ts";

/** How long stopped and dead workers stay listed before their rows are deleted. */
export const FORGET_WORKERS_AFTER_MS = 86_400_000;

/** True when the worker of this row is dead (its process is gone, or its heartbeat is too old). */
export function isDeadWorker(row: WorkerRow, now: number): boolean {
  const state = processState({
    pid: row.pid,
    host: row.host,
    bootId: row.boot_id,
    pidNs: row.pid_ns,
    startTicks: row.start_ticks,
  });
  if (state !== "unknown") return state === "dead";
  return row.heartbeat_at + row.dead_after_ms < now;
}

/** A registry row as the inspector lists it. */
export function toWorkerInfo(
  row: WorkerRow & {
    workflow_names: string;
    activity_names: string;
    stopped_at: number | null;
    dead_at: number | null;
  },
  now: number,
): WorkerInfo {
  const status =
    row.stopped_at !== null ? "stopped" : row.dead_at !== null || isDeadWorker(row, now) ? "dead" : "live";
  return {
    workerId: row.worker_id,
    workflowNames: parseNames(row.workflow_names),
    activityNames: parseNames(row.activity_names),
    pid: row.pid,
    host: row.host,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    status,
  };
}

function parseNames(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((n): n is string => typeof n === "string") : [];
  } catch {
    return [];
  }
}

/** Live workers first, then dead, then stopped; oldest first within each. */
export function sortWorkers(list: WorkerInfo[]): WorkerInfo[] {
  const rank = { live: 0, dead: 1, stopped: 2 } as const;
  return list.sort((a, b) => rank[a.status] - rank[b.status] || a.startedAt - b.startedAt);
}
