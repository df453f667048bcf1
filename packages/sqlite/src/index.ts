/**
 * @spool/sqlite — Spool's embedded default backend: the Backend contract on one SQLite file
 * through better-sqlite3. See HOW_IT_WORKS.md for tables, leases, fencing and durability.
 */

export { MIGRATIONS, type Migration, SCHEMA_VERSION } from "./migrations.ts";
export { SqliteBackend } from "./sqlite-backend.ts";
export type { SqliteBackendOptions, SqliteFaultPoint } from "./sqlite-options.ts";
