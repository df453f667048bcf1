/**
 * @spool/sql-store — what Spool's SQL backends (SQLite, PostgreSQL) share, written once: the
 * stored-row types and their conversion into the Backend contract's records (with the integrity
 * checks every read must pass), row checksums, the start-conflict rule, the lease expression in
 * SQL, and the integrity scan behind `spool doctor`. Each backend keeps its transaction mechanics
 * and its dialect's SQL. Not for applications: they use the backends.
 */
export * from "./commit-validation.ts";
export * from "./integrity-scan.ts";
export * from "./lease-sql.ts";
export * from "./row-checksum.ts";
export * from "./stored-rows.ts";
