/**
 * The PostgreSQL schema, as an ordered, append-only list of migrations, and the code that brings a
 * schema up to date when a backend initialises.
 *
 * Rules for editing this file: never change or reorder a migration that has shipped (databases in
 * the field have already run it); add a new entry with the next version instead. A schema whose
 * newest applied migration is newer than this list is refused, because older code would misread
 * (or write in the old shape to) tables it does not know.
 *
 * Every table lives in one schema (default `spool`), named in every statement and quoted, so
 * several Spool deployments (or test runs) can share a database without seeing each other.
 */
import { InvalidOptionsError } from "@spool/core";
import type pg from "pg";
import { quoteIdent } from "./sql/statement.ts";

/** One schema change: applied once, in a transaction, in version order. */
export interface Migration {
  /** Increasing: 1, 2, 3... (applied in order; see version 4). */
  version: number;
  /** A short, stable description (recorded in `spool_migrations`). */
  name: string;
  /** The DDL to run, given the quoted schema name. */
  sql(schema: string): string;
}

/**
 * Every migration, oldest first. The design mirrors `@spool/sqlite` (see HOW_IT_WORKS.md):
 * `runs`, append-only `history`, per-run `inbox`, and the queues `workflow_tasks`,
 * `activity_tasks` and `timers`, whose rows carry `visible_at` (the time a row may next be claimed:
 * ready time when unleased, lease expiry when leased, NULL when idle). Times are bigint
 * milliseconds since the epoch on the database server's clock. Ids use the "C" collation so they
 * compare bytewise, exactly as SQLite's BINARY does (ULID order, prefix ranges, keyset cursors).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sql: (s) => `
      CREATE TABLE ${s}.runs (
        run_id             text COLLATE "C" PRIMARY KEY,
        workflow_id        text COLLATE "C" NOT NULL,
        workflow_name      text COLLATE "C" NOT NULL,
        status             text NOT NULL
          CHECK (status IN ('running', 'blocked', 'completed', 'failed', 'cancelled', 'continued')),
        version            text,
        created_at         bigint NOT NULL,
        updated_at         bigint NOT NULL,
        closed_at          bigint,
        last_seq           integer NOT NULL,
        parent_run_id      text COLLATE "C",
        parent_workflow_id text COLLATE "C",
        parent_step        integer,
        continued_from     text COLLATE "C",
        continued_to       text COLLATE "C",
        result             bytea,
        error              bytea,
        blocked_reason     text
      );
      -- At most one open run per workflow id, enforced by the database itself (and used as the
      -- arbiter of INSERT ... ON CONFLICT DO NOTHING when starting runs).
      CREATE UNIQUE INDEX runs_one_open_per_workflow_id ON ${s}.runs (workflow_id)
        WHERE status IN ('running', 'blocked');
      CREATE INDEX runs_by_workflow_id ON ${s}.runs (workflow_id, created_at, run_id);
      CREATE INDEX runs_by_created ON ${s}.runs (created_at, run_id);
      CREATE INDEX runs_by_parent ON ${s}.runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

      CREATE TABLE ${s}.history (
        run_id text COLLATE "C" NOT NULL,
        seq    integer NOT NULL,
        ts     bigint NOT NULL,
        type   text NOT NULL,
        step   integer,
        body   bytea,
        crc    bigint NOT NULL,
        PRIMARY KEY (run_id, seq)
      );

      -- Identity values are never reused, so a consumed id named by a late, stale commit can never
      -- match a newer event.
      CREATE TABLE ${s}.inbox (
        id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text COLLATE "C" NOT NULL,
        ts     bigint NOT NULL,
        type   text NOT NULL,
        step   integer,
        body   bytea,
        crc    bigint NOT NULL
      );
      CREATE INDEX inbox_by_run ON ${s}.inbox (run_id, id);

      -- One row per OPEN run, for its whole life: the fence never repeats, and the row doubles as
      -- the run's lock (every writer of a run's state locks it first). "blocked" mirrors
      -- runs.status = 'blocked' so a delivery can decide whether to wake the run from this row
      -- alone, which it has locked.
      CREATE TABLE ${s}.workflow_tasks (
        run_id           text COLLATE "C" PRIMARY KEY,
        workflow_name    text COLLATE "C" NOT NULL,
        visible_at       bigint,
        lease_owner      text,
        lease_expires_at bigint,
        fence            bigint NOT NULL DEFAULT 0,
        blocked          boolean NOT NULL DEFAULT false
      ) WITH (autovacuum_vacuum_scale_factor = 0.02);
      -- Idle runs (visible_at NULL) are most rows of a busy system and never claimable: keep them
      -- out of the queue indexes. A claim probes the claim index once per workflow name it runs,
      -- so a backlog of names no worker runs is never walked; the other serves nextWakeAt.
      CREATE INDEX workflow_tasks_claimable ON ${s}.workflow_tasks (workflow_name, visible_at, run_id)
        WHERE visible_at IS NOT NULL;
      CREATE INDEX workflow_tasks_by_visible_at ON ${s}.workflow_tasks (visible_at)
        WHERE visible_at IS NOT NULL;
      CREATE INDEX workflow_tasks_blocked ON ${s}.workflow_tasks (workflow_name) WHERE blocked;

      CREATE TABLE ${s}.activity_tasks (
        task_id              text COLLATE "C" PRIMARY KEY,
        run_id               text COLLATE "C" NOT NULL,
        workflow_id          text COLLATE "C" NOT NULL,
        step                 integer NOT NULL,
        name                 text COLLATE "C" NOT NULL,
        input                bytea NOT NULL,
        options              bytea NOT NULL,
        attempt              integer NOT NULL DEFAULT 0,
        fence                bigint NOT NULL DEFAULT 0,
        visible_at           bigint NOT NULL,
        lease_owner          text,
        lease_expires_at     bigint,
        timeout_ms           bigint NOT NULL,
        heartbeat_timeout_ms bigint NOT NULL,
        scheduled_at         bigint NOT NULL,
        last_error           bytea,
        UNIQUE (run_id, step)
      ) WITH (autovacuum_vacuum_scale_factor = 0.02);
      CREATE INDEX activity_tasks_claimable ON ${s}.activity_tasks (name, visible_at, task_id);
      CREATE INDEX activity_tasks_by_visible_at ON ${s}.activity_tasks (visible_at);

      CREATE TABLE ${s}.timers (
        run_id text COLLATE "C" NOT NULL,
        step   integer NOT NULL,
        due_at bigint NOT NULL,
        PRIMARY KEY (run_id, step)
      ) WITH (autovacuum_vacuum_scale_factor = 0.02);
      CREATE INDEX timers_by_due_at ON ${s}.timers (due_at);
    `,
  },
  {
    version: 2,
    name: "signal request ids",
    // The de-duplication keys of signals a run received (SignalRequest.requestId), deleted with
    // the run's queues when it closes.
    sql: (s) => `
      CREATE TABLE ${s}.signal_requests (
        run_id     text COLLATE "C" NOT NULL,
        request_id text NOT NULL,
        PRIMARY KEY (run_id, request_id)
      );
    `,
  },
  {
    version: 3,
    name: "row checksums, input fingerprints, buffered signal counts",
    // As in @spool/sqlite: checksums of a run's outcome and of a task's input (NULL on older rows,
    // unverified), the fingerprint of a run's input (NULL = unknown), and the count of signals
    // the run's code holds unconsumed (recorded by each activation, counted against
    // maxBufferedSignals). Adding nullable columns, or one with a constant default, rewrites no
    // table in PostgreSQL 11+.
    sql: (s) => `
      ALTER TABLE ${s}.runs ADD COLUMN input_hash text;
      ALTER TABLE ${s}.runs ADD COLUMN crc bigint;
      ALTER TABLE ${s}.runs ADD COLUMN buffered_signals integer NOT NULL DEFAULT 0;
      ALTER TABLE ${s}.activity_tasks ADD COLUMN crc bigint;
      `,
  },
  {
    version: 4,
    name: "worker registry",
    // One row per worker process: its heartbeat (database clock), the timeout after which it is
    // presumed dead, what it hosts, and whether it stopped cleanly or was presumed dead (its
    // leases released). pid and host are for operators; liveness here is the heartbeat alone.
    sql: (s) => `
      CREATE TABLE ${s}.workers (
        worker_id             text COLLATE "C" PRIMARY KEY,
        incarnation           text NOT NULL,
        pid                   integer,
        host                  text,
        started_at            bigint NOT NULL,
        heartbeat_at          bigint NOT NULL,
        heartbeat_interval_ms bigint NOT NULL,
        dead_after_ms         bigint NOT NULL,
        workflow_names        text[] NOT NULL,
        activity_names        text[] NOT NULL,
        stopped_at            bigint,
        dead_at               bigint
      );
    `,
  },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** First key of every advisory lock Spool takes ("SpPg"); the second key is derived from the schema. */
