/**
 * Statements of an activation commit: the guarded run update with the activation's body in one
 * round trip, the body on its own, withdrawing cancelled work, settling the workflow task, and
 * emptying a closed run's queues. See statements.ts for the conventions every statement follows.
 */
import { OPEN, type StatementFactory } from "./statement.ts";

/**
 * Parameters `$1..$11` of an activation's body: the run, the transaction's time, the eager
 * completion (task id and fence, or nulls), the new history events as column arrays, and the
 * consumed inbox ids.
 */
const BODY_HEAD = [
  "runId",
  "now",
  "doneTaskId",
  "doneFence",
  "eventSeqs",
  "eventTs",
  "eventTypes",
  "eventSteps",
  "eventBodies",
  "eventCrcs",
  "consumedIds",
] as const;

/**
 * Parameters `$13..$28` of an activation's body: the new activity tasks and timers as column
 * arrays, whether to settle the task, and whether the commit is fenced.
 */
const BODY_TAIL = [
  "actTaskIds",
  "actSteps",
  "actNames",
  "actInputs",
  "actOptions",
  "actAttempts",
  "actFences",
  "actVisibleAt",
  "actOwners",
  "actLeaseExpiresAt",
  "actTimeoutMs",
  "actHeartbeatTimeoutMs",
  "timerSteps",
  "timerDueAt",
  "settle",
  "fenced",
] as const;

