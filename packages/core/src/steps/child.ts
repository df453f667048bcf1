/**
 * Child workflows: a run started by another run. The parent waits for the child's typed result;
 * a child's failure reaches the parent as ChildWorkflowFailure with the cause; cancelling the
 * parent cancels its children.
 */
import type { z } from "zod";
import type { Schema } from "../definitions/schema.ts";
import type { WorkflowDefinition } from "../definitions/workflow.ts";
import { Step } from "./step.ts";

/** Options of `child`. */
export interface ChildOptions {
  /** The child's workflow id; by default `<parent workflow id>/<child name>#<step>` (deterministic). */
  id?: string;
}

/** A step that starts a child workflow and waits for its result. */
export class ChildStep<I extends Schema, O extends Schema> extends Step<z.output<O>> {
  readonly kind = "child" as const;
  constructor(
    readonly definition: WorkflowDefinition<I, O>,
    readonly input: z.input<I>,
    readonly options: ChildOptions | undefined,
  ) {
    super();
  }
  describe(): string {
    return `child workflow "${this.definition.name}"`;
  }
}

/**
 * Starts a child workflow and waits for its result.
 *
 * @example
 * ```ts
 * const receipt = yield* child(receiptWorkflow, { chargeId });
 * ```
 */
export function child<I extends Schema, O extends Schema>(
  definition: WorkflowDefinition<I, O>,
  input: z.input<I>,
  options?: ChildOptions,
): ChildStep<I, O> {
  return new ChildStep(definition, input, options);
}
