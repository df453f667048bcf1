/**
 * Statements over a run's inbox: reading it, delivering inbound events (to an open run of a
 * workflow id, to a run, a signal within the buffer cap), de-duplicating signals, locking the
 * run a signal goes to, and handing the inbox to a continue-as-new successor. See statements.ts
 * for the conventions every statement follows.
 */
import { OPEN, type StatementFactory, wakeSet } from "./statement.ts";

/** The inbox statements of one schema (`S`: the quoted schema). */
export function inboxStatements(S: string, st: StatementFactory) {
  return {
    selectInbox: st(
      "select_inbox",
      `SELECT id, ts, type, step, body, crc FROM ${S}.inbox WHERE run_id = $1 ORDER BY id`,
      ["runId"],
    ),
    /**
     * Puts an inbound event in the open run of a workflow id (optionally a given run, optionally
     * only a child of a given parent) and wakes it. The task-row UPDATE takes the run's lock
     * before the insert; if the run closed while this waited, the row is gone and nothing is
     * inserted (the caller looks again: a continue-as-new successor may be open now).
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
      ["workflowId", "runId", "parentRunId", "now", "type", "body", "crc"],
    ),
    /** Puts an inbound event in a run's inbox and wakes it, if the run is open (its task row exists). */
    deliverToRun: st(
      "deliver_run",
      `WITH w AS (
         UPDATE ${S}.workflow_tasks t SET ${wakeSet("$2::bigint")} WHERE t.run_id = $1 RETURNING t.run_id
       )
       INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
       SELECT run_id, $2::bigint, $3::text, $4::int, $5::bytea, $6::bigint FROM w RETURNING id`,
      ["runId", "now", "type", "step", "body", "crc"],
    ),
    /** Records a signal's de-duplication key; no row = the run already received it. */
    rememberSignal: st(
      "remember_signal",
      `INSERT INTO ${S}.signal_requests (run_id, request_id) VALUES ($1, $2)
       ON CONFLICT DO NOTHING RETURNING run_id`,
      ["runId", "requestId"],
    ),
    /**
     * Finds and locks the open run a signal goes to (its task row: the lock every writer of the
     * run's inbox takes first). No row = no open run, or it closed while this waited for the lock
     * (its task row is gone). `runId` null: the open run, whichever it is.
     */
    lockOpenRun: st(
      "lock_open_run",
      `SELECT t.run_id FROM ${S}.workflow_tasks t
       WHERE t.run_id = (SELECT run_id FROM ${S}.runs
                         WHERE workflow_id = $1 AND status IN ${OPEN} AND ($2::text IS NULL OR run_id = $2::text))
       FOR UPDATE OF t`,
      ["workflowId", "runId"],
    ),
    /**
     * Delivers a signal to a run this transaction has locked (lockOpenRun, or created), unless the
     * run already holds `cap` unconsumed signals: waiting in its inbox plus held by its code
     * (recorded by its last activation). A statement of its own after the lock, so its snapshot
     * sees every delivery and commit that went before: concurrent senders cannot overshoot.
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
      ["runId", "now", "body", "crc", "cap"],
    ),
    deleteInboxOfRun: st("delete_inbox", `DELETE FROM ${S}.inbox WHERE run_id = $1`, ["runId"]),
    /**
     * Appends inbound events to a run's inbox in the given order (continue-as-new's carried
     * signals). The caller holds the run's lock or created the run.
     */
    insertInboxRows: st(
      "insert_inbox_rows",
      `INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
       SELECT $1, $2::bigint, u.type, u.step, u.body, u.crc
       FROM unnest($3::text[], $4::int[], $5::bytea[], $6::bigint[]) WITH ORDINALITY AS u(type, step, body, crc, ord)
       ORDER BY u.ord`,
      ["runId", "now", "types", "steps", "bodies", "crcs"],
    ),
    /**
     * Continue-as-new with carried signals: the old run's unseen signals and cancel requests are
     * copied as stored (checksums included) after them, keeping their order, then the old inbox is
     * emptied.
     */
    copyInboxToRun: st(
      "copy_inbox",
      `WITH c AS (
         INSERT INTO ${S}.inbox (run_id, ts, type, step, body, crc)
         SELECT $2, ts, type, step, body, crc FROM ${S}.inbox
         WHERE run_id = $1 AND type IN ('SignalReceived', 'CancelRequested') ORDER BY id
       )
       DELETE FROM ${S}.inbox WHERE run_id = $1`,
      ["fromRunId", "toRunId"],
    ),
    /**
     * Continue-as-new hands unconsumed signals and cancel requests to the next run (their ids, and
     * so their order, are kept); step-bound events die with the run.
     */
    moveInboxToRun: st(
      "move_inbox",
      `WITH m AS (
         UPDATE ${S}.inbox SET run_id = $2 WHERE run_id = $1 AND type IN ('SignalReceived', 'CancelRequested')
       )
       DELETE FROM ${S}.inbox WHERE run_id = $1 AND type NOT IN ('SignalReceived', 'CancelRequested')`,
      ["fromRunId", "toRunId"],
    ),
  };
}
