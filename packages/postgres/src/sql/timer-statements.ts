/**
 * Statements of the timer sweep, the wake-up probes and the queue statistics the inspector
 * reads. See statements.ts for the conventions every statement follows.
 */
import { NOW, type StatementFactory, wakeSet } from "./statement.ts";

/** The timer, wake-up and statistics statements of one schema (`S`: the quoted schema). */
export function timerStatements(S: string, st: StatementFactory) {
  return {
    // ── timers ────────────────────────────────────────────────────────────────────────────
    /**
     * Removes up to `limit` due timers whose runs could be locked (SKIP LOCKED: a run being
     * committed keeps its timers until the next sweep), returning them.
     */
    takeDueTimers: st(
      "take_timers",
      `WITH due AS (
         SELECT run_id, step FROM ${S}.timers WHERE due_at <= $1 ORDER BY due_at, run_id, step LIMIT $2
       ), locked AS (
         SELECT run_id FROM ${S}.workflow_tasks WHERE run_id IN (SELECT run_id FROM due)
         FOR UPDATE SKIP LOCKED
       )
       DELETE FROM ${S}.timers t USING due d
       WHERE t.run_id = d.run_id AND t.step = d.step AND t.run_id IN (SELECT run_id FROM locked)
       RETURNING t.run_id, t.step, t.due_at`,
      ["now", "limit"],
    ),
    /**
     * TimerFired events for fired timers, in the given order, and the wake of their runs (whose
     * rows this transaction has locked).
     */
    deliverFiredTimers: st(
      "deliver_timers",
      `WITH ins AS (
         INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
         SELECT u.run_id, $1::bigint, 'TimerFired', u.step, NULL, u.crc
         FROM unnest($2::text[], $3::int[], $4::bigint[]) WITH ORDINALITY AS u(run_id, step, crc, ord)
         ORDER BY u.ord
       )
       UPDATE ${S}.workflow_tasks t SET ${wakeSet("$1::bigint")} WHERE t.run_id = ANY($2::text[])`,
      ["now", "runIds", "steps", "crcs"],
    ),

    // ── wake-ups and stats ────────────────────────────────────────────────────────────────
    /** A cheap probe, so a sweep with nothing due opens no transaction. */
    anyTimerDue: st("any_timer_due", `SELECT 1 AS one FROM ${S}.timers WHERE due_at <= ${NOW} LIMIT 1`, [
      "offset",
    ]),
    /** Three index probes: `min()` over an indexed column reads one end of the index. */
    nextWakeAt: st(
      "next_wake",
      `SELECT LEAST(
         (SELECT min(visible_at) FROM ${S}.workflow_tasks WHERE visible_at IS NOT NULL),
         (SELECT min(visible_at) FROM ${S}.activity_tasks),
         (SELECT min(due_at) FROM ${S}.timers)) AS t`,
      [],
    ),
    runsByStatus: st("runs_by_status", `SELECT status, count(*) AS n FROM ${S}.runs GROUP BY status`, []),
    queueStats: st(
      "queue_stats",
      `SELECT
         (SELECT count(*) FROM ${S}.workflow_tasks WHERE visible_at <= ${NOW}) AS ready_wf,
         (SELECT count(*) FROM ${S}.activity_tasks WHERE visible_at <= ${NOW}) AS ready_act,
         (SELECT count(*) FROM ${S}.activity_tasks WHERE lease_owner IS NOT NULL AND lease_expires_at > ${NOW})
           AS running_act,
         (SELECT count(*) FROM ${S}.activity_tasks WHERE lease_owner IS NULL AND visible_at > ${NOW})
           AS backoff_act,
         (SELECT count(*) FROM ${S}.timers) AS timers`,
      ["offset"],
    ),
    /**
     * The unfinished activity steps of some runs, state on the database clock; at most `perRun`
     * per run, those with the most attempts.
     */
    pendingActivities: st(
      "pending_acts",
      `SELECT * FROM (
         SELECT run_id, step, name, attempt, last_error, visible_at, lease_expires_at, scheduled_at,
           CASE WHEN lease_owner IS NOT NULL AND lease_expires_at > ${NOW} THEN 'running'
                WHEN visible_at > ${NOW} THEN 'backoff' ELSE 'waiting' END AS state,
           row_number() OVER (PARTITION BY run_id ORDER BY attempt DESC, step) AS rank
         FROM ${S}.activity_tasks WHERE run_id = ANY($2::text[])) p
       WHERE rank <= $3::int ORDER BY run_id, step`,
      ["offset", "runIds", "perRun"],
    ),
    waitingWork: st(
      "waiting_work",
      `SELECT 'workflow' AS kind, workflow_name AS name, count(*) AS count, min(visible_at) AS oldest
         FROM ${S}.workflow_tasks WHERE visible_at <= $1 GROUP BY workflow_name
       UNION ALL
       SELECT 'activity', name, count(*), min(visible_at)
         FROM ${S}.activity_tasks WHERE visible_at <= $1 GROUP BY name`,
      ["readyBefore"],
    ),
  };
}
