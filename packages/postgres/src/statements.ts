/**
 * Every SQL statement the PostgreSQL backend runs, built once per schema. Keeping the SQL in one
 * place makes the storage protocol reviewable on its own. Statements are sent as named prepared
 * statements (the name includes a hash of the schema, so two backends on different schemas can
 * share a pool), so the hot paths are parsed and planned once per connection.
 *
 * Conventions that every statement follows (HOW_IT_WORKS.md explains why):
 *
 * - **Time.** Single-statement operations compute "now" in SQL from the database clock:
 *   `statement_timestamp()` in milliseconds plus `$1`, the test-only clock offset (0 in
 *   production). `statement_timestamp()` is stable within a statement, so the planner can use it
 *   in an index range scan (`clock_timestamp()` is volatile and would force a sequential scan).
 *   Transactions read the clock once at BEGIN and pass it as a parameter, so every row a
 *   transaction writes carries the same time and the checksum (computed in JS) covers it.
 * - **Locks.** A run's `workflow_tasks` row is its lock. Everything that changes a run's state
 *   (commit, delivery of an inbound event, block, release) locks that row first and only then
 *   touches `runs`, `inbox`, `activity_tasks` or `timers`. One lock order means a signal arriving
 *   during a commit waits instead of deadlocking, and a run can never close between a delivery's
 *   check and its insert (which would lose an acknowledged signal). Claims use
 *   `FOR UPDATE SKIP LOCKED`, so they never wait.
 */

import { crc32 } from "node:zlib";
import type { StoredActivityRow, StoredHistoryRow, StoredInboxRow, StoredRunRow } from "@spool/sql-store";

/** Row shapes shared with every SQL backend (see stored-rows.ts in @spool/core). */
export type RunRow = StoredRunRow;
export type HistoryRow = StoredHistoryRow;
export type InboxRow = StoredInboxRow;
export type ActivityRow = StoredActivityRow;

/** Statuses of an open run, as a SQL list. Kept in one place so every query agrees. */
const OPEN = "('running', 'blocked')";

/** The database clock in milliseconds since the epoch (stable within one statement). */
export const DB_NOW_MS = "(floor(extract(epoch from statement_timestamp()) * 1000))::bigint";

/** "Now" in a single statement: the database clock plus the test-only offset in `$1`. */
const NOW = `(${DB_NOW_MS} + $1::bigint)`;

/**
 * The lease of an activity attempt in SQL over `heartbeat_timeout_ms` and `timeout_ms`: the
 * heartbeat timeout when set, else the attempt timeout, else the default; plus a grace of half of
 * it (100 ms to 1 s), exactly as `attemptLeaseMs` in @spool/core computes it. The grace lets the
 * worker that owns the attempt report its own timeout before another worker may take it over.
 */
function attemptLeaseSql(defaultParam: string): string {
  const base = `(CASE WHEN heartbeat_timeout_ms > 0 THEN heartbeat_timeout_ms WHEN timeout_ms > 0 THEN timeout_ms ELSE ${defaultParam} END)`;
  return `(${base} + LEAST(1000, GREATEST(100, ${base} / 2)))`;
}

/** Quotes an identifier for SQL (`"name"`, embedded quotes doubled). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Columns of `runs` in the order {@link RunRow} names them. */
export const RUN_COLUMNS = `run_id, workflow_id, workflow_name, status, version, created_at, updated_at, closed_at,
  last_seq, parent_run_id, parent_workflow_id, parent_step, continued_from, continued_to, result, error,
  blocked_reason, input_hash, crc`;

/** A claimed workflow task joined with its run and (one row per event) its inbox. */
export type ClaimRow = RunRow & {
  fence: number;
  i_id: number | null;
  i_ts: unknown;
  i_type: unknown;
  i_step: unknown;
  i_body: unknown;
  i_crc: unknown;
};

