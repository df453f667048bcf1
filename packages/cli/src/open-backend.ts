/**
 * Opens the backend the command line names: `--db <file>` (SQLite, default ./spool.db or
 * $SPOOL_DB) or `--pg <connection string>` (PostgreSQL, or $SPOOL_PG_URL) with `--schema`.
 * The library never picks a backend from the environment; the CLI, an application, does.
 */
import type { Backend } from "@spool/core";
import { SqliteBackend } from "@spool/sqlite";
import { UsageError } from "./io.ts";

/** Connection flags shared by every command. */
export interface BackendFlags {
  db?: string;
  pg?: string;
  schema?: string;
}

/** Opens (and initialises) the backend. */
export async function openBackend(flags: BackendFlags): Promise<Backend> {
  if (flags.db && flags.pg) throw new UsageError("give either --db (SQLite) or --pg (PostgreSQL), not both");
  const pg = flags.pg ?? (flags.db ? undefined : process.env.SPOOL_PG_URL);
  if (pg) {
    const { PostgresBackend } = await import("@spool/postgres");
    const backend = new PostgresBackend({ connectionString: pg, schema: flags.schema });
    await backend.init();
    return backend;
  }
  const backend = new SqliteBackend({ path: flags.db ?? process.env.SPOOL_DB ?? "spool.db" });
  await backend.init();
  return backend;
}
