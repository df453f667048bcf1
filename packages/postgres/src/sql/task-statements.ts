/**
 * Statements over the two task queues: claiming, releasing and fencing workflow tasks; claiming,
 * heartbeating, completing, retrying and releasing activity attempts. The claim queries are tuned
 * (one index probe per name); change them only with the benchmark. See statements.ts for the
 * conventions every statement follows.
 */
import { attemptLeaseSql, NOW, RUN_COLUMNS, type StatementFactory, wakeSet } from "./statement.ts";

/** The task-queue statements of one schema (`S`: the quoted schema). */
export function taskStatements(S: string, st: StatementFactory) {
  return {
    // ── workflow tasks ────────────────────────────────────────────────────────────────────
    /**
     * Leases the oldest claimable task of these workflows and returns it with its run and inbox,
     * in one round trip. The oldest candidate of each name is found by one probe of the claim
     * index (so ready work of names this worker does not run is never walked), then the oldest of
     * those is taken. SKIP LOCKED: a row another worker is claiming, or a run being written to, is
     * passed over instead of waited for.
     */
    claimWorkflowTask: st(
      "claim_wf",
      `WITH c AS (
         UPDATE ${S}.workflow_tasks SET lease_owner = $2, lease_expires_at = ${NOW} + $3::bigint,
           visible_at = ${NOW} + $3::bigint, fence = fence + 1
         WHERE run_id = (
           SELECT h.run_id FROM unnest($4::text[]) AS n(name)
           CROSS JOIN LATERAL (
             SELECT t.run_id, t.visible_at FROM ${S}.workflow_tasks t
             WHERE t.workflow_name = n.name AND t.visible_at <= ${NOW}
             ORDER BY t.visible_at, t.run_id LIMIT 1 FOR UPDATE SKIP LOCKED) h
           ORDER BY h.visible_at, h.run_id LIMIT 1)
         RETURNING run_id, fence
       )
       SELECT c.fence, ${RUN_COLUMNS.split(",")
         .map((c) => `r.${c.trim()}`)
         .join(", ")},
         i.id AS i_id, i.ts AS i_ts, i.type AS i_type, i.step AS i_step, i.body AS i_body, i.crc AS i_crc
       FROM c JOIN ${S}.runs r ON r.run_id = c.run_id LEFT JOIN ${S}.inbox i ON i.run_id = c.run_id
       ORDER BY i.id`,
      ["offset", "owner", "leaseMs", "names"],
    ),
    /** Fenced release, claimable at `at` (null: now); no row = stale fence. */
    releaseWorkflowTask: st(
      "release_wf",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks SET visible_at = COALESCE($4::bigint, ${NOW}), lease_owner = NULL,
           lease_expires_at = NULL
         WHERE run_id = $2 AND fence = $3 RETURNING run_id
       )
       SELECT pg_notify($5, $6) FROM w`,
      ["offset", "runId", "fence", "at", "channel", "payload"],
    ),
    workflowTaskFence: st("wf_fence", `SELECT fence FROM ${S}.workflow_tasks WHERE run_id = $1`, ["runId"]),
    retryBlockedRuns: st(
      "retry_blocked",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks SET visible_at = ${NOW}
         WHERE blocked AND lease_owner IS NULL AND workflow_name = ANY($2::text[]) RETURNING 1
       ), n AS (SELECT count(*) AS n FROM w)
       SELECT n.n, (SELECT pg_notify($3, $4) WHERE n.n > 0) AS notified FROM n`,
      ["offset", "names", "channel", "payload"],
    ),

    // ── activity tasks ────────────────────────────────────────────────────────────────────
    /**
     * Leases the oldest claimable activity task of these names (attempt + 1, fence + 1) for the
     * attempt's lease (see attemptLeaseSql), probing the claim index once per name as
     * claimWorkflowTask does.
     */
    claimActivity: st(
      "claim_act",
      `UPDATE ${S}.activity_tasks SET attempt = attempt + 1, fence = fence + 1, lease_owner = $2,
         lease_expires_at = ${NOW} + ${attemptLeaseSql("$4::bigint")},
         visible_at       = ${NOW} + ${attemptLeaseSql("$4::bigint")}
       WHERE task_id = (
         SELECT h.task_id FROM unnest($3::text[]) AS n(name)
         CROSS JOIN LATERAL (
           SELECT a.task_id, a.visible_at FROM ${S}.activity_tasks a
           WHERE a.name = n.name AND a.visible_at <= ${NOW}
           ORDER BY a.visible_at, a.task_id LIMIT 1 FOR UPDATE SKIP LOCKED) h
         ORDER BY h.visible_at, h.task_id LIMIT 1)
       RETURNING task_id, run_id, workflow_id, step, name, input, options, attempt, fence, timeout_ms,
         heartbeat_timeout_ms, scheduled_at, lease_expires_at, crc`,
      ["offset", "owner", "names", "defaultLeaseMs"],
    ),
    heartbeatActivity: st(
      "heartbeat_act",
      `UPDATE ${S}.activity_tasks SET lease_expires_at = ${NOW} + $4::bigint, visible_at = ${NOW} + $4::bigint
       WHERE task_id = $2 AND fence = $3 AND lease_owner IS NOT NULL
       RETURNING lease_expires_at`,
      ["offset", "taskId", "fence", "leaseMs"],
    ),
    /** The immutable facts of a live attempt, read before locking its run. */
    liveAttempt: st(
      "live_attempt",
      `SELECT run_id, step FROM ${S}.activity_tasks WHERE task_id = $1 AND fence = $2 AND lease_owner IS NOT NULL`,
      ["taskId", "fence"],
    ),
    /**
     * Ends an attempt: locks (and wakes) the run's task row first, then deletes the task if its
     * fence still holds, then puts the result in the inbox. If the fence no longer holds nothing
     * is deleted and the caller rolls the (spurious) wake back.
     */
    completeActivity: st(
      "complete_act",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks t SET ${wakeSet("$4::bigint")} WHERE t.run_id = $1 RETURNING t.run_id
       ), d AS (
         DELETE FROM ${S}.activity_tasks a USING w
         WHERE a.task_id = $2 AND a.fence = $3 AND a.lease_owner IS NOT NULL AND a.run_id = w.run_id
         RETURNING a.run_id
       ), ins AS (
         INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
         SELECT run_id, $4::bigint, $5::text, $6::int, $7::bytea, $8::bigint FROM d
       )
       SELECT count(*) AS n FROM d`,
      ["runId", "taskId", "fence", "now", "type", "step", "body", "crc"],
    ),
    retryActivity: st(
      "retry_act",
      `WITH a AS (
         UPDATE ${S}.activity_tasks SET lease_owner = NULL, lease_expires_at = NULL, visible_at = $3,
           last_error = $4
         WHERE task_id = $1 AND fence = $2 AND lease_owner IS NOT NULL RETURNING 1
       )
       SELECT pg_notify($5, $6) FROM a`,
      ["taskId", "fence", "retryAt", "lastError", "channel", "payload"],
    ),
    /** Un-claims an attempt that never started: ready now, not counted. */
    releaseActivity: st(
      "release_act",
      `WITH a AS (
         UPDATE ${S}.activity_tasks SET attempt = GREATEST(attempt - 1, 0), lease_owner = NULL,
           lease_expires_at = NULL, visible_at = ${NOW}
         WHERE task_id = $2 AND fence = $3 AND lease_owner IS NOT NULL RETURNING 1
       )
       SELECT pg_notify($4, $5) FROM a`,
      ["offset", "taskId", "fence", "channel", "payload"],
    ),
  };
}
