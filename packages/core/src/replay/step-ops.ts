/**
 * The narrow interface between the scheduler and the step kinds. A step kind (steps/*.ts) sees a
 * run only through these operations: it reads and changes the run's state, records through the
 * recorder, and hands fibers back to the scheduler — it never drives a fiber itself, except a
 * group starting its branches.
 */
import type { Fiber, GroupState, Outcome } from "./fiber.ts";
import type { Recorder } from "./recorder.ts";
import type { RunState } from "./run-state.ts";
import type { AnyStep } from "./steps/any-step.ts";

/** A step started and ended the run by continuing it as new: the fiber stops here. */
export const CONTINUED = Symbol("continued");

/** What starting a step gives: its outcome at once, `null` when the fiber now waits, or CONTINUED. */
export type StepStart = Outcome | null | typeof CONTINUED;

export interface StepOps {
  readonly s: RunState;
  readonly rec: Recorder;
  /** Queues a fiber to resume with an outcome (fibers resume in FIFO order). */
  resume(fiber: Fiber, outcome: Outcome): void;
  /** Resumes the fiber waiting on step number `step`, if any (a cancelled race loser has none). */
  resolveStep(step: number, outcome: Outcome): void;
  /** A new branch fiber of a group. */
  newFiber(gen: Fiber["gen"], group: GroupState | null, index: number): Fiber;
  /** Runs a fiber until it blocks or ends. */
  drive(fiber: Fiber, kind: "next" | "throw" | "return", value: unknown): Promise<void>;
  /** Starts a step for a fiber. */
  startStep(fiber: Fiber, step: AnyStep): StepStart | Promise<StepStart>;
  /** Ends a fiber with an outcome (the root ends the run; a branch reports to its group). */
  finish(fiber: Fiber, outcome: Outcome): void;
  /** Cancels a fiber that lost a race or whose group failed. */
  cancelFiber(f: Fiber): void;
  /** Withdraws whatever a fiber waits for, recording the cancellation commands. */
  withdraw(f: Fiber): void;
  /** Withdraws everything the run waits on and drops what was queued to run (it is ending). */
  withdrawAll(): void;
  /** Ends the run as failed (or cancelled, when the error is the requested cancellation). */
  failRun(err: unknown): void;
  /** A warning through the run's log (silent while replaying). */
  warn(message: string, fields?: Record<string, unknown>): void;
}
