/**
 * The activity step: `yield* act(input)` records ActivityScheduled (the worker turns it into an
 * activity task); ActivityCompleted / ActivityFailed resume the waiting fiber; withdrawing it (a
 * lost race, a cancellation) records ActivityCancelled.
 */

import { deserializeError } from "../../codec/error-serialization.ts";
import type { ActivityStep } from "../../definitions/activity.ts";
import { parseWith, type Schema } from "../../definitions/schema.ts";
import { toMs } from "../../duration.ts";
import { ActivityFailure } from "../../errors.ts";
import type { EventOf, RecordedActivityOptions } from "../../history/events.ts";
import { encodeRetryPolicy, resolveRetryPolicy } from "../../retry-policy.ts";
import type { Fiber, Pending } from "../fiber.ts";
import type { StepOps, StepStart } from "../step-ops.ts";

/** Recorded options of definitions scheduled without per-call options (see recordedOptions). */
const sharedOptions = new WeakMap<object, { defaultTimeoutMs: number; options: RecordedActivityOptions }>();

export function startActivity(fiber: Fiber, s: ActivityStep<Schema, Schema>, ops: StepOps): StepStart {
  const def = s.definition;
  const input = parseWith(def.inputSchema, s.input, `input of activity "${def.name}"`);
  const step = ops.s.nextStep();
  ops.rec.emit({
    type: "ActivityScheduled",
    step,
    name: def.name,
    input,
    options: recordedOptions(def, s.options, ops.s.opts.defaultActivityTimeoutMs),
  });
  fiber.pending = { kind: "activity", step, name: def.name };
  ops.s.waitOn(step, fiber);
  return null;
}

export function withdrawActivity(p: Extract<Pending, { kind: "activity" }>, ops: StepOps): void {
  ops.s.waitingSteps.delete(p.step);
  ops.rec.emit({ type: "ActivityCancelled", step: p.step });
}

export function activityCompleted(e: EventOf<"ActivityCompleted">, ops: StepOps): void {
  ops.resolveStep(e.step, { ok: true, value: e.result });
}

export function activityFailed(e: EventOf<"ActivityFailed">, ops: StepOps): void {
  const f = ops.s.waitingSteps.get(e.step);
  const name = f?.pending?.kind === "activity" ? f.pending.name : "?";
  const failure = new ActivityFailure(
    { activityName: name, step: e.step, attempt: e.attempt, reason: e.reason },
    { cause: deserializeError(e.error) },
  );
  ops.resolveStep(e.step, { ok: false, error: failure });
}

/**
 * The options recorded with a scheduled activity: the definition's, overridden per call. Without
 * per-call options they are worked out once per definition (and default timeout) and shared,
 * frozen, by every step that schedules it — the same object each time also lets the activation
 * builder encode it once.
 */
function recordedOptions(
  def: ActivityStep<Schema, Schema>["definition"],
  perCall: ActivityStep<Schema, Schema>["options"],
  defaultTimeoutMs: number,
): RecordedActivityOptions {
  if (perCall === undefined) {
    const cached = sharedOptions.get(def);
    if (cached !== undefined && cached.defaultTimeoutMs === defaultTimeoutMs) return cached.options;
  }
  const merged = { ...def.options, ...perCall };
  const retry = encodeRetryPolicy(resolveRetryPolicy(merged.retry));
  const timeoutMs =
    merged.timeout === undefined ? defaultTimeoutMs : toMs(merged.timeout, "activity timeout");
  const heartbeatTimeoutMs =
    merged.heartbeatTimeout === undefined ? 0 : toMs(merged.heartbeatTimeout, "activity heartbeatTimeout");
  const options: RecordedActivityOptions = { retry, timeoutMs, heartbeatTimeoutMs };
  if (perCall === undefined) {
    Object.freeze(retry.nonRetryableErrors);
    Object.freeze(retry);
    sharedOptions.set(def, { defaultTimeoutMs, options: Object.freeze(options) });
  }
  return options;
}
