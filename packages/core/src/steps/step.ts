/**
 * The step protocol. A step is a one-shot iterable: `yield*` on it yields the step object itself
 * to the engine once and returns whatever the engine sends back, typed. This is the only place in
 * Spool where that result is cast. Steps have no `then` member on purpose: an async generator
 * would otherwise await them as promises.
 */
import { WorkflowCodeError } from "../errors.ts";

/** The kinds of step the engine understands. */
export type StepKind =
  | "activity"
  | "timer"
  | "signal"
  | "child"
  | "sideEffect"
  | "patch"
  | "all"
  | "race"
  | "continueAsNew";

/**
 * A unit of durable work yielded by workflow code with `yield*`. Create steps with the step
 * functions (`sleep`, `all`, an activity definition call, `signal.wait()`, ...), never directly.
 */
export abstract class Step<T> {
  /** What the engine should do with this step. */
  abstract readonly kind: StepKind;
  #used = false;

  /** Yields this step to the engine once; returns the engine's answer. */
  *[Symbol.iterator](): Generator<Step<T>, T, unknown> {
    if (this.#used) {
      throw new WorkflowCodeError(
        `a ${this.kind} step was yielded twice; a step is one-shot — create a new one for each \`yield*\``,
      );
    }
    this.#used = true;
    return (yield this) as T;
  }

  /** A short description for errors and logs, e.g. `activity "payments.charge"`. */
  abstract describe(): string;
}

/** The result type of a step. */
export type StepResult<S> = S extends Step<infer T> ? T : never;

/** True when `v` is a step. */
export function isStep(v: unknown): v is Step<unknown> {
  return v instanceof Step;
}
