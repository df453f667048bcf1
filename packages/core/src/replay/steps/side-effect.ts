/**
 * The side-effect step: `yield* sideEffect(fn)` runs `fn` once, live, and records its value; on
 * replay the recorded value is returned and `fn` is not called.
 */
import { WorkflowCodeError } from "../../errors.ts";
import type { EventOf } from "../../history/events.ts";
import type { SideEffectStep } from "../../steps/side-effect.ts";
import type { StepOps, StepStart } from "../step-ops.ts";

export function startSideEffect(s: SideEffectStep<unknown>, ops: StepOps): StepStart {
  const step = ops.s.nextStep();
  if (ops.s.isReplaying) {
    const rec = ops.rec.match({ type: "SideEffect", step, value: undefined }, "side effect");
    return { ok: true, value: (rec as EventOf<"SideEffect">).value };
  }
  const value = s.fn();
  if (value instanceof Promise) {
    throw new WorkflowCodeError(
      "sideEffect() takes a synchronous function; for async work (I/O) use an activity instead",
    );
  }
  ops.rec.emit({ type: "SideEffect", step, value });
  return { ok: true, value };
}
