/**
 * Statements over `runs`: creating a run (with its first event and task), reading runs, and
 * parking a run as blocked. See statements.ts for the conventions every statement follows.
 */
import { NOW, OPEN, RUN_COLUMNS, type StatementFactory } from "./statement.ts";

/** The run statements of one schema (`S`: the quoted schema). */
export function runStatements(S: string, st: StatementFactory) {
  return {
    /**
     * Creates a run with its WorkflowStarted event (#1) and a ready task, unless the workflow id
     * already has an open run: ON CONFLICT on the partial unique index waits for a concurrent
     * creator and then does nothing, so no unique-violation error is ever raised here.
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
      [
        "runId",
        "workflowId",
        "workflowName",
        "version",
        "now",
        "parentRunId",
        "parentWorkflowId",
        "parentStep",
        "continuedFrom",
        "startedBody",
        "startedCrc",
        "inputHash",
        "runCrc",
      ],
    ),
    getRun: st("get_run", `SELECT ${RUN_COLUMNS} FROM ${S}.runs WHERE run_id = $1`, ["runId"]),
    /** Uses the partial unique index, whose WHERE clause this query repeats verbatim. */
    getOpenRun: st(
      "get_open_run",
      `SELECT ${RUN_COLUMNS} FROM ${S}.runs WHERE workflow_id = $1 AND status IN ${OPEN}`,
      ["workflowId"],
    ),
    /** The open run of a workflow id, else its newest run. */
    getLatestRun: st(
      "get_latest_run",
      `SELECT ${RUN_COLUMNS} FROM ${S}.runs WHERE workflow_id = $1
       ORDER BY (status IN ${OPEN}) DESC, created_at DESC, run_id DESC LIMIT 1`,
      ["workflowId"],
    ),
    runState: st("run_state", `SELECT status, last_seq FROM ${S}.runs WHERE run_id = $1`, ["runId"]),
    /**
     * Parks a run (fenced): the task row first, then the run row (an open run's result is NULL,
     * which `runCrc` covers).
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
      ["offset", "runId", "fence", "retryAt", "error", "reason", "channel", "payload", "runCrc"],
    ),
    /** A run's history after a seq, in order. */
    selectHistory: st(
      "select_history",
      `SELECT seq, ts, type, step, body, crc FROM ${S}.history WHERE run_id = $1 AND seq > $2 ORDER BY seq`,
      ["runId", "afterSeq"],
    ),
  };
}
