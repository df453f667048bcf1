/**
 * @spool/postgres — the Backend contract on PostgreSQL, for many Spool workers on many machines:
 * `FOR UPDATE SKIP LOCKED` claims, leases on the database clock, LISTEN/NOTIFY wake-ups and
 * advisory-lock leadership for timer sweeps. See HOW_IT_WORKS.md for tables and protocols.
 */

export type { PostgresTestClock } from "./db-clock.ts";
export { MIGRATIONS, type Migration, SCHEMA_VERSION } from "./migrations.ts";
export { PostgresBackend, type PostgresBackendOptions } from "./postgres-backend.ts";
