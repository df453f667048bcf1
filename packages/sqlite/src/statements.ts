/**
 * Every SQL statement the SQLite backend runs, prepared once per connection. Keeping the SQL in
 * one place makes the storage protocol reviewable on its own; keeping statements prepared keeps
 * the hot paths (claim, commit) to a handful of native calls with no SQL parsing.
 *
 * Statements whose `IN (...)` list length varies with the caller (workflow or activity names) are
 * prepared lazily, once per list length, by {@link ByArity}: the list is bound as parameters, so
 * the planner still sees a real `IN` list, and a worker that always passes the same names reuses
 * one statement.
 */

import {
  attemptLeaseSql,
  type StoredActivityRow,
  type StoredHistoryRow,
  type StoredInboxRow,
  type StoredRunRow,
} from "@spool/sql-store";
import type Database from "better-sqlite3";
import { type ActivityTaskValues, ByArity } from "./statement-values.ts";

/** Row shapes shared with every SQL backend (see stored-rows.ts in @spool/sql-store). */
export type RunRow = StoredRunRow;
export type HistoryRow = StoredHistoryRow;
export type InboxRow = StoredInboxRow;
export type ActivityRow = StoredActivityRow;

/** A `workers` row as a sweep reads it. */
export interface WorkerRow {
  worker_id: string;
  pid: number | null;
  host: string | null;
  boot_id: string | null;
  pid_ns: string | null;
  start_ticks: string | null;
  started_at: number;
  heartbeat_at: number;
  dead_after_ms: number;
}

/** Statuses of an open run, as a SQL list. Kept in one place so every query agrees. */
const OPEN = "('running', 'blocked')";

/** Columns of `runs` in the order {@link RunRow} names them (also used by ad-hoc listing queries). */
export const RUN_COLUMNS = `run_id, workflow_id, workflow_name, status, version, created_at, updated_at, closed_at,
  last_seq, parent_run_id, parent_workflow_id, parent_step, continued_from, continued_to, result, error,
  blocked_reason, input_hash, crc`;

