/**
 * Processes one claimed workflow task: get the run's executor (cached, or rebuilt by replaying its
 * history), decode the inbox, and hand both to the activation pipeline. A replay error parks the
 * run as blocked with the reason; a lost guard (another worker advanced the run) discards the
 * work, which is safe because nothing was written.
 */
import {
  type ActivationResult,
  type Backend,
  type ClaimedWorkflowTask,
  ConflictError,
  type DataConverter,
  decodeHistory,
  decodeInboxEvent,
  type NewInboundEvent,
  parksWhenThrownByEngine,
  type RunRecord,
  type StoredBody,
  serializeError,
  type WorkflowDefinition,
  WorkflowExecutor,
  type WorkflowLogEntry,
} from "@spool/core";
import type { ActivationPipeline } from "./activation-pipeline.ts";
import type { Logger } from "./logger.ts";
import type { RunCache } from "./run-cache.ts";

/**
 * How long a workflow task waits for an eager completion of its run that holds the executor
 * (normally one commit, a few ms) before replaying from history instead.
 */
const EAGER_WAIT_MS = 1000;

/** What processing needs from the worker. */
export interface WorkflowTaskDeps {
  backend: Backend;
  dc: DataConverter;
  log: Logger;
  cache: RunCache;
  workflows: ReadonlyMap<string, WorkflowDefinition>;
  strict: boolean;
  /** The delay before a run parked as blocked is offered again (counts this block). */
  blockedBackoff: (runId: string) => number;
  /** History limits handed to every executor. */
  historyLimits?: { historyWarnAt?: number; historyLimit?: number };
  pipeline: ActivationPipeline;
}

/** Creates an executor for a run and replays its whole history. */
export async function rebuildExecutor(
  run: RunRecord,
  def: WorkflowDefinition,
  deps: Pick<WorkflowTaskDeps, "backend" | "dc" | "log" | "strict" | "historyLimits">,
): Promise<WorkflowExecutor> {
  const raws = await deps.backend.getHistory(run.runId);
  // Replay the history as of `run`: an eager completion (which commits without the workflow task's
  // fence) may have appended events since the task was claimed. Replaying those too put the
  // executor ahead of the seq the activation is guarded by, so the commit was malformed (a
  // ConfigurationError that parked the run as blocked); this way the seq guard rejects it as a
  // plain conflict and the task is re-offered.
  const events = await decodeHistory(raws.slice(0, run.lastSeq), deps.dc, run.runId);
  const ex = new WorkflowExecutor(def, {
    workflowId: run.workflowId,
    runId: run.runId,
    strict: deps.strict,
    log: workflowLogSink(deps.log),
    ...deps.historyLimits,
  });
  await ex.replayHistory(events);
  return ex;
}

/** Routes `ctx.log` lines to the worker's logger. */
export function workflowLogSink(log: Logger): (e: WorkflowLogEntry) => void {
  return (e) => log[e.level](e.message, { ...e.fields, workflowId: e.workflowId, runId: e.runId });
}

/** Processes one workflow task; returns the eagerly claimed activity tasks. */
export async function processWorkflowTask(
  task: ClaimedWorkflowTask,
  deps: WorkflowTaskDeps,
): Promise<ActivationResult | null> {
  let { run } = task;
  const def = deps.workflows.get(run.workflowName);
  if (!def) {
    // The claim asks only for registered names; this is a registry bug, not the run's fault.
    await deps.backend.releaseWorkflowTask({
      runId: run.runId,
      fence: task.fence,
      retryAt: deps.backend.now() + 5000,
    });
    return null;
  }
  // An eager completion of this run on this worker may hold the executor right now: it commits
  // without the task's fence, so it can land between this claim and this activation. Wait for it
  // and continue from its executor, rather than replay the whole history only to lose the seq
  // guard to that commit and do it all again.
  const cached = await deps.cache.takeOrWait(run.runId, EAGER_WAIT_MS);
  let ex = cached?.executor;
  // The executor is then ahead of the claimed run record by that commit: it is the image of the
  // history up to the seq it committed, and the activation is guarded at that seq (a commit by
  // anyone else since then fails the guard, as before).
  if (cached && ex?.seq === cached.run.lastSeq && cached.run.lastSeq > run.lastSeq) {
    run = { ...run, lastSeq: cached.run.lastSeq };
  }
  try {
    if (task.inboxError) throw task.inboxError;
    if (!ex || ex.seq !== run.lastSeq) ex = await rebuildExecutor(run, def, deps);
    const inbound: NewInboundEvent[] = [];
    const stored: StoredBody[] = [];
    for (const raw of task.inbox) {
      const event = (await decodeInboxEvent(raw, deps.dc, run.runId)) as NewInboundEvent;
      inbound.push(event);
      stored.push({ event, body: raw.body });
    }
    return await deps.pipeline.run({
      executor: ex,
      // A copy: the pipeline advances it in place and caches it with the executor.
      run: { ...run },
      definition: def,
      inbound,
      stored,
      fence: task.fence,
      inboxIds: task.inbox.map((raw) => raw.id),
    });
  } catch (err) {
    deps.cache.delete(run.runId);
    if (ConflictError.is(err)) {
      // Nothing was written. Hand the task back at once: if the conflict came from new inbox
      // events or the eager path, it must be re-run now, not when its lease runs out.
      deps.log.debug("activation discarded; re-offering the task", { runId: run.runId, reason: String(err) });
      await deps.backend.releaseWorkflowTask({ runId: run.runId, fence: task.fence }).catch(() => undefined);
      return null;
    }
    if (parksWhenThrownByEngine(err)) {
      await park(task, err, deps);
      return null;
    }
    throw err;
  }
}

async function park(task: ClaimedWorkflowTask, err: unknown, deps: WorkflowTaskDeps): Promise<void> {
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  deps.log.error("run blocked: it cannot continue with the code deployed now", {
    runId: task.run.runId,
    workflowId: task.run.workflowId,
    reason,
  });
  try {
    await deps.backend.blockRun({
      runId: task.run.runId,
      fence: task.fence,
      reason: reason.split("\n")[0]?.slice(0, 500) ?? reason,
      error: (await deps.dc.encodeError(serializeError(err), (e) => e, "block reason")).bytes,
      retryAt: deps.backend.now() + deps.blockedBackoff(task.run.runId),
    });
  } catch (e) {
    if (!ConflictError.is(e)) throw e;
  }
}
