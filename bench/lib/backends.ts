/**
 * Backends for the multi-process scenarios, described by a plain spec that can cross a process
 * boundary: the parent opens one for the client, each child worker process opens its own.
 *
 * @spool/postgres is loaded with a dynamic import, so a broken or unfinished package makes the
 * postgres scenario report "unavailable" instead of stopping the whole run.
 */
import type { Backend } from "spool";
import { SqliteBackend } from "spool";

/** Which store, and where. */
export type BackendSpec =
  | { kind: "sqlite"; path: string; durability: "full" | "normal" }
  | { kind: "postgres"; url: string; schema: string };

type PostgresModule = typeof import("@spool/postgres");
type PostgresBackendClass = PostgresModule["PostgresBackend"];

/** The PostgresBackend class, or the reason it cannot be loaded. */
export async function loadPostgresBackend(): Promise<PostgresBackendClass | { unavailable: string }> {
  let mod: Partial<PostgresModule>;
  try {
    mod = await import("@spool/postgres");
  } catch (err) {
    return {
      unavailable: `@spool/postgres cannot be imported (${err instanceof Error ? err.message : String(err)})`,
    };
  }
  if (typeof mod.PostgresBackend !== "function") {
    return { unavailable: "@spool/postgres does not export PostgresBackend yet" };
  }
  return mod.PostgresBackend;
}

/** Opens (and initialises) a backend from a spec; PostgreSQL gets its own pool (default size). */
export async function openBackend(spec: BackendSpec): Promise<Backend> {
  let backend: Backend;
  if (spec.kind === "sqlite") {
    backend = new SqliteBackend({ path: spec.path, durability: spec.durability, busyTimeoutMs: 30_000 });
  } else {
    const Pg = await loadPostgresBackend();
    if ("unavailable" in Pg) throw new Error(Pg.unavailable);
    backend = new Pg({ connectionString: spec.url, schema: spec.schema });
  }
  await backend.init();
  return backend;
}
