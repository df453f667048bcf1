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
  encodeEventWithFields,
  type HistoryEvent,
  isInbound,
  type RunRecord,
  type StoredBody,
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
  /**
   * The inbound events applied, with their bodies as stored: recorded with those bytes rather
   * than encoded again (see encodeEvent).
   */
  stored?: readonly StoredBody[];
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
    if (isInbound(e)) {
      commit.events.push(await encodeEvent(e, dc, c.stored));
      continue;
    }
    switch (e.type) {
      case "ActivityScheduled": {
        // The input and options are serialized once, for the event and the task alike.
        const encoded = await encodeEventWithFields(e, dc, {
          input: `input of activity "${e.name}" (step ${e.step})`,
          options: "activity options",
        });
        commit.events.push(encoded.event);
        commit.activities.push({
          step: e.step,
          name: e.name,
          input: encoded.fields.input,
          options: encoded.fields.options,
          timeoutMs: e.options.timeoutMs,
          heartbeatTimeoutMs: e.options.heartbeatTimeoutMs,
        });
        break;
      }
      case "WorkflowCompleted": {
        // The result is serialized once: for the event, the run's row and the parent's inbox.
        const encoded = await encodeEventWithFields(e, dc, {
          result: `result of workflow "${run.workflowName}"`,
        });
        commit.events.push(encoded.event);
        commit.close = { status: "completed", result: encoded.fields.result };
        if (run.parentRunId) {
          // A ChildCompleted body holds the same one field as this event's: { result }.
          const what = "ChildCompleted event";
          commit.close.parentEvent = {
            type: "ChildCompleted",
            body: dc.isSync
              ? dc.sealSync(encoded.bodyMsgpack, what)
              : await dc.seal(encoded.bodyMsgpack, what),
          };
        }
        break;
      }
      default:
        commit.events.push(await encodeEvent(e, dc));
        await addQueueEntries(commit, e, c);
    }
  }
  commit.consumedInbox = c.consumedInbox;
  return commit;
}

/** Adds the queue entries a command implies (a timer, a child run, the run's close...). */
async function addQueueEntries(
  commit: ActivationCommit,
  e: HistoryEvent,
  c: ActivationContext,
): Promise<void> {
  const { run, dc } = c;
  switch (e.type) {
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

async function parentEvent(
  run: RunRecord,
  dc: DataConverter,
  e: { type: "ChildFailed"; error: unknown },
): Promise<{ parentEvent?: { type: "ChildFailed"; body: Uint8Array } }> {
  if (!run.parentRunId) return {};
  return { parentEvent: { type: e.type, body: await encodeBody(e, dc) } };
}