/** Builds every statement for one connection. Call after migrations have run. */
export function prepareStatements(db: Database.Database) {
  const p = <P extends unknown[] | object, R = unknown>(sql: string) => db.prepare<P, R>(sql);

  return {
    // ── runs ──────────────────────────────────────────────────────────────────────────────
    insertRun: p<{
      runId: string;
      workflowId: string;
      workflowName: string;
      version: string | null;
      now: number;
      parentRunId: string | null;
      parentWorkflowId: string | null;
      parentStep: number | null;
      continuedFrom: string | null;
      inputHash: string | null;
      crc: number;
    }>(
      `INSERT INTO runs (run_id, workflow_id, workflow_name, status, version, created_at, updated_at, last_seq,
         parent_run_id, parent_workflow_id, parent_step, continued_from, input_hash, crc)
       VALUES (@runId, @workflowId, @workflowName, 'running', @version, @now, @now, 1, @parentRunId,
         @parentWorkflowId, @parentStep, @continuedFrom, @inputHash, @crc)`,
    ),
    getRun: p<[runId: string], RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE run_id = ?`),
    /** Uses the partial unique index, whose WHERE clause this query repeats verbatim. */
    getOpenRun: p<[workflowId: string], RunRow>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE workflow_id = ? AND status IN ${OPEN}`,
    ),
    getNewestRun: p<[workflowId: string], RunRow>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE workflow_id = ? ORDER BY created_at DESC, run_id DESC LIMIT 1`,
    ),
    runStatus: p<[runId: string], { status: string; last_seq: number }>(
      "SELECT status, last_seq FROM runs WHERE run_id = ?",
    ),
    /**
     * The activation guard and the run update in one statement: it changes the row only when the
     * run is open, at the expected seq, and (when a fence is given) its task still carries that
     * fence. No row returned = a guard failed.
     */
    commitRun: p<
      {
        runId: string;
        expectedLastSeq: number;
        fence: number | null;
        lastSeq: number;
        status: string;
        now: number;
        closedAt: number | null;
        result: Uint8Array | null;
        error: Uint8Array | null;
        continuedTo: string | null;
        crc: number;
        bufferedSignals: number | null;
      },
      {
        workflow_id: string;
        parent_run_id: string | null;
        parent_workflow_id: string | null;
        parent_step: number | null;
      }
    >(
      `UPDATE runs SET last_seq = @lastSeq, status = @status, updated_at = @now, closed_at = @closedAt,
         result = @result, error = @error, blocked_reason = NULL, continued_to = @continuedTo, crc = @crc,
         buffered_signals = coalesce(@bufferedSignals, buffered_signals)
       WHERE run_id = @runId AND last_seq = @expectedLastSeq AND status IN ${OPEN}
         AND (@fence IS NULL OR EXISTS (SELECT 1 FROM workflow_tasks t WHERE t.run_id = @runId AND t.fence = @fence))
       RETURNING workflow_id, parent_run_id, parent_workflow_id, parent_step`,
    ),
    /**
     * `commitRun` for the common case, an activation that leaves a running run running. It sets
     * only columns no index covers: setting `status`, even to the value it has, makes SQLite
     * rewrite the entries of the two indexes that filter on it — two more pages written per step.
     * No row returned = not this case (blocked, closed, or a guard failed): use `commitRun`.
     * `settled` spares the settle statement on the eager path, where the task stays idle.
     */
    advanceRun: p<
      [
        lastSeq: number,
        now: number,
        /** Signals the code holds unconsumed (ActivationCommit.bufferedSignals); null: unchanged. */
        buffered: number | null,
        runId: string,
        expectedLastSeq: number,
        fence: number | null,
        /** The same fence again: positional parameters cannot be referred to twice. */
        sameFence: number | null,
      ],
      {
        workflow_id: string;
        parent_run_id: string | null;
        parent_workflow_id: string | null;
        parent_step: number | null;
        /** 1 when the task is idle, unleased, with an empty inbox: nothing for the settle to do. */
        settled: number | null;
      }
    >(
      // Positional parameters: binding named ones costs a property lookup each, on the hottest
      // statement. The subqueries name the updated row's run_id rather than binding it again.
      `UPDATE runs SET last_seq = ?, updated_at = ?, buffered_signals = coalesce(?, buffered_signals)
       WHERE run_id = ? AND last_seq = ? AND status = 'running'
         AND (? IS NULL OR EXISTS (SELECT 1 FROM workflow_tasks t WHERE t.run_id = runs.run_id AND t.fence = ?))
       RETURNING workflow_id, parent_run_id, parent_workflow_id, parent_step,
         (SELECT t.lease_owner IS NULL AND t.visible_at IS NULL
                 AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.run_id = t.run_id)
            FROM workflow_tasks t WHERE t.run_id = runs.run_id) AS settled`,
    ),
    /** An open run's result is always NULL, so the checksum is computed over (run, blocked, NULL, error). */
    blockRun: p<{ error: Uint8Array; reason: string; now: number; crc: number; runId: string }>(
      `UPDATE runs SET status = 'blocked', error = @error, blocked_reason = @reason, updated_at = @now, crc = @crc
       WHERE run_id = @runId AND status IN ${OPEN}`,
    ),

    // ── history ───────────────────────────────────────────────────────────────────────────
    insertEvent: p<{
      runId: string;
      seq: number;
      ts: number;
      type: string;
      step: number | null;
      body: Uint8Array | null;
      crc: number;
    }>(
      "INSERT INTO history (run_id, seq, ts, type, step, body, crc) VALUES (@runId, @seq, @ts, @type, @step, @body, @crc)",
    ),
    /**
     * Several events in one statement (an eager step records two: the activity's result and what
     * the workflow did next): each statement call has a fixed cost of its own.
     */
    insertEvents: new ByArity<unknown[], unknown>(
      db,
      (_, n) =>
        `INSERT INTO history (run_id, seq, ts, type, step, body, crc) VALUES ${Array.from(
          { length: n },
          () => "(?, ?, ?, ?, ?, ?, ?)",
        ).join(", ")}`,
    ),
    selectHistory: p<[runId: string, afterSeq: number], HistoryRow>(
      "SELECT seq, ts, type, step, body, crc FROM history WHERE run_id = ? AND seq > ? ORDER BY seq",
    ),

    // ── inbox ─────────────────────────────────────────────────────────────────────────────
    /** Positional: every delivery runs it (activity results, timers, signals). */
    insertInbox: p<
      [runId: string, ts: number, type: string, step: number | null, body: Uint8Array | null, crc: number]
    >("INSERT INTO inbox (run_id, ts, type, step, body, crc) VALUES (?, ?, ?, ?, ?, ?)"),
    selectInbox: p<[runId: string], InboxRow>(
      "SELECT id, ts, type, step, body, crc FROM inbox WHERE run_id = ? ORDER BY id",
    ),
    /** Records a signal's de-duplication key; no row changed = the run already received it. */
    rememberSignal: p<[runId: string, requestId: string]>(
      "INSERT OR IGNORE INTO signal_requests (run_id, request_id) VALUES (?, ?)",
    ),
    /**
     * Unconsumed signals of a run: those waiting in its inbox plus those its code holds (recorded
     * by its last activation). Read inside the delivering transaction, which holds the write lock.
     */
    unconsumedSignals: p<[runId: string], { n: number }>(
      `SELECT r.buffered_signals
         + (SELECT count(*) FROM inbox i WHERE i.run_id = r.run_id AND i.type = 'SignalReceived') AS n
       FROM runs r WHERE r.run_id = ?`,
    ),
    forgetSignalsOfRun: p<[runId: string]>("DELETE FROM signal_requests WHERE run_id = ?"),
    consumeInbox: p<[id: number, runId: string]>("DELETE FROM inbox WHERE id = ? AND run_id = ?"),
    deleteInboxOfRun: p<[runId: string]>("DELETE FROM inbox WHERE run_id = ?"),
    /**
     * Continue-as-new hands unconsumed signals and cancel requests to the next run (their ids, and
     * so their order, are kept). Step-bound events (activity results, timers...) die with the run:
     * their step numbers mean nothing in the new history.
     */
    moveInboxToRun: p<[toRunId: string, fromRunId: string]>(
      `UPDATE inbox SET run_id = ? WHERE run_id = ? AND type IN ('SignalReceived', 'CancelRequested')`,
    ),

    // ── workflow tasks ────────────────────────────────────────────────────────────────────
    insertWorkflowTask: p<[runId: string, workflowName: string, visibleAt: number]>(
      "INSERT INTO workflow_tasks (run_id, workflow_name, visible_at, fence) VALUES (?, ?, ?, 0)",
    ),
    /**
     * Makes a run's task claimable now because something arrived in its inbox. A leased task is
     * left alone (its holder will see the inbox when it commits); a blocked run keeps its back-off
     * (new input cannot fix code that fails to replay — retryBlockedRuns or retryAt wakes it).
     */
    wakeWorkflowTask: p<{ runId: string; now: number }>(
      `UPDATE workflow_tasks SET visible_at = min(coalesce(visible_at, @now), @now)
       WHERE run_id = @runId AND lease_owner IS NULL
         AND (SELECT status FROM runs r WHERE r.run_id = @runId) = 'running'`,
    ),
    /**
     * After an activation: ready now if events are still waiting in the inbox, idle otherwise;
     * the lease is released. On the eager path (no fence) a live lease held by another worker is
     * left alone: that worker's commit will fail its seq guard and it will re-read. A task that is
     * already idle, unleased, with an empty inbox (every eager step) is not written at all: an
     * unchanged row still costs its page, and the visible_at index's page, in the WAL.
     * No row returned = idle (or leased elsewhere).
     */
    settleWorkflowTask: p<{ runId: string; now: number; fenced: number }, { visible_at: number | null }>(
      `UPDATE workflow_tasks
         SET visible_at = CASE WHEN EXISTS (SELECT 1 FROM inbox i WHERE i.run_id = @runId) THEN @now ELSE NULL END,
             lease_owner = NULL, lease_expires_at = NULL
       WHERE run_id = @runId AND (@fenced = 1 OR lease_owner IS NULL OR lease_expires_at <= @now)
         AND (lease_owner IS NOT NULL OR visible_at IS NOT NULL OR EXISTS (SELECT 1 FROM inbox i WHERE i.run_id = @runId))
       RETURNING visible_at`,
    ),
    deleteWorkflowTask: p<[runId: string]>("DELETE FROM workflow_tasks WHERE run_id = ?"),
    /** Fenced release (blockRun, releaseWorkflowTask): no row changed = stale fence. */
    releaseWorkflowTask: p<[visibleAt: number, runId: string, fence: number]>(
      `UPDATE workflow_tasks SET visible_at = ?, lease_owner = NULL, lease_expires_at = NULL
       WHERE run_id = ? AND fence = ?`,
    ),
    workflowTaskState: p<[runId: string], { fence: number }>(
      "SELECT fence FROM workflow_tasks WHERE run_id = ?",
    ),
    claimWorkflowTask: new ByArity<unknown[], { run_id: string; fence: number }>(
      db,
      (names) =>
        `UPDATE workflow_tasks SET lease_owner = ?, lease_expires_at = ?, visible_at = ?, fence = fence + 1
         WHERE run_id = (
           SELECT run_id FROM workflow_tasks WHERE visible_at <= ? AND workflow_name IN (${names})
           ORDER BY visible_at, run_id LIMIT 1)
         RETURNING run_id, fence`,
    ),
    retryBlockedRuns: new ByArity<unknown[], unknown>(
      db,
      (names) =>
        `UPDATE workflow_tasks SET visible_at = ?
         WHERE lease_owner IS NULL AND run_id IN (
           SELECT run_id FROM runs WHERE status = 'blocked' AND workflow_name IN (${names}))`,
    ),

    // ── activity tasks ────────────────────────────────────────────────────────────────────
    /** Takes a PlannedActivityTask (@spool/sql-store) plus the run's ids. */
    /**
     * Bound through {@link activityTaskValues}, never by hand: positional on purpose. Most steps
     * schedule an activity, and binding these sixteen values by name measured 4–5 µs slower per
     * insert (better-sqlite3 looks each name up), a few per cent of a step's statements.
     */
    insertActivity: p<ActivityTaskValues>(
      `INSERT INTO activity_tasks (task_id, run_id, workflow_id, step, name, input, options, attempt, fence,
         visible_at, lease_owner, lease_expires_at, timeout_ms, heartbeat_timeout_ms, scheduled_at, crc)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    /** Lease of an attempt: see attemptLeaseMs in @spool/core (the timeout plus a grace). */
    claimActivity: new ByArity<unknown[], ActivityRow>(
      db,
      (names) =>
        `UPDATE activity_tasks SET attempt = attempt + 1, fence = fence + 1, lease_owner = @owner,
           lease_expires_at = @now + ${attemptLeaseSql("@defaultLeaseMs")},
           visible_at       = @now + ${attemptLeaseSql("@defaultLeaseMs")}
         WHERE task_id = (
           SELECT task_id FROM activity_tasks WHERE visible_at <= @now AND name IN (${names})
           ORDER BY visible_at, task_id LIMIT 1)
         RETURNING task_id, run_id, workflow_id, step, name, input, options, attempt, fence, timeout_ms,
           heartbeat_timeout_ms, scheduled_at, lease_expires_at, crc`,
    ),
    heartbeatActivity: p<{ leaseExpiresAt: number; taskId: string; fence: number }>(
      `UPDATE activity_tasks SET lease_expires_at = @leaseExpiresAt, visible_at = @leaseExpiresAt
       WHERE task_id = @taskId AND fence = @fence AND lease_owner IS NOT NULL`,
    ),
    /** Removes a leased attempt if its fence holds; no row returned = stale or cancelled. */
    finishActivity: p<[taskId: string, fence: number], { run_id: string; step: number }>(
      `DELETE FROM activity_tasks WHERE task_id = ? AND fence = ? AND lease_owner IS NOT NULL
       RETURNING run_id, step`,
    ),
    retryActivity: p<{ retryAt: number; lastError: Uint8Array; taskId: string; fence: number }>(
      `UPDATE activity_tasks SET lease_owner = NULL, lease_expires_at = NULL, visible_at = @retryAt,
         last_error = @lastError
       WHERE task_id = @taskId AND fence = @fence AND lease_owner IS NOT NULL`,
    ),
    /** Un-claims an attempt that never started: ready now, its attempt not counted. */
    releaseActivity: p<[now: number, taskId: string, fence: number]>(
      `UPDATE activity_tasks SET attempt = max(attempt - 1, 0), lease_owner = NULL, lease_expires_at = NULL,
         visible_at = ?
       WHERE task_id = ? AND fence = ? AND lease_owner IS NOT NULL`,
    ),
    cancelActivity: p<[runId: string, step: number], { task_id: string; lease_owner: string | null }>(
      "DELETE FROM activity_tasks WHERE run_id = ? AND step = ? RETURNING task_id, lease_owner",
    ),
    deleteActivitiesOfRun: p<[runId: string], { task_id: string; lease_owner: string | null }>(
      "DELETE FROM activity_tasks WHERE run_id = ? RETURNING task_id, lease_owner",
    ),

    // ── timers ────────────────────────────────────────────────────────────────────────────
    insertTimer: p<[runId: string, step: number, dueAt: number]>(
      "INSERT INTO timers (run_id, step, due_at) VALUES (?, ?, ?)",
    ),
    cancelTimer: p<[runId: string, step: number]>("DELETE FROM timers WHERE run_id = ? AND step = ?"),
    deleteTimersOfRun: p<[runId: string]>("DELETE FROM timers WHERE run_id = ?"),
    fireDueTimers: p<[now: number, limit: number], { run_id: string; step: number; due_at: number }>(
      `DELETE FROM timers WHERE (run_id, step) IN (
         SELECT run_id, step FROM timers WHERE due_at <= ? ORDER BY due_at, run_id, step LIMIT ?)
       RETURNING run_id, step, due_at`,
    ),

    // ── worker registry ───────────────────────────────────────────────────────────────────
    upsertWorker: p<{
      workerId: string;
      incarnation: string;
      pid: number;
      host: string;
      bootId: string | null;
      pidNs: string | null;
      startTicks: string | null;
      now: number;
      intervalMs: number;
      deadAfterMs: number;
      workflowNames: string;
      activityNames: string;
    }>(
      `INSERT INTO workers (worker_id, incarnation, pid, host, boot_id, pid_ns, start_ticks, started_at, heartbeat_at,
         heartbeat_interval_ms, dead_after_ms, workflow_names, activity_names)
       VALUES (@workerId, @incarnation, @pid, @host, @bootId, @pidNs, @startTicks, @now, @now, @intervalMs,
         @deadAfterMs, @workflowNames, @activityNames)
       ON CONFLICT (worker_id) DO UPDATE SET incarnation = excluded.incarnation, pid = excluded.pid,
         host = excluded.host, boot_id = excluded.boot_id, pid_ns = excluded.pid_ns,
         start_ticks = excluded.start_ticks,
         started_at = CASE WHEN workers.incarnation = excluded.incarnation THEN workers.started_at ELSE excluded.started_at END,
         heartbeat_at = excluded.heartbeat_at, heartbeat_interval_ms = excluded.heartbeat_interval_ms,
         dead_after_ms = excluded.dead_after_ms, workflow_names = excluded.workflow_names,
         activity_names = excluded.activity_names, stopped_at = NULL, dead_at = NULL`,
    ),
    workerIncarnation: p<[workerId: string], { incarnation: string }>(
      "SELECT incarnation FROM workers WHERE worker_id = ?",
    ),
    /** No row changed = the worker is unknown or was presumed dead: it must register again. */
    heartbeatWorker: p<[now: number, workerId: string]>(
      "UPDATE workers SET heartbeat_at = ? WHERE worker_id = ? AND dead_at IS NULL AND stopped_at IS NULL",
    ),
    stopWorker: p<[now: number, workerId: string]>(
      "UPDATE workers SET stopped_at = ? WHERE worker_id = ? AND stopped_at IS NULL",
    ),
    /** Registered workers neither stopped nor already presumed dead: the candidates of a sweep. */
    activeWorkers: p<[], WorkerRow>(
      `SELECT worker_id, pid, host, boot_id, pid_ns, start_ticks, started_at, heartbeat_at, dead_after_ms
       FROM workers WHERE dead_at IS NULL AND stopped_at IS NULL`,
    ),
    allWorkers: p<
      [],
      WorkerRow & {
        workflow_names: string;
        activity_names: string;
        stopped_at: number | null;
        dead_at: number | null;
      }
    >(
      `SELECT worker_id, pid, host, boot_id, pid_ns, start_ticks, started_at, heartbeat_at, dead_after_ms,
         workflow_names, activity_names, stopped_at, dead_at
       FROM workers ORDER BY started_at, worker_id`,
    ),
    /** Marks a worker dead once: no row changed = another sweep got there first. */
    markWorkerDead: p<[now: number, workerId: string]>(
      "UPDATE workers SET dead_at = ? WHERE worker_id = ? AND dead_at IS NULL AND stopped_at IS NULL",
    ),
    forgetOldWorkers: p<[before: number]>("DELETE FROM workers WHERE coalesce(dead_at, stopped_at) < ?"),
    /**
     * A dead holder's leases: claimable now, and the fence moves on so that the holder's late
     * commit or completion (if it was only presumed dead) is rejected.
     */
    releaseWorkflowLeasesOf: p<[now: number, owner: string]>(
      `UPDATE workflow_tasks SET visible_at = ?, lease_owner = NULL, lease_expires_at = NULL, fence = fence + 1
       WHERE lease_owner = ?`,
    ),
    releaseActivityLeasesOf: p<[now: number, owner: string]>(
      `UPDATE activity_tasks SET visible_at = ?, lease_owner = NULL, lease_expires_at = NULL, fence = fence + 1
       WHERE lease_owner = ?`,
    ),

    // ── clock anchor (see clock-sync.ts) ──────────────────────────────────────────
    readClockAnchor: p<[], { boot_id: string | null; offset_ms: number }>(
      "SELECT boot_id, offset_ms FROM clock_anchor WHERE id = 1",
    ),
    writeClockAnchor: p<[bootId: string | null, offsetMs: number]>(
      `INSERT INTO clock_anchor (id, boot_id, offset_ms) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET boot_id = excluded.boot_id, offset_ms = excluded.offset_ms`,
    ),
    /** Moves every pending time (not history) by a wall-clock step, so schedules keep their durations. */
    shiftTimers: p<[delta: number]>("UPDATE timers SET due_at = due_at + ?"),
    shiftWorkflowTasks: p<[delta: number, sameDelta: number]>(
      `UPDATE workflow_tasks SET visible_at = visible_at + ?, lease_expires_at = lease_expires_at + ?
       WHERE visible_at IS NOT NULL`,
    ),
    shiftActivityTasks: p<[delta: number, sameDelta: number]>(
      "UPDATE activity_tasks SET visible_at = visible_at + ?, lease_expires_at = lease_expires_at + ?",
    ),
    shiftWorkers: p<[delta: number]>("UPDATE workers SET heartbeat_at = heartbeat_at + ?"),

    // ── wake-ups and stats ────────────────────────────────────────────────────────────────
    /** Three index probes: `min()` over an indexed column reads one end of the index. */
    // Cheap read-only probes: a claim or a timer sweep with nothing to do takes no write lock.
    anyTimerDue: p<[now: number], { one: number }>("SELECT 1 AS one FROM timers WHERE due_at <= ? LIMIT 1"),
    anyWorkflowTaskVisible: p<[now: number], { one: number }>(
      "SELECT 1 AS one FROM workflow_tasks WHERE visible_at <= ? LIMIT 1",
    ),
    anyActivityTaskVisible: p<[now: number], { one: number }>(
      "SELECT 1 AS one FROM activity_tasks WHERE visible_at <= ? LIMIT 1",
    ),
    nextWakeAt: p<[], { t: number | null }>(
      `SELECT min(t) AS t FROM (
         SELECT min(visible_at) AS t FROM workflow_tasks
         UNION ALL SELECT min(visible_at) FROM activity_tasks
         UNION ALL SELECT min(due_at) FROM timers)`,
    ),
    runsByStatus: p<[], { status: string; n: number }>(
      "SELECT status, count(*) AS n FROM runs GROUP BY status",
    ),
    queueStats: p<
      { now: number },
      { ready_wf: number; ready_act: number; running_act: number; backoff_act: number; timers: number }
    >(
      `SELECT
         (SELECT count(*) FROM workflow_tasks WHERE visible_at <= @now) AS ready_wf,
         (SELECT count(*) FROM activity_tasks WHERE visible_at <= @now) AS ready_act,
         (SELECT count(*) FROM activity_tasks WHERE lease_owner IS NOT NULL AND lease_expires_at > @now) AS running_act,
         (SELECT count(*) FROM activity_tasks WHERE lease_owner IS NULL AND visible_at > @now) AS backoff_act,
         (SELECT count(*) FROM timers) AS timers`,
    ),
  };
}

/** The prepared statements of one connection. */
export type Statements = ReturnType<typeof prepareStatements>;
