/**
 * The child-workflow step: `yield* child(def, input)` records ChildStarted (the worker creates the
 * child run in the same commit); ChildCompleted / ChildFailed / ChildStartFailed resume the parent;
 * withdrawing it records ChildCancelled (the child is sent a cancellation).
 */
import { deserializeError } from "../../codec/error-serialization.ts";
import { parseWith, type Schema } from "../../definitions/schema.ts";
import { ChildWorkflowFailure, WorkflowAlreadyStartedError } from "../../errors.ts";
import type { EventOf } from "../../history/events.ts";
import type { ChildStep } from "../../steps/child.ts";
import type { Fiber, Pending } from "../fiber.ts";
import type { StepOps, StepStart } from "../step-ops.ts";

export function startChild(fiber: Fiber, s: ChildStep<Schema, Schema>, ops: StepOps): StepStart {
  const def = s.definition;
  const input = parseWith(def.inputSchema, s.input, `input of child workflow "${def.name}"`);
  const step = ops.s.nextStep();
  const workflowId = s.options?.id ?? `${ops.s.workflowId}/${def.name}#${step}`;
  ops.rec.emit({ type: "ChildStarted", step, name: def.name, workflowId, input });
  fiber.pending = { kind: "child", step, workflowId, name: def.name };
  ops.s.waitOn(step, fiber);
  return null;
}

export function withdrawChild(p: Extract<Pending, { kind: "child" }>, ops: StepOps): void {
  ops.s.waitingSteps.delete(p.step);
  ops.rec.emit({ type: "ChildCancelled", step: p.step, workflowId: p.workflowId });
}

export function childCompleted(e: EventOf<"ChildCompleted">, ops: StepOps): void {
  ops.resolveStep(e.step, { ok: true, value: e.result });
}

export function childFailed(e: EventOf<"ChildFailed"> | EventOf<"ChildStartFailed">, ops: StepOps): void {
  const f = ops.s.waitingSteps.get(e.step);
  const p = f?.pending?.kind === "child" ? f.pending : undefined;
  const cause =
    e.type === "ChildFailed"
      ? deserializeError(e.error)
      : new WorkflowAlreadyStartedError(
          p?.workflowId ?? "?",
          "?",
          `child workflow id "${p?.workflowId}" is already used by a running workflow; give child() a unique { id }`,
        );
  ops.resolveStep(e.step, {
    ok: false,
    error: new ChildWorkflowFailure(
      { workflowName: p?.name ?? "?", workflowId: p?.workflowId ?? "?" },
      { cause },
    ),
  });
}
