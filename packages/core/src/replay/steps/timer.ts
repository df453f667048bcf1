/**
 * The timer step: `sleep()` / `sleepUntil()` record TimerStarted with its due time on workflow
 * time; TimerFired resumes the sleeper. TimerFired is also how a signal wait times out and how the
 * run's execution timeout ends it, so its handler asks what the step's fiber waits for.
 */

import { toMs } from "../../duration.ts";
import { InvalidOptionsError, TimeoutError } from "../../errors.ts";
import type { EventOf } from "../../history/events.ts";
import type { TimerStep } from "../../steps/timer.ts";
import { Fiber, type Pending } from "../fiber.ts";
import type { StepOps, StepStart } from "../step-ops.ts";
import { signalWaitExpired } from "./signal-wait.ts";

export function startTimer(fiber: Fiber, s: TimerStep, ops: StepOps): StepStart {
  const now = ops.s.nowTs;
  const dueAt = "duration" in s.at ? now + toMs(s.at.duration, "sleep duration") : s.at.until.getTime();
  if (!Number.isFinite(dueAt)) throw new InvalidOptionsError("sleepUntil() needs a valid Date");
  if (dueAt <= now) return { ok: true, value: undefined };
  const step = ops.s.nextStep();
  ops.rec.emit({ type: "TimerStarted", step, dueAt, durationMs: dueAt - now });
  fiber.pending = { kind: "timer", step };
  ops.s.waitOn(step, fiber);
  return null;
}

/**
 * The run's execution timeout: a real, recorded timer (step 1) owned by a pseudo-fiber, so it
 * replays like any other timer.
 */
export function startExecutionTimeout(started: EventOf<"WorkflowStarted">, ops: StepOps): void {
  const ms = started.executionTimeoutMs;
  if (ms === undefined || ms <= 0) return;
  const step = ops.s.nextStep();
  ops.rec.emit({ type: "TimerStarted", step, dueAt: started.ts + ms, durationMs: ms });
  const owner = new Fiber(-1, null, null, 0);
  owner.pending = { kind: "timer", step, internal: "execution-timeout" };
  ops.s.waitOn(step, owner);
}

/** The step number of the execution-timeout timer while it runs. */
export function executionTimeoutStep(ops: StepOps): number | undefined {
  for (const [step, f] of ops.s.waitingSteps) if (f.id === -1) return step;
  return undefined;
}

export function withdrawTimer(p: Extract<Pending, { kind: "timer" }>, ops: StepOps): void {
  ops.s.waitingSteps.delete(p.step);
  ops.rec.emit({ type: "TimerCancelled", step: p.step });
}

export function timerFired(e: EventOf<"TimerFired">, ops: StepOps): void {
  const f = ops.s.waitingSteps.get(e.step);
  if (!f?.pending) return;
  if (f.pending.kind === "signal") {
    signalWaitExpired(f, e.step, ops);
  } else if (f.pending.kind === "timer" && f.pending.internal === "execution-timeout") {
    ops.s.waitingSteps.delete(e.step);
    f.pending = null;
    const ms = ops.s.started?.executionTimeoutMs ?? 0;
    ops.failRun(
      new TimeoutError(`workflow "${ops.s.definition.name}" exceeded its execution timeout of ${ms} ms`, ms),
    );
  } else ops.resolveStep(e.step, { ok: true, value: undefined });
}
