/**
 * The SQLite schema, as an ordered, append-only list of migrations, and the code that brings a
 * database file up to date when a backend opens it.
 *
 * Rules for editing this file: never change or reorder a migration that has shipped (databases in
 * the field have already run it); add a new entry with the next version instead. A database whose
 * newest applied migration is newer than this list is refused, because older code would misread
 * (or worse, write in the old shape to) tables it does not know.
 */
import { InvalidOptionsError } from "@spool/core";
import type Database from "better-sqlite3";

/** One schema change: applied once, in a transaction, in version order. */
export interface Migration {
  /** Increasing: 1, 2, 3... (applied in order; see version 4). */
  version: number;
  /** A short, stable description (recorded in `spool_migrations`). */
  name: string;
  /** The DDL to run. */
  sql: string;
}

/**
 * Every migration, oldest first. Table design (see HOW_IT_WORKS.md for the why):
 * `runs`, append-only `history`, per-run `inbox`, and the three queues `workflow_tasks`,
 * `activity_tasks` and `timers`. Queue rows carry `visible_at`, the time the row may next be
 * claimed (ready time when unleased, lease expiry when leased), so every claim and `nextWakeAt` is a
 * single index range scan.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sql: `
      CREATE TABLE runs (
        run_id             TEXT PRIMARY KEY,
        workflow_id        TEXT NOT NULL,
        workflow_name      TEXT NOT NULL,
        status             TEXT NOT NULL,
        version            TEXT,
        created_at         INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL,
        closed_at          INTEGER,
        last_seq           INTEGER NOT NULL,
        parent_run_id      TEXT,
        parent_workflow_id TEXT,
        parent_step        INTEGER,
        continued_from     TEXT,
        continued_to       TEXT,
        result             BLOB,
        error              BLOB,
        blocked_reason     TEXT
      );
      -- At most one open run per workflow id, enforced by the database itself.
      CREATE UNIQUE INDEX runs_one_open_per_workflow_id ON runs (workflow_id)
        WHERE status IN ('running', 'blocked');
      CREATE INDEX runs_by_workflow_id ON runs (workflow_id, created_at, run_id);
      CREATE INDEX runs_by_created ON runs (created_at, run_id);
      CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
      CREATE INDEX runs_blocked_by_name ON runs (workflow_name) WHERE status = 'blocked';

      CREATE TABLE history (
        run_id TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        ts     INTEGER NOT NULL,
        type   TEXT NOT NULL,
        step   INTEGER,
        body   BLOB,
        crc    INTEGER NOT NULL,
        PRIMARY KEY (run_id, seq)
      ) WITHOUT ROWID;

      CREATE TABLE inbox (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        ts     INTEGER NOT NULL,
        type   TEXT NOT NULL,
        step   INTEGER,
        body   BLOB,
        crc    INTEGER NOT NULL
      );
      CREATE INDEX inbox_by_run ON inbox (run_id, id);

      CREATE TABLE workflow_tasks (
        run_id           TEXT PRIMARY KEY,
        workflow_name    TEXT NOT NULL,
        visible_at       INTEGER,
        lease_owner      TEXT,
        lease_expires_at INTEGER,
        fence            INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE INDEX workflow_tasks_by_visible_at ON workflow_tasks (visible_at);

      CREATE TABLE activity_tasks (
        task_id              TEXT PRIMARY KEY,
        run_id               TEXT NOT NULL,
        workflow_id          TEXT NOT NULL,
        step                 INTEGER NOT NULL,
        name                 TEXT NOT NULL,
        input                BLOB NOT NULL,
        options              BLOB NOT NULL,
        attempt              INTEGER NOT NULL DEFAULT 0,
        fence                INTEGER NOT NULL DEFAULT 0,
        visible_at           INTEGER NOT NULL,
        lease_owner          TEXT,
        lease_expires_at     INTEGER,
        timeout_ms           INTEGER NOT NULL,
        heartbeat_timeout_ms INTEGER NOT NULL,
        scheduled_at         INTEGER NOT NULL,
        last_error           BLOB,
        UNIQUE (run_id, step)
      ) WITHOUT ROWID;
      CREATE INDEX activity_tasks_by_visible_at ON activity_tasks (visible_at);

      CREATE TABLE timers (
        run_id TEXT NOT NULL,
        step   INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, step)
      ) WITHOUT ROWID;
      CREATE INDEX timers_by_due_at ON timers (due_at);
    `,
  },
  {
    version: 2,
    name: "signal request ids",
    // The de-duplication keys of signals a run received (SignalRequest.requestId), deleted with
    // the run's other open-run state when it closes.
    sql: `
      CREATE TABLE signal_requests (
        run_id     TEXT NOT NULL,
        request_id TEXT NOT NULL,
        PRIMARY KEY (run_id, request_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: "row checksums, input fingerprints, buffered signal counts",
    // runs.crc / activity_tasks.crc: checksums of a run's outcome (status, result, error) and of a
    // task's input and options, as history rows have; NULL on rows written before this version
    // (unverified). runs.input_hash: the fingerprint of the run's input, compared when a start
    // attaches to the run; NULL = unknown. runs.buffered_signals: signals the run's code holds
    // unconsumed, recorded by each activation, counted against maxBufferedSignals.
    sql: `
      ALTER TABLE runs ADD COLUMN input_hash TEXT;
      ALTER TABLE runs ADD COLUMN crc INTEGER;
      ALTER TABLE runs ADD COLUMN buffered_signals INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE activity_tasks ADD COLUMN crc INTEGER;
      `,
  },
  {
    version: 4,
    name: "worker registry",
    // One row per worker process (see worker-registry in HOW_IT_WORKS.md): its identity on this
    // machine (host, boot id, PID namespace, pid and process start time), its heartbeat, what it
    // hosts (JSON arrays of names), and whether it stopped cleanly or was presumed dead.
    // `clock_anchor` holds the offset between the wall clock and the machine's monotonic clock
    // that every stored time is expressed in (see SqliteBackend's clock).
    sql: `
      CREATE TABLE workers (
        worker_id             TEXT PRIMARY KEY,
        incarnation           TEXT NOT NULL,
        pid                   INTEGER,
        host                  TEXT,
        boot_id               TEXT,
        pid_ns                TEXT,
        start_ticks           TEXT,
        started_at            INTEGER NOT NULL,
        heartbeat_at          INTEGER NOT NULL,
        heartbeat_interval_ms INTEGER NOT NULL,
        dead_after_ms         INTEGER NOT NULL,
        workflow_names        TEXT NOT NULL,
        activity_names        TEXT NOT NULL,
        stopped_at            INTEGER,
        dead_at               INTEGER
      ) WITHOUT ROWID;
      CREATE TABLE clock_anchor (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        boot_id   TEXT,
        offset_ms INTEGER NOT NULL
      );
    `,
  },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Brings the database up to {@link SCHEMA_VERSION}. Runs in one `BEGIN IMMEDIATE` transaction, so
 * several processes opening the same file at once serialise here and each migration runs exactly
 * once; a failed migration leaves the database as it was.
 *
 * @throws InvalidOptionsError when the database was migrated by newer code, or when a recorded
 *   migration's name differs from this list (the file was written by a diverging build).
 */
