/**
 * Small non-deterministic values recorded once: the function runs on first execution only; replay
 * returns the recorded value.
 */
import { Step } from "./step.ts";

/** A step that records the value of a synchronous function. */
export class SideEffectStep<T> extends Step<T> {
  readonly kind = "sideEffect" as const;
  constructor(readonly fn: () => T) {
    super();
  }
  describe(): string {
    return "side effect";
  }
}

/**
 * Runs `fn` once and records its value; replay returns the recorded value without running it.
 * For small values only (an id, a random choice, the wall clock); real I/O belongs in an activity.
 *
 * @example
 * ```ts
 * const token = yield* sideEffect(() => crypto.randomUUID());
 * ```
 */
export function sideEffect<T>(fn: () => T): SideEffectStep<T> {
  return new SideEffectStep(fn);
}
