/**
 * The activation pipeline: one activation of a run, from inbound events to a stored commit. The
 * executor applies the events, the new history becomes one ActivationCommit (see
 * activation-builder.ts), the backend commits it, and the run's executor goes back into the cache
 * for the next activation. Both ways a run moves forward take this one path: a claimed workflow
 * task (its inbox) and an activity outcome completed eagerly on this worker (recorded together
 * with the activation it triggers).
 */
import type {
  ActivationResult,
  Backend,
  DataConverter,
  NewInboundEvent,
  RunRecord,
  StoredBody,
  WorkflowDefinition,
  WorkflowExecutor,
} from "@spool/core";
import { buildActivation } from "./activation-builder.ts";
import type { RunCache } from "./run-cache.ts";

/** What the pipeline needs from the worker. */
export interface ActivationPipelineDeps {
  backend: Backend;
  dc: DataConverter;
  cache: RunCache;
  workflows: ReadonlyMap<string, WorkflowDefinition>;
  workerId: string;
  /** Activities this worker runs (only those are claimed eagerly). */
  activityNames: string[];
  /** Activity tasks a commit may claim for this worker now (0 when draining or full). */
  eagerSlots: () => number;
  fault?: (point: string, info: Record<string, unknown>) => Promise<void> | void;
}

/** One activation to run. */
export interface Activation {
  executor: WorkflowExecutor;
  /** The run as of the executor's state; owned by the pipeline (advanced in place on success). */
  run: RunRecord;
  definition: WorkflowDefinition;
  inbound: readonly NewInboundEvent[];
  /** `inbound` with their bodies as stored, so recording them encodes nothing again. */
  stored?: readonly StoredBody[];
  /** The workflow task's fence; undefined on the eager path (guarded by the run's seq alone). */
  fence: number | undefined;
  /** Ids of the inbox rows `inbound` came from, by index (the workflow-task path). */
  inboxIds?: readonly number[];
  /** The activity attempt whose outcome `inbound` holds (the eager path). */
  completedActivity?: { taskId: string; fence: number };
}

/** Runs activations; see the file header. */
export class ActivationPipeline {
  constructor(private readonly deps: ActivationPipelineDeps) {}

  /**
   * Applies, commits and caches one activation. On any error the run's executor is dropped from
   * the cache (it may have moved past what is stored) and the error is rethrown: a ConflictError
   * means nothing was written.
   */
  async run(a: Activation): Promise<ActivationResult> {
    const { backend, cache, fault } = this.deps;
    const { executor: ex, run } = a;
    const eager = a.completedActivity !== undefined;
    try {
      const consumed = await ex.apply(a.inbound, backend.now());
      const newEvents = ex.takeNewEvents();
      const ids = a.inboxIds;
      const commit = await buildActivation({
        run,
        fence: a.fence,
        newEvents,
        consumedInbox: ids === undefined ? [] : consumed.map((i) => ids[i] as number),
        workflows: this.deps.workflows,
        dc: this.deps.dc,
        definition: a.definition,
        stored: a.stored,
      });
      commit.bufferedSignals = ex.bufferedSignalCount;
      if (a.completedActivity) commit.completedActivity = a.completedActivity;
      if (commit.activities.length > 0) {
        const slots = this.deps.eagerSlots();
        if (slots > 0) {
          commit.eagerActivities = {
            workerId: this.deps.workerId,
            maxTasks: slots,
            activityNames: this.deps.activityNames,
          };
        }
      }
      await fault?.("workflow.before-commit", {
        runId: run.runId,
        events: newEvents.length,
        ...(eager ? { eager: true } : {}),
        closing: ex.isClosed,
      });
      const result = await backend.commitActivation(commit);
      await fault?.("workflow.after-commit", {
        runId: run.runId,
        lastSeq: result.lastSeq,
        ...(eager ? { eager: true } : {}),
      });
      if (!ex.isClosed) {
        run.lastSeq = result.lastSeq;
        run.status = "running";
        cache.put({ executor: ex, run });
      } else cache.delete(run.runId);
      return result;
    } catch (err) {
      cache.delete(run.runId);
      throw err;
    }
  }
}