/** A named statement: `name` lets the driver prepare it once per connection. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

/** Builds every statement for one schema. */
export function buildStatements(schema: string) {
  const S = quoteIdent(schema);
  const prefix = `spool_${(crc32(schema) >>> 0).toString(36)}_`;
  const st = (name: string, text: string): Statement => ({ name: prefix + name, text });

  /**
   * Wakes a locked-or-locking task row: claimable now unless leased (the holder sees the inbox
   * when it commits) or blocked (new input cannot fix code that fails to replay; retryAt or
   * retryBlockedRuns wakes it). Written as an UPDATE of the row even when nothing changes, so the
   * delivery takes the run's lock first.
   */
  const wakeSet = (now: string) =>
    `visible_at = CASE WHEN t.lease_owner IS NULL AND NOT t.blocked
                        THEN LEAST(COALESCE(t.visible_at, ${now}), ${now}) ELSE t.visible_at END`;

  /**
   * The CTEs `fin`, `ev`, `con`, `act`, `tim`, `waiting` and `st` of an activation's body (see
   * applyActivation for what they do and for the parameters), each write gated on `gate` (a SQL
   * condition), with the new activity tasks' workflow id taken from `workflowId` (a SQL expression).
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
    // ── runs ──────────────────────────────────────────────────────────────────────────────
    /**
     * Creates a run with its WorkflowStarted event (#1) and a ready task, unless the workflow id
     * already has an open run: ON CONFLICT on the partial unique index waits for a concurrent
     * creator and then does nothing, so no unique-violation error is ever raised here.
     * $1 run_id $2 workflow_id $3 workflow_name $4 version $5 now $6 parent_run_id
     * $7 parent_workflow_id $8 parent_step $9 continued_from $10 started body $11 crc
     * $12 input_hash $13 run crc.
     */
    createRun: st(
      "create_run",
      `WITH r AS (
         INSERT INTO ${S}.runs (run_id, workflow_id, workflow_name, status, version, created_at, updated_at,
           last_seq, parent_run_id, parent_workflow_id, parent_step, continued_from, input_hash, crc)
         VALUES ($1, $2, $3, 'running', $4, $5, $5, 1, $6, $7, $8, $9, $12::text, $13::bigint)
         ON CONFLICT (workflow_id) WHERE status IN ${OPEN} DO NOTHING
         RETURNING run_id
       ), h AS (
         INSERT INTO ${S}.history (run_id, seq, ts, type, step, body, crc)
         SELECT run_id, 1, $5::bigint, 'WorkflowStarted', NULL, $10::bytea, $11::bigint FROM r
       ), w AS (
         INSERT INTO ${S}.workflow_tasks (run_id, workflow_name, visible_at)
         SELECT run_id, $3::text, $5::bigint FROM r
       )
       SELECT run_id FROM r`,
    ),
    getRun: st("get_run", `SELECT ${RUN_COLUMNS} FROM ${S}.runs WHERE run_id = $1`),
    /** Uses the partial unique index, whose WHERE clause this query repeats verbatim. */
    getOpenRun: st(
      "get_open_run",
      `SELECT ${RUN_COLUMNS} FROM ${S}.runs WHERE workflow_id = $1 AND status IN ${OPEN}`,
    ),
    /** The open run of a workflow id, else its newest run. */
    getLatestRun: st(
      "get_latest_run",
      `SELECT ${RUN_COLUMNS} FROM ${S}.runs WHERE workflow_id = $1
       ORDER BY (status IN ${OPEN}) DESC, created_at DESC, run_id DESC LIMIT 1`,
    ),
    runState: st("run_state", `SELECT status, last_seq FROM ${S}.runs WHERE run_id = $1`),
    /**
     * The activation guard, the run update and the body of the activation, in one round trip.
     * `lk` locks the run's task row first (lock order: task row, then run row); `g` updates the
     * run only when it is open, at the expected seq, and (when a fence is given) the task still
     * carries that fence — if the run row changed while this waited for the lock, PostgreSQL
     * re-checks `last_seq` and `status` against the committed version. No row returned = a guard
     * failed, and then the body below wrote nothing either (every part of it is gated on `ok`).
     *
     * The body (see {@link activationBody}) reads the inbox from this statement's snapshot, taken
     * before the lock was granted, so it may only run when no delivery committed in between. Every
     * writer of a run's inbox updates (or deletes) the task row in the same transaction, so such a
     * delivery leaves a newer version of the row: `ok` holds only when the version this statement
     * locked is the one its snapshot sees (same `xmin`). Otherwise (`applied` false, contention
     * only) the run update stands and the caller runs the body as `applyActivation`, a statement
     * of its own whose snapshot is taken after the lock.
     *
     * $1 run_id $2 now; $3..$11 and $13..$28 as in applyActivation; $12 expected_last_seq
     * $29 fence|null $30 last_seq $31 status $32 closed_at $33 result $34 error $35 continued_to
     * $36 run crc $37 buffered signals|null (unchanged) $38 the new activity tasks' crcs.
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
    ),
    /**
     * Parks a run (fenced): the task row first, then the run row. $1 offset $2 run_id $3 fence
     * $4 retry_at $5 error $6 reason $7 channel $8 payload $9 run crc (an open run's result is NULL).
     */
    blockRun: st(
      "block_run",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks SET visible_at = $4, lease_owner = NULL, lease_expires_at = NULL, blocked = true
         WHERE run_id = $2 AND fence = $3 RETURNING run_id
       ), r AS (
         UPDATE ${S}.runs r SET status = 'blocked', error = $5, blocked_reason = $6, updated_at = ${NOW},
           crc = $9::bigint
         FROM w WHERE r.run_id = w.run_id AND r.status IN ${OPEN}
       )
       SELECT pg_notify($7, $8) FROM w`,
    ),

    // ── history ───────────────────────────────────────────────────────────────────────────
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
     *
     * $1 run_id $2 now $3 finish task_id|null $4 finish fence|null; events $5 seq $6 ts $7 type
     * $8 step $9 body $10 crc; $11 consumed inbox ids; $12 workflow_id; activities $13 task_id
     * $14 step $15 name $16 input $17 options $18 attempt $19 fence $20 visible_at $21 owner
     * $22 lease_expires_at $23 timeout_ms $24 heartbeat_timeout_ms; timers $25 step $26 due_at;
     * $27 settle $28 fenced $29 activity crcs.
     */
    applyActivation: st(
      "apply_activation",
      `WITH ${activationBody("true", "$12::text", "$29")}
       SELECT (SELECT count(*) FROM fin) AS finished, (SELECT count(*) FROM con) AS consumed,
              (SELECT w FROM waiting) AS waiting, (SELECT visible_at FROM st) AS visible_at`,
    ),

    selectHistory: st(
      "select_history",
      `SELECT seq, ts, type, step, body, crc FROM ${S}.history WHERE run_id = $1 AND seq > $2 ORDER BY seq`,
    ),

    // ── inbox ─────────────────────────────────────────────────────────────────────────────
    selectInbox: st(
      "select_inbox",
      `SELECT id, ts, type, step, body, crc FROM ${S}.inbox WHERE run_id = $1 ORDER BY id`,
    ),
    /**
     * Puts an inbound event in the open run of a workflow id (optionally a given run, optionally
     * only a child of a given parent) and wakes it. The task-row UPDATE takes the run's lock
     * before the insert; if the run closed while this waited, the row is gone and nothing is
     * inserted (the caller looks again: a continue-as-new successor may be open now).
     * $1 workflow_id $2 run_id|null $3 parent_run_id|null $4 now $5 type $6 body $7 crc.
     */
    deliverToOpenRun: st(
      "deliver_open",
      `WITH target AS (
         SELECT run_id FROM ${S}.runs
         WHERE workflow_id = $1 AND status IN ${OPEN} AND ($2::text IS NULL OR run_id = $2::text)
           AND ($3::text IS NULL OR parent_run_id = $3::text)
       ), w AS (
         UPDATE ${S}.workflow_tasks t SET ${wakeSet("$4::bigint")}
         FROM target WHERE t.run_id = target.run_id RETURNING t.run_id, t.blocked
       ), ins AS (
         INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
         SELECT run_id, $4::bigint, $5::text, NULL, $6::bytea, $7::bigint FROM w RETURNING run_id
       )
       SELECT w.run_id, w.blocked FROM w JOIN ins USING (run_id)`,
    ),
    /**
     * Puts an inbound event in a run's inbox and wakes it, if the run is open (its task row
     * exists). $1 run_id $2 now $3 type $4 step $5 body $6 crc.
     */
    deliverToRun: st(
      "deliver_run",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks t SET ${wakeSet("$2::bigint")} WHERE t.run_id = $1 RETURNING t.run_id
       )
       INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
       SELECT run_id, $2::bigint, $3::text, $4::int, $5::bytea, $6::bigint FROM w RETURNING id`,
    ),
    /** Records a signal's de-duplication key; no row = the run already received it. $1 run_id $2 key. */
    rememberSignal: st(
      "remember_signal",
      `INSERT INTO ${S}.signal_requests (run_id, request_id) VALUES ($1, $2)
       ON CONFLICT DO NOTHING RETURNING run_id`,
    ),
    /**
     * Finds and locks the open run a signal goes to (its task row: the lock every writer of the
     * run's inbox takes first). No row = no open run, or it closed while this waited for the lock
     * (its task row is gone). $1 workflow_id $2 run_id|null.
     */
    lockOpenRun: st(
      "lock_open_run",
      `SELECT t.run_id FROM ${S}.workflow_tasks t
       WHERE t.run_id = (SELECT run_id FROM ${S}.runs
                         WHERE workflow_id = $1 AND status IN ${OPEN} AND ($2::text IS NULL OR run_id = $2::text))
       FOR UPDATE OF t`,
    ),
    /**
     * Delivers a signal to a run this transaction has locked (lockOpenRun, or created), unless the
     * run already holds `$5` unconsumed signals: waiting in its inbox plus held by its code
     * (recorded by its last activation). A statement of its own after the lock, so its snapshot
     * sees every delivery and commit that went before: concurrent senders cannot overshoot.
     * $1 run_id $2 now $3 body $4 crc $5 cap.
     */
    deliverSignalIfRoom: st(
      "deliver_signal_if_room",
      `WITH n AS (
         SELECT r.buffered_signals
           + (SELECT count(*) FROM ${S}.inbox i WHERE i.run_id = r.run_id AND i.type = 'SignalReceived') AS n
         FROM ${S}.runs r WHERE r.run_id = $1
       ), w AS (
         UPDATE ${S}.workflow_tasks t SET ${wakeSet("$2::bigint")}
         WHERE t.run_id = $1 AND (SELECT n FROM n) < $5::bigint RETURNING t.run_id
       ), ins AS (
         INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
         SELECT run_id, $2::bigint, 'SignalReceived', NULL, $3::bytea, $4::bigint FROM w RETURNING id
       )
       SELECT (SELECT n FROM n) AS n, (SELECT count(*) FROM ins) AS delivered`,
    ),
    deleteInboxOfRun: st("delete_inbox", `DELETE FROM ${S}.inbox WHERE run_id = $1`),
    /**
     * Appends inbound events to a run's inbox in the given order (continue-as-new's carried
     * signals). The caller holds the run's lock or created the run. $1 run_id $2 now $3 types
     * $4 steps $5 bodies $6 crcs.
     */
    insertInboxRows: st(
      "insert_inbox_rows",
      `INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
       SELECT $1, $2::bigint, u.type, u.step, u.body, u.crc
       FROM unnest($3::text[], $4::int[], $5::bytea[], $6::bigint[]) WITH ORDINALITY AS u(type, step, body, crc, ord)
       ORDER BY u.ord`,
    ),
    /**
     * Continue-as-new with carried signals: the old run's unseen signals and cancel requests are
     * copied as stored (checksums included) after them, keeping their order, then the old inbox is
     * emptied. $1 from $2 to.
     */
    copyInboxToRun: st(
      "copy_inbox",
      `WITH c AS (
         INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
         SELECT $2, ts, type, step, body, crc FROM ${S}.inbox
         WHERE run_id = $1 AND type IN ('SignalReceived', 'CancelRequested') ORDER BY id
       )
       DELETE FROM ${S}.inbox WHERE run_id = $1`,
    ),
    /**
     * Continue-as-new hands unconsumed signals and cancel requests to the next run (their ids, and
     * so their order, are kept); step-bound events die with the run. $1 from $2 to.
     */
    moveInboxToRun: st(
      "move_inbox",
      `WITH m AS (
         UPDATE ${S}.inbox SET run_id = $2 WHERE run_id = $1 AND type IN ('SignalReceived', 'CancelRequested')
       )
       DELETE FROM ${S}.inbox WHERE run_id = $1 AND type NOT IN ('SignalReceived', 'CancelRequested')`,
    ),

    // ── workflow tasks ────────────────────────────────────────────────────────────────────
    /**
     * Leases the oldest claimable task of these workflows and returns it with its run and inbox,
     * in one round trip. The oldest candidate of each name is found by one probe of the claim
     * index (so ready work of names this worker does not run is never walked), then the oldest of
     * those is taken. SKIP LOCKED: a row another worker is claiming, or a run being written to, is
     * passed over instead of waited for. $1 offset $2 owner $3 lease_ms $4 names.
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
    ),
    /**
     * After a non-closing activation: ready now if events still wait in the inbox (delivered
     * before this transaction took the run's lock, or a ChildStartFailed it added), idle
     * otherwise; the lease is released and the blocked mark cleared. On the eager path (no fence) a
     * live lease held by another worker is left alone: that worker's commit will fail its seq guard
     * and it will hand the task back. $1 run_id $2 now $3 fenced.
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
    ),
    /**
     * A closing activation withdraws everything the run still has queued. Returns the activity
     * attempts that were running (their workers are told to abort). $1 run_id.
     */
    closeRunQueues: st(
      "close_queues",
      `WITH w AS (DELETE FROM ${S}.workflow_tasks WHERE run_id = $1),
            a AS (DELETE FROM ${S}.activity_tasks WHERE run_id = $1 RETURNING task_id, lease_owner),
            t AS (DELETE FROM ${S}.timers WHERE run_id = $1),
            r AS (DELETE FROM ${S}.signal_requests WHERE run_id = $1)
       SELECT task_id FROM a WHERE lease_owner IS NOT NULL`,
    ),
    /** Fenced release: no row = stale fence. $1 offset $2 run_id $3 fence $4 at|null $5 channel $6 payload. */
    releaseWorkflowTask: st(
      "release_wf",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks SET visible_at = COALESCE($4::bigint, ${NOW}), lease_owner = NULL,
           lease_expires_at = NULL
         WHERE run_id = $2 AND fence = $3 RETURNING run_id
       )
       SELECT pg_notify($5, $6) FROM w`,
    ),
    workflowTaskFence: st("wf_fence", `SELECT fence FROM ${S}.workflow_tasks WHERE run_id = $1`),
    /** $1 offset $2 names $3 channel $4 payload. */
    retryBlockedRuns: st(
      "retry_blocked",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks SET visible_at = ${NOW}
         WHERE blocked AND lease_owner IS NULL AND workflow_name = ANY($2::text[]) RETURNING 1
       ), n AS (SELECT count(*) AS n FROM w)
       SELECT n.n, (SELECT pg_notify($3, $4) WHERE n.n > 0) AS notified FROM n`,
    ),

    // ── activity tasks ────────────────────────────────────────────────────────────────────
    /**
     * Withdraws activity tasks and timers of the given steps (cancelled in this activation).
     * Returns the attempts that were running. $1 run_id $2 activity steps $3 timer steps.
     */
    cancelWork: st(
      "cancel_work",
      `WITH a AS (
         DELETE FROM ${S}.activity_tasks WHERE run_id = $1 AND step = ANY($2::int[]) RETURNING task_id, lease_owner
       ), t AS (
         DELETE FROM ${S}.timers WHERE run_id = $1 AND step = ANY($3::int[])
       )
       SELECT task_id FROM a WHERE lease_owner IS NOT NULL`,
    ),
    /**
     * Leases the oldest claimable activity task of these names (attempt + 1, fence + 1) for the
     * attempt's lease (see attemptLeaseSql), probing the claim index once per name as
     * claimWorkflowTask does. $1 offset $2 owner $3 names $4 default lease.
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
    ),
    /** $1 offset $2 task_id $3 fence $4 lease_ms. */
    heartbeatActivity: st(
      "heartbeat_act",
      `UPDATE ${S}.activity_tasks SET lease_expires_at = ${NOW} + $4::bigint, visible_at = ${NOW} + $4::bigint
       WHERE task_id = $2 AND fence = $3 AND lease_owner IS NOT NULL
       RETURNING lease_expires_at`,
    ),
    /** The immutable facts of a live attempt, read before locking its run. $1 task_id $2 fence. */
    liveAttempt: st(
      "live_attempt",
      `SELECT run_id, step FROM ${S}.activity_tasks WHERE task_id = $1 AND fence = $2 AND lease_owner IS NOT NULL`,
    ),
    /**
     * Ends an attempt: locks (and wakes) the run's task row first, then deletes the task if its
     * fence still holds, then puts the result in the inbox. If the fence no longer holds nothing
     * is deleted and the caller rolls the (spurious) wake back. $1 run_id $2 task_id $3 fence
     * $4 now $5 type $6 step $7 body $8 crc.
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
    ),
    /** $1 task_id $2 fence $3 retry_at $4 last_error $5 channel $6 payload. */
    retryActivity: st(
      "retry_act",
      `WITH a AS (
         UPDATE ${S}.activity_tasks SET lease_owner = NULL, lease_expires_at = NULL, visible_at = $3,
           last_error = $4
         WHERE task_id = $1 AND fence = $2 AND lease_owner IS NOT NULL RETURNING 1
       )
       SELECT pg_notify($5, $6) FROM a`,
    ),

    /** Un-claims an attempt that never started: ready now, not counted. $1 offset $2 task_id $3 fence $4 channel $5 payload. */
    releaseActivity: st(
      "release_act",
      `WITH a AS (
         UPDATE ${S}.activity_tasks SET attempt = GREATEST(attempt - 1, 0), lease_owner = NULL,
           lease_expires_at = NULL, visible_at = ${NOW}
         WHERE task_id = $2 AND fence = $3 AND lease_owner IS NOT NULL RETURNING 1
       )
       SELECT pg_notify($4, $5) FROM a`,
    ),

    // ── timers ────────────────────────────────────────────────────────────────────────────
    /**
     * Removes up to $2 due timers whose runs could be locked (SKIP LOCKED: a run being committed
     * keeps its timers until the next sweep), returning them. $1 now $2 limit.
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
    ),
    /**
     * TimerFired events for fired timers, in the given order, and the wake of their runs (whose
     * rows this transaction has locked). $1 now $2 run ids $3 steps $4 crcs.
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
    ),

    // ── wake-ups and stats ────────────────────────────────────────────────────────────────
    /** A cheap probe, so a sweep with nothing due opens no transaction. $1 offset. */
    anyTimerDue: st("any_timer_due", `SELECT 1 AS one FROM ${S}.timers WHERE due_at <= ${NOW} LIMIT 1`),
    /** Three index probes: `min()` over an indexed column reads one end of the index. */
    nextWakeAt: st(
      "next_wake",
      `SELECT LEAST(
         (SELECT min(visible_at) FROM ${S}.workflow_tasks WHERE visible_at IS NOT NULL),
         (SELECT min(visible_at) FROM ${S}.activity_tasks),
         (SELECT min(due_at) FROM ${S}.timers)) AS t`,
    ),
    runsByStatus: st("runs_by_status", `SELECT status, count(*) AS n FROM ${S}.runs GROUP BY status`),
    /** $1 offset. */
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
    ),
    /**
     * The unfinished activity steps of some runs, state on the database clock; at most $3 per run,
     * those with the most attempts. $1 offset $2 run ids $3 per run.
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
    ),
    /** $1 ready_before. */
    waitingWork: st(
      "waiting_work",
      `SELECT 'workflow' AS kind, workflow_name AS name, count(*) AS count, min(visible_at) AS oldest
         FROM ${S}.workflow_tasks WHERE visible_at <= $1 GROUP BY workflow_name
       UNION ALL
       SELECT 'activity', name, count(*), min(visible_at)
         FROM ${S}.activity_tasks WHERE visible_at <= $1 GROUP BY name`,
    ),
    // ── worker registry ───────────────────────────────────────────────────────────────────
    /**
     * Registers (or refreshes) a worker; returns the incarnation the row held before (null for a
     * new row), so the caller can release a previous incarnation's leases. $1 offset $2 worker_id
     * $3 incarnation $4 pid $5 host $6 interval $7 dead_after $8 workflow names $9 activity names.
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
    ),
    /** No row = unknown or presumed dead: register again. $1 offset $2 worker_id. */
    heartbeatWorker: st(
      "heartbeat_worker",
      `UPDATE ${S}.workers SET heartbeat_at = ${NOW}
       WHERE worker_id = $2 AND dead_at IS NULL AND stopped_at IS NULL RETURNING 1`,
    ),
    /** $1 offset $2 worker_id. */
    stopWorker: st(
      "stop_worker",
      `UPDATE ${S}.workers SET stopped_at = ${NOW} WHERE worker_id = $2 AND stopped_at IS NULL`,
    ),
    /** Read-only: is any registered worker's heartbeat older than its timeout? $1 offset. */
    anyDeadWorker: st(
      "any_dead_worker",
      `SELECT 1 FROM ${S}.workers
       WHERE dead_at IS NULL AND stopped_at IS NULL AND heartbeat_at + dead_after_ms < ${NOW} LIMIT 1`,
    ),
    /**
     * Marks every worker whose heartbeat is older than its timeout dead (on the database clock),
     * once: a concurrent sweep waits for the row lock, then finds dead_at set and skips it. $1 now.
     */
    markDeadWorkers: st(
      "mark_dead_workers",
      `UPDATE ${S}.workers SET dead_at = $1
       WHERE dead_at IS NULL AND stopped_at IS NULL AND heartbeat_at + dead_after_ms < $1
       RETURNING worker_id`,
    ),
    /**
     * A dead holder's leases: claimable now, fences moved on (a late commit or completion from a
     * holder that was only presumed dead is rejected). Runs once per death, so the scan of the
     * queue tables (no index on lease_owner: it would cost every claim a write) is rare.
     * $1 now $2 owners.
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
    ),
    /** $1 offset. */
    listWorkers: st(
      "list_workers",
      `SELECT worker_id, pid, host, started_at, heartbeat_at, workflow_names, activity_names,
         CASE WHEN stopped_at IS NOT NULL THEN 'stopped'
              WHEN dead_at IS NOT NULL OR heartbeat_at + dead_after_ms < ${NOW} THEN 'dead'
              ELSE 'live' END AS status
       FROM ${S}.workers ORDER BY started_at, worker_id`,
    ),
    /** The quoted schema, for ad-hoc statements (listing runs). */
    schema: S,
  };
}

/** The statements of one schema. */
export type Statements = ReturnType<typeof buildStatements>;
