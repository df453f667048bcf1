/**
 * The cross-check of a completed run's stored result against its history. The `runs` row's
 * result is checksummed on its own, but a row rewritten whole (checksum included: a faulty
 * migration, a restore that mixed backups) would still pass; the history's WorkflowCompleted
 * event is checksummed separately, so both must agree before a result is handed to a caller.
 */
import {
  type Backend,
  type DataConverter,
  decodeEvent,
  type RawEvent,
  RowCorruptError,
  type RunRecord,
  sameEncodedValue,
} from "@spool/core";

/**
 * The decoded result of a completed run, after checking it equals the result its closing event
 * recorded.
 *
 * @throws RowCorruptError when they differ or the closing event is missing (nothing returned);
 *   HistoryCorruptError when the closing event fails its own checksum.
 */
export async function checkedResult(run: RunRecord, backend: Backend, dc: DataConverter): Promise<unknown> {
  const stored = run.result ? await dc.decode(run.result) : undefined;
  // The closing event is almost always the last one: read one row, and the whole history only if not.
  let events: RawEvent[] = await backend.getHistory(run.runId, Math.max(0, run.lastSeq - 1));
  if (events[events.length - 1]?.type !== "WorkflowCompleted") events = await backend.getHistory(run.runId);
  const raw = events.findLast((e) => e.type === "WorkflowCompleted");
  const bad = (reason: string) =>
    new RowCorruptError({
      table: "runs",
      runId: run.runId,
      row: `the record of run ${run.runId} (workflow id "${run.workflowId}")`,
      reason,
      status: run.status,
    });
  if (raw === undefined)
    throw bad("the run is recorded as completed but its history has no WorkflowCompleted event");
  const closing = (await decodeEvent(raw, dc, run.runId)) as { result?: unknown };
  if (!sameEncodedValue(stored, closing.result)) {
    throw bad(`its result differs from the one recorded by WorkflowCompleted (event #${raw.seq})`);
  }
  return stored;
}
