/**
 * Turns what the engine produced (new history events) into one backend ActivationCommit: the
 * events themselves, plus the queue entries they imply (activity tasks, timers, child runs,
 * cancellations, the run's close). The engine stays pure; this is where its commands meet storage.
 */
import {
  type ActivationCommit,
  type DataConverter,
  encodeBody,
  encodeEvent,
  type HistoryEvent,
  isInbound,
  type RecordedActivityOptions,
  type RunRecord,
  type WorkflowDefinition,
  workflowInputFingerprint,
  workflowStartedFields,
} from "@spool/core";

/** What the builder needs to know about the run. */
export interface ActivationContext {
  run: RunRecord;
  fence: number | undefined;
  newEvents: HistoryEvent[];
  /**
   * Ids of the inbox events the run consumed (those the executor's `apply` reported); the others,
   * left after continue-as-new, stay in the inbox for the next run.
   */
  consumedInbox: number[];
  /** Definitions this worker knows, to record a child's version and execution timeout. */
  workflows: ReadonlyMap<string, WorkflowDefinition>;
  dc: DataConverter;
  /** The definition of this run (for continue-as-new). */
  definition: WorkflowDefinition;
}

/** Builds the commit for one activation. */
export async function buildActivation(c: ActivationContext): Promise<ActivationCommit> {
  const { run, dc } = c;
  const commit: ActivationCommit = {
    runId: run.runId,
    fence: c.fence,
    expectedLastSeq: run.lastSeq,
    events: [],
    consumedInbox: [],
    activities: [],
    cancelActivities: [],
    timers: [],
    cancelTimers: [],
    children: [],
    cancelChildren: [],
  };
  for (const e of c.newEvents) {
    commit.events.push(await encodeEvent(e, dc));
    if (isInbound(e)) continue;
    switch (e.type) {
      case "ActivityScheduled":
        commit.activities.push({
          step: e.step,
          name: e.name,
          input: await dc.encode(e.input, `input of activity "${e.name}" (step ${e.step})`),
          options: await encodeOptions(e.options, dc),
          timeoutMs: e.options.timeoutMs,
          heartbeatTimeoutMs: e.options.heartbeatTimeoutMs,
        });
        break;
      case "ActivityCancelled":
        commit.cancelActivities.push(e.step);
        break;
      case "TimerStarted":
        commit.timers.push({ step: e.step, dueAt: e.dueAt });
        break;
      case "TimerCancelled":
        commit.cancelTimers.push(e.step);
        break;
      case "ChildStarted": {
        const def = c.workflows.get(e.name);
        commit.children.push({
          step: e.step,
          workflowId: e.workflowId,
          workflowName: e.name,
          version: def?.version ?? null,
          startedEventBody: await encodeBody(
            workflowStartedFields(e.name, def, e.input, {
              parent: { workflowId: run.workflowId, runId: run.runId, step: e.step },
            }),
            dc,
            `input of child workflow "${e.name}"`,
          ),
          inputHash: workflowInputFingerprint(e.input),
        });
        break;
      }
      case "ChildCancelled":
        commit.cancelChildren.push({
          step: e.step,
          workflowId: e.workflowId,
          body: await encodeBody(
            { type: "CancelRequested", reason: `parent ${run.workflowId} cancelled it` },
            dc,
          ),
        });
        break;
      case "WorkflowCompleted":
        commit.close = {
          status: "completed",
          result: await dc.encode(e.result, `result of workflow "${run.workflowName}"`),
          ...(await parentEvent(run, dc, { type: "ChildCompleted", result: e.result })),
        };
        break;
      case "WorkflowFailed":
      case "WorkflowCancelled":
        commit.close = {
          status: e.type === "WorkflowFailed" ? "failed" : "cancelled",
          error: (await dc.encodeError(e.error, (err) => err, "workflow error")).bytes,
          ...(await parentEvent(run, dc, { type: "ChildFailed", error: e.error })),
        };
        break;
      case "WorkflowContinued":
        commit.close = {
          status: "continued",
          continueAsNew: {
            workflowName: run.workflowName,
            version: c.definition.version ?? null,
            startedEventBody: await encodeBody(
              workflowStartedFields(run.workflowName, c.definition, e.input, {
                continuedFrom: run.runId,
                ...(run.parentRunId && run.parentWorkflowId && run.parentStep !== null
                  ? {
                      parent: {
                        workflowId: run.parentWorkflowId,
                        runId: run.parentRunId,
                        step: run.parentStep,
                      },
                    }
                  : {}),
              }),
              dc,
              `continueAsNew input of "${run.workflowName}"`,
            ),
            inputHash: workflowInputFingerprint(e.input),
            carriedSignals: await Promise.all(
              (e.carriedSignals ?? []).map(
                async (sig) =>
                  await encodeBody({ type: "SignalReceived", name: sig.name, payload: sig.payload }, dc),
              ),
            ),
          },
        };
        break;
      default:
        break; // SideEffect, PatchMarker: history only
    }
  }
  commit.consumedInbox = c.consumedInbox;
  return commit;
}

/**
 * Encoded options by converter, then by the (frozen, shared) options object the engine records
 * for an activity scheduled without per-call options: encoded once, not at every step. Only
 * without a payload codec, whose output need not be the same twice (e.g. a random IV).
 */
const encodedOptions = new WeakMap<DataConverter, WeakMap<object, Uint8Array>>();

async function encodeOptions(options: RecordedActivityOptions, dc: DataConverter): Promise<Uint8Array> {
  if (!dc.isSync || !Object.isFrozen(options)) return dc.encode(options, "activity options");
  let byOptions = encodedOptions.get(dc);
  if (byOptions === undefined) {
    byOptions = new WeakMap();
    encodedOptions.set(dc, byOptions);
  }
  let bytes = byOptions.get(options);
  if (bytes === undefined) {
    bytes = dc.encodeSync(options, "activity options");
    byOptions.set(options, bytes);
  }
  return bytes;
}

async function parentEvent(
  run: RunRecord,
  dc: DataConverter,
  e: { type: "ChildCompleted"; result: unknown } | { type: "ChildFailed"; error: unknown },
): Promise<{ parentEvent?: { type: "ChildCompleted" | "ChildFailed"; body: Uint8Array } }> {
  if (!run.parentRunId) return {};
  return { parentEvent: { type: e.type, body: await encodeBody(e, dc) } };
}
