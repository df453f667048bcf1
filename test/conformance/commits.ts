/** Activation commits for backend tests: everything empty unless a test says otherwise. */
import type { ActivationCommit } from "@spool/core";

/** A commit of run `runId` guarded at `expectedLastSeq` that writes nothing beyond `over`. */
export function commitOf(
  runId: string,
  expectedLastSeq: number,
  over: Partial<ActivationCommit> = {},
): ActivationCommit {
  return {
    runId,
    expectedLastSeq,
    events: [],
    consumedInbox: [],
    activities: [],
    cancelActivities: [],
    timers: [],
    cancelTimers: [],
    children: [],
    cancelChildren: [],
    ...over,
  };
}