/** The activation statements of one schema (`S`: the quoted schema). */
export function activationStatements(S: string, st: StatementFactory) {
  /**
   * The CTEs `fin`, `ev`, `con`, `act`, `tim`, `waiting` and `st` of an activation's body (see
   * applyActivation for what they do), each write gated on `gate` (a SQL condition), with the new
   * activity tasks' workflow id taken from `workflowId` (a SQL expression).
   */
  const activationBody = (gate: string, workflowId: string, activityCrc: string) =>
    `fin AS (
         DELETE FROM ${S}.activity_tasks
         WHERE ${gate} AND $3::text IS NOT NULL AND task_id = $3::text AND fence = $4::bigint
           AND lease_owner IS NOT NULL AND run_id = $1
         RETURNING 1
       ), ev AS (
         INSERT INTO ${S}.history (run_id, seq, ts, type, step, body, crc)
         SELECT $1, u.seq, u.ts, u.type, u.step, u.body, u.crc
         FROM unnest($5::int[], $6::bigint[], $7::text[], $8::int[], $9::bytea[], $10::bigint[])
           AS u(seq, ts, type, step, body, crc)
         WHERE ${gate}
       ), con AS (
         DELETE FROM ${S}.inbox WHERE ${gate} AND run_id = $1 AND id = ANY($11::bigint[]) RETURNING id
       ), act AS (
         INSERT INTO ${S}.activity_tasks (task_id, run_id, workflow_id, step, name, input, options, attempt, fence,
           visible_at, lease_owner, lease_expires_at, timeout_ms, heartbeat_timeout_ms, scheduled_at, crc)
         SELECT u.task_id, $1, ${workflowId}, u.step, u.name, u.input, u.options, u.attempt, u.fence, u.visible_at,
           u.lease_owner, u.lease_expires_at, u.timeout_ms, u.hb, $2::bigint, u.crc
         FROM unnest($13::text[], $14::int[], $15::text[], $16::bytea[], $17::bytea[], $18::int[], $19::bigint[],
           $20::bigint[], $21::text[], $22::bigint[], $23::bigint[], $24::bigint[], ${activityCrc}::bigint[])
           AS u(task_id, step, name, input, options, attempt, fence, visible_at, lease_owner, lease_expires_at,
             timeout_ms, hb, crc)
         WHERE ${gate}
       ), tim AS (
         INSERT INTO ${S}.timers (run_id, step, due_at)
         SELECT $1, u.step, u.due_at FROM unnest($25::int[], $26::bigint[]) AS u(step, due_at) WHERE ${gate}
       ), waiting AS (
         SELECT EXISTS (SELECT 1 FROM ${S}.inbox i WHERE i.run_id = $1 AND NOT (i.id = ANY($11::bigint[]))) AS w
       ), st AS (
         UPDATE ${S}.workflow_tasks t SET blocked = false,
           visible_at = CASE WHEN $28::boolean OR t.lease_owner IS NULL OR t.lease_expires_at <= $2::bigint
             THEN (CASE WHEN (SELECT w FROM waiting) THEN $2::bigint ELSE NULL END) ELSE t.visible_at END,
           lease_owner = CASE WHEN $28::boolean OR t.lease_owner IS NULL OR t.lease_expires_at <= $2::bigint
             THEN NULL ELSE t.lease_owner END,
           lease_expires_at = CASE WHEN $28::boolean OR t.lease_owner IS NULL OR t.lease_expires_at <= $2::bigint
             THEN NULL ELSE t.lease_expires_at END
         WHERE ${gate} AND t.run_id = $1 AND $27::boolean
         RETURNING t.visible_at
       )`;

  return {
    /**
     * The activation guard, the run update and the body of the activation, in one round trip.
     * `lk` locks the run's task row first (lock order: task row, then run row); `g` updates the
     * run only when it is open, at the expected seq, and (when a fence is given) the task still
     * carries that fence — if the run row changed while this waited for the lock, PostgreSQL
     * re-checks `last_seq` and `status` against the committed version. No row returned = a guard
     * failed, and then the body below wrote nothing either (every part of it is gated on `ok`).
     *
     * The body (see `activationBody`) reads the inbox from this statement's snapshot, taken
     * before the lock was granted, so it may only run when no delivery committed in between. Every
     * writer of a run's inbox updates (or deletes) the task row in the same transaction, so such a
     * delivery leaves a newer version of the row: `ok` holds only when the version this statement
     * locked is the one its snapshot sees (same `xmin`). Otherwise (`applied` false, contention
     * only) the run update stands and the caller runs the body as `applyActivation`, a statement
     * of its own whose snapshot is taken after the lock.
     *
     * `bufferedSignals` null leaves the count unchanged.
     */
    commitActivation: st(
      "commit_activation",
      `WITH lk AS MATERIALIZED (SELECT fence, xmin::text AS x FROM ${S}.workflow_tasks WHERE run_id = $1 FOR UPDATE),
       g AS (
         UPDATE ${S}.runs SET last_seq = $30, status = $31, updated_at = $2, closed_at = $32, result = $33,
           error = $34, blocked_reason = NULL, continued_to = $35, crc = $36::bigint,
           buffered_signals = COALESCE($37::int, buffered_signals)
         WHERE run_id = $1 AND last_seq = $12 AND status IN ${OPEN}
           AND EXISTS (SELECT 1 FROM lk WHERE $29::bigint IS NULL OR lk.fence = $29::bigint)
         RETURNING workflow_id, parent_run_id, parent_workflow_id, parent_step
       ), ok AS (
         SELECT g.workflow_id FROM g
         WHERE (SELECT x FROM lk) = (SELECT xmin::text FROM ${S}.workflow_tasks WHERE run_id = $1)
       ), ${activationBody("EXISTS (SELECT 1 FROM ok)", "(SELECT workflow_id FROM ok)", "$38")}
       SELECT g.workflow_id, g.parent_run_id, g.parent_workflow_id, g.parent_step,
              EXISTS (SELECT 1 FROM ok) AS applied,
              (SELECT count(*) FROM fin) AS finished, (SELECT count(*) FROM con) AS consumed,
              (SELECT w FROM waiting) AS waiting, (SELECT visible_at FROM st) AS visible_at
       FROM g`,
      [
        ...BODY_HEAD,
        "expectedLastSeq",
        ...BODY_TAIL,
        "fence",
        "lastSeq",
        "status",
        "closedAt",
        "result",
        "error",
        "continuedTo",
        "runCrc",
        "bufferedSignals",
        "activityCrcs",
      ],
    ),
    /**
     * The body of an activation as a statement of its own, after commitActivation has taken the
     * run's lock (so this statement's snapshot already sees every delivery that committed before
     * the lock, and no new one can arrive): the second half around withdrawn work, and the whole
     * body when commitActivation could not apply it (`applied` false). The eager completion's task delete, the new history events, the
     * consumed inbox rows, the new activity tasks (some leased already: eager execution) and
     * timers, and — when asked — the task's settlement: ready now if inbox events still wait,
     * idle otherwise, lease released, blocked mark cleared. (CTEs of one statement do not see each
     * other's writes, hence the explicit exclusion of the consumed ids.) On the eager path (no
     * fence) a live lease held by another worker is left alone: that worker's commit will fail its
     * seq guard and it will hand the task back. The caller checks the counts and rolls back on a
     * mismatch.
     */
    applyActivation: st(
      "apply_activation",
      `WITH ${activationBody("true", "$12::text", "$29")}
       SELECT (SELECT count(*) FROM fin) AS finished, (SELECT count(*) FROM con) AS consumed,
              (SELECT w FROM waiting) AS waiting, (SELECT visible_at FROM st) AS visible_at`,
      [...BODY_HEAD, "workflowId", ...BODY_TAIL, "activityCrcs"],
    ),
    /**
     * Withdraws activity tasks and timers of the given steps (cancelled in this activation).
     * Returns the attempts that were running.
     */
    cancelWork: st(
      "cancel_work",
      `WITH a AS (
         DELETE FROM ${S}.activity_tasks WHERE run_id = $1 AND step = ANY($2::int[]) RETURNING task_id, lease_owner
       ), t AS (
         DELETE FROM ${S}.timers WHERE run_id = $1 AND step = ANY($3::int[])
       )
       SELECT task_id FROM a WHERE lease_owner IS NOT NULL`,
      ["runId", "activitySteps", "timerSteps"],
    ),
    /**
     * After a non-closing activation: ready now if events still wait in the inbox (delivered
     * before this transaction took the run's lock, or a ChildStartFailed it added), idle
     * otherwise; the lease is released and the blocked mark cleared. On the eager path (no fence) a
     * live lease held by another worker is left alone: that worker's commit will fail its seq guard
     * and it will hand the task back.
     */
    settleWorkflowTask: st(
      "settle_wf",
      `UPDATE ${S}.workflow_tasks SET blocked = false,
         visible_at = CASE WHEN $3::boolean OR lease_owner IS NULL OR lease_expires_at <= $2::bigint
           THEN (CASE WHEN EXISTS (SELECT 1 FROM ${S}.inbox i WHERE i.run_id = $1) THEN $2::bigint ELSE NULL END)
           ELSE visible_at END,
         lease_owner = CASE WHEN $3::boolean OR lease_owner IS NULL OR lease_expires_at <= $2::bigint
           THEN NULL ELSE lease_owner END,
         lease_expires_at = CASE WHEN $3::boolean OR lease_owner IS NULL OR lease_expires_at <= $2::bigint
           THEN NULL ELSE lease_expires_at END
       WHERE run_id = $1
       RETURNING visible_at`,
      ["runId", "now", "fenced"],
    ),
    /**
     * A closing activation withdraws everything the run still has queued. Returns the activity
     * attempts that were running (their workers are told to abort).
     */
    closeRunQueues: st(
      "close_queues",
      `WITH w AS (DELETE FROM ${S}.workflow_tasks WHERE run_id = $1),
            a AS (DELETE FROM ${S}.activity_tasks WHERE run_id = $1 RETURNING task_id, lease_owner),
            t AS (DELETE FROM ${S}.timers WHERE run_id = $1),
            r AS (DELETE FROM ${S}.signal_requests WHERE run_id = $1)
       SELECT task_id FROM a WHERE lease_owner IS NOT NULL`,
      ["runId"],
    ),
  };
}
