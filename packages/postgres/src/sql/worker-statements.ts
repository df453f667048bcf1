/**
 * Statements of the worker registry: registering and heartbeating workers, marking the dead and
 * releasing their leases, listing workers. See statements.ts for the conventions every statement
 * follows.
 */
import { NOW, type StatementFactory } from "./statement.ts";

/** The worker-registry statements of one schema (`S`: the quoted schema). */
export function workerStatements(S: string, st: StatementFactory) {
  return {
    /**
     * Registers (or refreshes) a worker; returns the incarnation the row held before (null for a
     * new row), so the caller can release a previous incarnation's leases.
     */
    upsertWorker: st(
      "upsert_worker",
      `WITH prev AS (SELECT incarnation FROM ${S}.workers WHERE worker_id = $2),
       gc AS (DELETE FROM ${S}.workers WHERE coalesce(dead_at, stopped_at) < ${NOW} - 86400000),
       up AS (
         INSERT INTO ${S}.workers (worker_id, incarnation, pid, host, started_at, heartbeat_at,
           heartbeat_interval_ms, dead_after_ms, workflow_names, activity_names)
         VALUES ($2, $3, $4, $5, ${NOW}, ${NOW}, $6, $7, $8::text[], $9::text[])
         ON CONFLICT (worker_id) DO UPDATE SET incarnation = excluded.incarnation, pid = excluded.pid,
           host = excluded.host,
           started_at = CASE WHEN ${S}.workers.incarnation = excluded.incarnation
                             THEN ${S}.workers.started_at ELSE excluded.started_at END,
           heartbeat_at = excluded.heartbeat_at, heartbeat_interval_ms = excluded.heartbeat_interval_ms,
           dead_after_ms = excluded.dead_after_ms, workflow_names = excluded.workflow_names,
           activity_names = excluded.activity_names, stopped_at = NULL, dead_at = NULL
         RETURNING 1)
       SELECT (SELECT incarnation FROM prev) AS previous, (SELECT count(*) FROM up) AS n`,
      [
        "offset",
        "workerId",
        "incarnation",
        "pid",
        "host",
        "heartbeatIntervalMs",
        "deadAfterMs",
        "workflowNames",
        "activityNames",
      ],
    ),
    /** No row = unknown or presumed dead: register again. */
    heartbeatWorker: st(
      "heartbeat_worker",
      `UPDATE ${S}.workers SET heartbeat_at = ${NOW}
       WHERE worker_id = $2 AND dead_at IS NULL AND stopped_at IS NULL RETURNING 1`,
      ["offset", "workerId"],
    ),
    stopWorker: st(
      "stop_worker",
      `UPDATE ${S}.workers SET stopped_at = ${NOW} WHERE worker_id = $2 AND stopped_at IS NULL`,
      ["offset", "workerId"],
    ),
    /** Read-only: is any registered worker's heartbeat older than its timeout? */
    anyDeadWorker: st(
      "any_dead_worker",
      `SELECT 1 FROM ${S}.workers
       WHERE dead_at IS NULL AND stopped_at IS NULL AND heartbeat_at + dead_after_ms < ${NOW} LIMIT 1`,
      ["offset"],
    ),
    /**
     * Marks every worker whose heartbeat is older than its timeout dead (on the database clock),
     * once: a concurrent sweep waits for the row lock, then finds dead_at set and skips it.
     */
    markDeadWorkers: st(
      "mark_dead_workers",
      `UPDATE ${S}.workers SET dead_at = $1
       WHERE dead_at IS NULL AND stopped_at IS NULL AND heartbeat_at + dead_after_ms < $1
       RETURNING worker_id`,
      ["now"],
    ),
    /**
     * A dead holder's leases: claimable now, fences moved on (a late commit or completion from a
     * holder that was only presumed dead is rejected). Runs once per death, so the scan of the
     * queue tables (no index on lease_owner: it would cost every claim a write) is rare.
     */
    releaseLeasesOf: st(
      "release_leases_of",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks SET visible_at = $1, lease_owner = NULL, lease_expires_at = NULL,
           fence = fence + 1
         WHERE lease_owner = ANY($2::text[]) RETURNING 1
       ), a AS (
         UPDATE ${S}.activity_tasks SET visible_at = $1, lease_owner = NULL, lease_expires_at = NULL,
           fence = fence + 1
         WHERE lease_owner = ANY($2::text[]) RETURNING 1
       )
       SELECT (SELECT count(*) FROM w) AS workflow_tasks, (SELECT count(*) FROM a) AS activity_tasks`,
      ["now", "owners"],
    ),
    listWorkers: st(
      "list_workers",
      `SELECT worker_id, pid, host, started_at, heartbeat_at, workflow_names, activity_names,
         CASE WHEN stopped_at IS NOT NULL THEN 'stopped'
              WHEN dead_at IS NOT NULL OR heartbeat_at + dead_after_ms < ${NOW} THEN 'dead'
              ELSE 'live' END AS status
       FROM ${S}.workers ORDER BY started_at, worker_id`,
      ["offset"],
    ),
  };
}
