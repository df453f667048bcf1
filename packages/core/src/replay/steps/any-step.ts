/**
 * Every kind of step the engine knows, as one discriminated union on `kind`: dispatch narrows on
 * it, with no casts. A new step kind is a new member here and a new module beside this one.
 */
import type { ActivityStep } from "../../definitions/activity.ts";
import type { Schema } from "../../definitions/schema.ts";
import type { SignalWaitStep } from "../../definitions/signal.ts";
import type { ChildStep } from "../../steps/child.ts";
import type { GroupStep } from "../../steps/concurrency.ts";
import type { ContinueAsNewStep } from "../../steps/continue-as-new.ts";
import type { PatchStep } from "../../steps/patch.ts";
import type { SideEffectStep } from "../../steps/side-effect.ts";
import type { Step } from "../../steps/step.ts";
import type { TimerStep } from "../../steps/timer.ts";

export type AnyStep =
  | ActivityStep<Schema, Schema>
  | TimerStep
  | SignalWaitStep<unknown>
  | ChildStep<Schema, Schema>
  | SideEffectStep<unknown>
  | PatchStep
  | GroupStep<unknown>
  | ContinueAsNewStep;

/** Every step object is one of AnyStep: the one place that says so (steps are created only by Spool). */
export function asAnyStep(step: Step<unknown>): AnyStep {
  return step as AnyStep;
}
