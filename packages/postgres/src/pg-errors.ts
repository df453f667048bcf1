/**
 * Translation of PostgreSQL and driver failures into Spool's typed errors, and the decision of
 * which failures the backend retries by itself. Callers never need to know SQLSTATE codes:
 *
 * - serialization failures and deadlocks (40001, 40P01) and a lost race on the one-open-run-per-id
 *   index (23505 on `runs_one_open_per_workflow_id`) rolled the transaction back whole, so the
 *   backend simply runs it again (a few attempts);
 * - a full disk (53100) becomes {@link StorageFullError};
 * - a dropped connection, a server restart or shutdown, or a refused connection becomes a
 *   {@link SpoolError} that says it is transient, so the worker's loop logs it and retries with
 *   back-off. It is never swallowed.
 *
 * Spool's own errors (guards, validation) thrown inside a transaction pass through unchanged.
 */
import { SpoolError, StorageFullError } from "@spool/core";

/** The partial unique index that makes "one open run per workflow id" a database invariant. */
export const OPEN_RUN_INDEX = "runs_one_open_per_workflow_id";

/** The fields of a `pg` DatabaseError this module reads. */
interface PgErrorFields {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

function sqlState(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as PgErrorFields).code;
  return typeof code === "string" ? code : undefined;
}

/** Node socket error codes that mean the connection to the server is gone or never came up. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * True when the transaction was certainly rolled back by the server for a reason that running it
 * again can fix: a serialization failure, a deadlock, or losing the race to create the open run of
 * a workflow id (the retry then attaches to the winner, exactly as SQLite's serialised start does).
 */
export function isRetryableConflict(err: unknown): boolean {
  const code = sqlState(err);
  if (code === "40001" || code === "40P01") return true;
  return code === "23505" && (err as PgErrorFields).constraint === OPEN_RUN_INDEX;
}

/**
 * True when the failure is the connection's, not the statement's: the socket dropped, the server
 * restarted or is shutting down, or a connection could not be made. The connection must not be
 * reused, and the outcome of a COMMIT in flight is unknown.
 */
export function isConnectionFailure(err: unknown): boolean {
  const code = sqlState(err);
  if (code !== undefined) {
    if (SOCKET_CODES.has(code)) return true;
    // 08xxx connection exceptions; 57P01-57P03 admin/crash shutdown, cannot connect now.
    if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03") return true;
    if (code === "53300") return true; // too many connections
  }
  if (err instanceof Error) {
    const m = err.message;
    return (
      m.includes("Connection terminated") ||
      m.includes("connection error") ||
      m.includes("timeout exceeded when trying to connect") ||
      m.includes("Client was closed and is not queryable")
    );
  }
  return false;
}

/**
 * Maps an error thrown while talking to PostgreSQL to the error the caller should see. Errors that
 * are not from the database or the driver (Spool's guards, programming errors) are returned as-is.
 *
 * @param where - the schema, for messages that name the store.
 */
export function translatePgError(err: unknown, where: string): unknown {
  if (SpoolError.is(err)) return err;
  const code = sqlState(err);
  if (code === "53100") {
    return new StorageFullError(
      `PostgreSQL reported a full disk while writing to schema ${where} (SQLSTATE 53100). The transaction ` +
        "was rolled back and nothing was written; free disk space on the database server, then retry.",
      { cause: err },
    );
  }
  if (isConnectionFailure(err)) {
    return new SpoolError(
      `lost the connection to PostgreSQL (${code ?? (err as Error).message}) while using schema ${where}. This is ` +
        "transient: a transaction that had not committed was rolled back, so retry (a Worker does this by itself, " +
        "with back-off). If a COMMIT was in flight its outcome is unknown; every Spool write is guarded, so " +
        "retrying it is safe.",
      { cause: err },
    );
  }
  if (isRetryableConflict(err)) {
    return new SpoolError(
      `PostgreSQL kept aborting a transaction on schema ${where} (${code}: ${(err as Error).message}) after ` +
        "several attempts; nothing was written. Retry; if it persists, look for long transactions holding locks.",
      { cause: err },
    );
  }
  if (code === "42P01" || code === "3F000") {
    return new SpoolError(
      `the Spool tables in schema ${where} are missing (${(err as Error).message}). Call backend.init() to create ` +
        "them, and check that nothing dropped the schema.",
      { cause: err },
    );
  }
  if (code !== undefined && err instanceof Error) {
    return new SpoolError(`PostgreSQL error ${code} on schema ${where}: ${err.message}`, { cause: err });
  }
  return err;
}
