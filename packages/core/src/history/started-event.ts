/**
 * The fields of a WorkflowStarted event, made in one place for every way a run begins: a client
 * start, a child workflow, continue-as-new.
 */
import type { WorkflowDefinition } from "../definitions/workflow.ts";
import { toMs } from "../duration.ts";
import type { EventOf } from "./events.ts";

/** WorkflowStarted without position and time. */
export type WorkflowStartedDraft = Omit<EventOf<"WorkflowStarted">, "seq" | "ts">;

/**
 * Builds the WorkflowStarted fields. `def` may be undefined when only the name is known (a child
 * whose definition this process does not have); version and timeout are then left out.
 */
export function workflowStartedFields(
  workflowName: string,
  def: WorkflowDefinition | undefined,
  input: unknown,
  extra: { parent?: WorkflowStartedDraft["parent"]; continuedFrom?: string } = {},
): WorkflowStartedDraft {
  const e: WorkflowStartedDraft = { type: "WorkflowStarted", workflowName, input };
  if (def?.version !== undefined) e.version = def.version;
  if (def?.executionTimeout !== undefined)
    e.executionTimeoutMs = toMs(def.executionTimeout, "executionTimeout");
  if (extra.parent) e.parent = extra.parent;
  if (extra.continuedFrom) e.continuedFrom = extra.continuedFrom;
  return e;
}
