/**
 * Every SQL statement the PostgreSQL backend runs, built once per schema from the files in sql/
 * (one per area: runs, activation commits, inbox, task queues, timers, worker registry). Keeping
 * the SQL apart from the code that runs it makes the storage protocol reviewable on its own.
 * Statements are sent as named prepared statements (the name includes a hash of the schema, so
 * two backends on different schemas can share a pool), so the hot paths are parsed and planned
 * once per connection; each declares the names of its parameters, and call sites bind them by
 * name (see sql/statement.ts).
 *
 * Conventions that every statement follows (HOW_IT_WORKS.md explains why):
 *
 * - **Time.** Single-statement operations compute "now" in SQL from the database clock:
 *   `statement_timestamp()` in milliseconds plus `offset` (`$1`), the test-only clock offset (0 in
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

import type { StoredActivityRow, StoredHistoryRow, StoredInboxRow, StoredRunRow } from "@spool/sql-store";
import { activationStatements } from "./sql/activation-statements.ts";
import { inboxStatements } from "./sql/inbox-statements.ts";
import { runStatements } from "./sql/run-statements.ts";
import { quoteIdent, statementFactory } from "./sql/statement.ts";
import { taskStatements } from "./sql/task-statements.ts";
import { timerStatements } from "./sql/timer-statements.ts";
import { workerStatements } from "./sql/worker-statements.ts";

export { type BoundStatement, DB_NOW_MS, quoteIdent, RUN_COLUMNS, type Statement } from "./sql/statement.ts";

/** Row shapes shared with every SQL backend (see stored-rows.ts in @spool/sql-store). */
export type RunRow = StoredRunRow;
export type HistoryRow = StoredHistoryRow;
export type InboxRow = StoredInboxRow;
export type ActivityRow = StoredActivityRow;

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

/** Builds every statement for one schema. */
export function buildStatements(schema: string) {
  const S = quoteIdent(schema);
  const st = statementFactory(schema);
  return {
    ...runStatements(S, st),
    ...activationStatements(S, st),
    ...inboxStatements(S, st),
    ...taskStatements(S, st),
    ...timerStatements(S, st),
    ...workerStatements(S, st),
    /** The quoted schema, for ad-hoc statements (listing runs). */
    schema: S,
  };
}

/** The statements of one schema. */
export type Statements = ReturnType<typeof buildStatements>;
