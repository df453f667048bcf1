/**
 * Shared setup for PostgreSQL tests: the connection string, a fresh schema per store (created by the
 * backend's init, dropped afterwards) and a backend on a controllable clock (the test-only offset
 * added to the database clock).
 */
import { randomBytes } from "node:crypto";
import { PostgresBackend, type PostgresBackendOptions } from "@spool/postgres";
import pg from "pg";

/** `SPOOL_PG_URL`, or the local test database. */
export const PG_URL = process.env.SPOOL_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test run uses. */
export function freshSchema(tag = "t"): string {
  return `spool_test_${tag}_${randomBytes(5).toString("hex")}`;
}

let admin: pg.Pool | null = null;

/** A small pool for test-side SQL (fault injection, drops, direct checks). */
export function adminPool(): pg.Pool {
  if (admin === null) {
    admin = new pg.Pool({ connectionString: PG_URL, max: 3 });
    admin.on("error", () => undefined);
  }
  return admin;
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await adminPool().query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Ends the admin pool (call from afterAll). */
export async function closeAdmin(): Promise<void> {
  const a = admin;
  admin = null;
  await a?.end();
}

/** A backend on its own schema with a clock the test moves with `advance`. */
export function openPg(options: Partial<PostgresBackendOptions> = {}) {
  const schema = options.schema ?? freshSchema();
  let offset = 0;
  const backend = new PostgresBackend({
    connectionString: PG_URL,
    poolSize: 4,
    ...options,
    schema,
    clock: {
      offsetMs: () => offset,
    },
  });
  const clock = {
    advance: (ms: number) => {
      offset += ms;
    },
    // The database clock keeps running while a test runs; time checks allow this much drift
    // (generous: the machine running the tests may be busy).
    slackMs: 100,
  };
  return {
    backend,
    clock,
    schema,
    teardown: async () => {
      await backend.close();
      await dropSchema(schema);
    },
  };
}
