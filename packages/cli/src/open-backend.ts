/**
 * Opens the backend the command line names: `--db <file>` (SQLite, default ./spool.db or
 * $SPOOL_DB) or `--pg <connection string>` (PostgreSQL, or $SPOOL_PG_URL) with `--schema`.
 * The library never picks a backend from the environment; the CLI, an application, does.
 *
 * Only the commands whose point is to make work (`worker`, `start`) may create a SQLite file: a
 * mistyped `--db` given to `list` or `describe` would otherwise create an empty database and
 * report "no runs", hiding the typo.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Backend } from "@spool/core";
import { SqliteBackend } from "@spool/sqlite";
import { CliError, UsageError } from "./io.ts";

/** Connection flags shared by every command. */
export interface BackendFlags {
  db?: string;
  pg?: string;
  schema?: string;
}

/**
 * Opens (and initialises) the backend. With `create: false` a SQLite file or a PostgreSQL schema
 * that does not exist is refused rather than created.
 * @throws CliError for a missing file or directory
 */
export async function openBackend(flags: BackendFlags, opts: { create: boolean }): Promise<Backend> {
  if (flags.db && flags.pg) throw new UsageError("give either --db (SQLite) or --pg (PostgreSQL), not both");
  const pg = flags.pg ?? (flags.db ? undefined : process.env.SPOOL_PG_URL);
  if (pg) {
    const { PostgresBackend } = await import("@spool/postgres");
    // As with a SQLite file: only the commands that make work may create the schema.
    const backend = new PostgresBackend({
      connectionString: pg,
      schema: flags.schema,
      createSchema: opts.create,
    });
    await backend.init();
    return backend;
  }
  const path = flags.db ?? process.env.SPOOL_DB ?? "spool.db";
  if (path !== ":memory:")
    checkSqlitePath(
      path,
      flags.db !== undefined ? "--db" : process.env.SPOOL_DB ? "$SPOOL_DB" : "the default",
      opts.create,
    );
  const backend = new SqliteBackend({ path });
  await backend.init();
  return backend;
}

function checkSqlitePath(path: string, source: string, create: boolean): void {
  const full = resolve(path);
  if (existsSync(full)) {
    if (statSync(full).isDirectory()) {
      throw new CliError(`${full} is a directory, not a SQLite database file (from ${source}). Check --db.`);
    }
    return;
  }
  const dir = dirname(full);
  if (!existsSync(dir)) {
    throw new CliError(
      `no SQLite database at ${full} (from ${source}): its directory ${dir} does not exist. ` +
        "Check the path given to --db (or $SPOOL_DB), or create the directory first.",
    );
  }
  if (!create) {
    throw new CliError(
      `no SQLite database at ${full} (from ${source}). Check the path given to --db (or $SPOOL_DB); ` +
        "nothing was created. A new database is made by 'spool worker' or 'spool start'.",
    );
  }
}