export function migrate(db: Database.Database, now: number): { applied: number[] } {
  // The common case, a file this build already migrated, takes no write lock: opening a backend
  // must not wait behind (or stall) the processes already writing to the file.
  if (isCurrent(db)) return { applied: [] };
  const run = db.transaction(() => {
    db.exec(
      `CREATE TABLE IF NOT EXISTS spool_migrations (
         version    INTEGER PRIMARY KEY,
         name       TEXT NOT NULL,
         applied_at INTEGER NOT NULL
       )`,
    );
    const rows = db.prepare("SELECT version, name FROM spool_migrations ORDER BY version").all() as {
      version: number;
      name: string;
    }[];
    const newest = rows.length > 0 ? rows[rows.length - 1]!.version : 0;
    if (newest > SCHEMA_VERSION) {
      throw new InvalidOptionsError(
        `this SQLite database is at schema version ${newest}, but this build of @spool/sqlite only knows ` +
          `versions up to ${SCHEMA_VERSION}. It was opened by a newer Spool release; upgrade @spool/sqlite ` +
          "(downgrading a database is not supported), or point this process at another file.",
      );
    }
    for (const row of rows) {
      const known = MIGRATIONS.find((m) => m.version === row.version);
      if (known === undefined || known.name !== row.name) {
        throw new InvalidOptionsError(
          `this SQLite database recorded migration ${row.version} as "${row.name}", but this build knows it as ` +
            `"${known?.name ?? "(missing)"}". The file was written by a diverging build of @spool/sqlite; ` +
            "open it with the build that created it.",
        );
      }
    }
    const record = db.prepare("INSERT INTO spool_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= newest) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, now);
      applied.push(m.version);
    }
    return { applied };
  });
  return run.immediate();
}

/** True when the file records exactly this build's migrations (read only, no lock taken). */
function isCurrent(db: Database.Database): boolean {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'spool_migrations'")
    .get();
  if (table === undefined) return false;
  const rows = db.prepare("SELECT version, name FROM spool_migrations ORDER BY version").all() as {
    version: number;
    name: string;
  }[];
  return (
    rows.length === MIGRATIONS.length &&
    rows.every((r, i) => r.version === MIGRATIONS[i]?.version && r.name === MIGRATIONS[i]?.name)
  );
}