export const ADVISORY_LOCK_CLASS = 0x53705067;

/** What an advisory lock is for: applying migrations, or sweeping due timers (leadership). */
export type LockPurpose = "migrate" | "timers";

/**
 * The second key of the advisory lock taken for `purpose` on `schema` (the first is
 * {@link ADVISORY_LOCK_CLASS}): a stable hash of the schema name, so deployments in different
 * schemas never wait for each other, plus the purpose.
 */
export function advisoryLockKey(schema: string, purpose: LockPurpose): number {
  let h = 0;
  for (let i = 0; i < schema.length; i++) h = (Math.imul(h, 31) + schema.charCodeAt(i)) | 0;
  // 29 bits of hash times 4 leaves room for the purpose without leaving int4.
  return (h & 0x1fffffff) * 4 + (purpose === "migrate" ? 1 : 2);
}

/**
 * Brings the schema up to {@link SCHEMA_VERSION} in one transaction, holding a transaction-scoped
 * advisory lock (`pg_advisory_xact_lock`), so processes starting at once serialise here, each
 * migration runs exactly once, and a failed migration leaves the schema as it was. DDL is
 * transactional in PostgreSQL, so a crash half-way applies nothing.
 *
 * @throws InvalidOptionsError when the schema was migrated by newer code, or when a recorded
 *   migration's name differs from this list.
 */
