/**
 * Errors about what is stored: a history or row that fails its checksum or cannot be decoded, a
 * history file that cannot be read, and storage that is full.
 */
import { isOpenStatus } from "../backend/run-records.ts";
import { guard, SpoolError, type SpoolErrorOptions } from "./spool-error.ts";

/** A stored history row or payload failed its checksum or could not be decoded. */
export class HistoryCorruptError extends SpoolError {
  override name = "HistoryCorruptError";
  readonly runId: string;
  readonly seq: number;
  /** Why the row is corrupt, without the advice around it. */
  readonly reason: string;
  constructor(
    runId: string,
    seq: number,
    reason: string,
    options?: SpoolErrorOptions & {
      /** The run's status when known: a run that has ended has nothing left to terminate. */
      runStatus?: string;
    },
  ) {
    const ended = options?.runStatus !== undefined && !isOpenStatus(options.runStatus);
    super(
      `history of run ${runId} is corrupt at event #${seq}: ${reason}. ` +
        (ended
          ? `The run has ended (${options?.runStatus}), so there is nothing to terminate: restore the row from a ` +
            "backup. `spool doctor` lists every damaged row."
          : "The run is parked; restore the row from a backup, or end the run with handle.terminate() " +
            "(`spool terminate <workflowId>`)."),
      options,
    );
    this.runId = runId;
    this.seq = seq;
    this.reason = reason;
  }
  static override is = guard(HistoryCorruptError, "HistoryCorruptError");
}

/**
 * A stored row other than a history event failed its checksum: a run's record (`runs`: status,
 * result, error) or an activity task's input (`activity_tasks`). It is a
 * {@link HistoryCorruptError} (at position 0), so code that handles corrupt histories handles it
 * too. Nothing read from the row is returned: a flipped byte must never become a wrong result.
 *
 * @example
 * ```ts
 * try { await handle.result(); } catch (err) {
 *   if (RowCorruptError.is(err)) console.error(err.table, err.runId); // run `spool doctor`
 * }
 * ```
 */
export class RowCorruptError extends HistoryCorruptError {
  override name = "RowCorruptError";
  /** The table of the damaged row. */
  readonly table: "runs" | "activity_tasks";
  constructor(
    info: {
      table: "runs" | "activity_tasks";
      runId: string;
      /** The row as a person would name it: `run 01J...`, `activity task 01J... (step 3, "charge")`. */
      row: string;
      reason: string;
      /** The run's stored status, when known (it is itself unverified when the runs row is damaged). */
      status?: string;
    },
    options?: SpoolErrorOptions,
  ) {
    super(info.runId, 0, info.reason, options);
    this.table = info.table;
    const closed = info.status !== undefined && info.status !== "running" && info.status !== "blocked";
    const advice = closed
      ? "The run has ended, so there is nothing to terminate: restore the row from a backup; its history " +
        "(`spool history <workflowId>`) is checksummed separately and still shows what the run recorded."
      : info.table === "runs"
        ? "A worker parks the run as blocked when it next claims it (rewriting the record without its outcome); " +
          "then end it with `spool terminate <workflowId>`, or restore the row from a backup."
        : "Restore the row from a backup, or end the run with `spool terminate <workflowId>`.";
    this.message =
      `${info.row} (table ${info.table}) is corrupt: ${info.reason}. Nothing was read from it` +
      `${info.status !== undefined ? ` (its stored status, unverified, is "${info.status}")` : ""}. ${advice} ` +
      "`spool doctor` lists every damaged row.";
  }
  static override is = guard(RowCorruptError, "RowCorruptError");
}

/**
 * A history file could not be read: wrong format, version, or an event that fails its schema.
 *
 * @example
 * ```ts
 * expect(() => parseHistoryFile("not json")).toThrow(HistoryFileError);
 * ```
 */
export class HistoryFileError extends SpoolError {
  override name = "HistoryFileError";
  static override is = guard(HistoryFileError, "HistoryFileError");
}

/** The storage is full (disk, quota or page limit). Nothing was written; retry when space is back. */
export class StorageFullError extends SpoolError {
  override name = "StorageFullError";
  static override is = guard(StorageFullError, "StorageFullError");
}
