/**
 * The continue-as-new step: ends this run with WorkflowContinued carrying the next run's input and
 * the signals it received but did not consume (they belong to the workflow, not to this run).
 */
import { parseWith } from "../../definitions/schema.ts";
import type { ContinueAsNewStep } from "../../steps/continue-as-new.ts";
import { CONTINUED, type StepOps, type StepStart } from "../step-ops.ts";
import { unconsumedSignals } from "./signal-wait.ts";

export function startContinueAsNew(s: ContinueAsNewStep, ops: StepOps): StepStart {
  const def = ops.s.definition;
  const input = parseWith(def.inputSchema, s.input, `continueAsNew input of "${def.name}"`);
  ops.withdrawAll();
  const carried = unconsumedSignals(ops);
  ops.rec.emit(
    carried.length > 0
      ? { type: "WorkflowContinued", input, carriedSignals: carried }
      : { type: "WorkflowContinued", input },
  );
  ops.s.closed = true;
  ops.s.status = "continued";
  ops.s.continueInput = input;
  return CONTINUED;
}
