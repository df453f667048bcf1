/**
 * Translation of SQLite failures into Spool's typed errors, so callers never have to know SQLite's
 * result codes: a full disk becomes {@link StorageFullError}, a lock held past the busy timeout a
 * {@link SpoolError} that says so. Spool's own errors thrown inside a transaction pass through.
 */
import { SpoolError, StorageFullError } from "@spool/core";
import Database from "better-sqlite3";

/**
 * Maps an error thrown while talking to SQLite to the error the caller should see. Non-SQLite errors
 * (Spool's guards, programming errors) are returned unchanged.
 */
export function translateSqliteError(err: unknown, path: string, busyTimeoutMs: number): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  const code = err.code;
  if (code === "SQLITE_FULL") {
    return new StorageFullError(
      `the SQLite database at ${path} is full (disk space, filesystem quota or PRAGMA max_page_count). ` +
        "The transaction was rolled back and nothing was written; free disk space or raise the limit, then retry.",
      { cause: err },
    );
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new SpoolError(
      `the SQLite database at ${path} stayed locked by another connection for longer than the busy timeout ` +
        `(${busyTimeoutMs} ms); nothing was written. Retry, raise busyTimeoutMs, or look for a process holding ` +
        "a long write transaction.",
      { cause: err },
    );
  }
  if (code === "SQLITE_IOERR_SHORT_READ") {
    // Seen when the -wal file was deleted or truncated under a live database: pages the index
    // (-shm) says are in the WAL cannot be read back. Not a space problem.
    return new SpoolError(
      `SQLite could not read back pages of ${path} (SQLITE_IOERR_SHORT_READ): the database's -wal file was ` +
        "deleted, truncated or replaced while the database was open, or the file is damaged. Stop every process " +
        "using it, never delete -wal or -shm files of a live database, then run `spool doctor`; restore from a " +
        "backup if it reports damage.",
      { cause: err },
    );
  }
  if (code.startsWith("SQLITE_IOERR")) {
    return new SpoolError(
      `SQLite reported an I/O error (${code}) on ${path}; the transaction was rolled back. This is often a ` +
        "full disk or a failing device: check free space and the system log, then retry.",
      { cause: err },
    );
  }
  return new SpoolError(`SQLite error ${code} on ${path}: ${err.message}`, { cause: err });
}