export async function migrate(
  client: pg.ClientBase,
  schema: string,
  opts: { createSchema?: boolean } = {},
): Promise<{ applied: number[] }> {
  const s = quoteIdent(schema);
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1::int, $2::int)", [
      ADVISORY_LOCK_CLASS,
      advisoryLockKey(schema, "migrate"),
    ]);
    if (opts.createSchema === false) {
      // A reader (the CLI's list, describe...) given a mistyped schema must not create an empty one
      // and report "no runs", hiding the typo.
      const { rows } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
      if (rows.length === 0) {
        throw new InvalidOptionsError(
          `there is no schema "${schema}" in this PostgreSQL database (nothing was created). Check --schema ` +
            "(default spool) and the database in the connection string; a worker creates the schema on first start.",
        );
      }
    }
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.spool_migrations (
         version    integer PRIMARY KEY,
         name       text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number; name: string }>(
      `SELECT version, name FROM ${s}.spool_migrations ORDER BY version`,
    );
    const newest = rows.length > 0 ? rows[rows.length - 1]!.version : 0;
    if (newest > SCHEMA_VERSION) {
      throw new InvalidOptionsError(
        `the PostgreSQL schema ${schema} is at Spool schema version ${newest}, but this build of @spool/postgres ` +
          `only knows versions up to ${SCHEMA_VERSION}. It was migrated by a newer Spool release; upgrade ` +
          "@spool/postgres on every worker (downgrading a schema is not supported), or use another schema.",
      );
    }
    for (const row of rows) {
      const known = MIGRATIONS.find((m) => m.version === row.version);
      if (known === undefined || known.name !== row.name) {
        throw new InvalidOptionsError(
          `the PostgreSQL schema ${schema} recorded migration ${row.version} as "${row.name}", but this build knows ` +
            `it as "${known?.name ?? "(missing)"}". It was written by a diverging build of @spool/postgres; use the ` +
            "build that created it.",
        );
      }
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= newest) continue;
      await client.query(m.sql(s));
      await client.query(`INSERT INTO ${s}.spool_migrations (version, name) VALUES ($1, $2)`, [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    await client.query("COMMIT");
    return { applied };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
