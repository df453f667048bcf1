/**
 * Concurrency inside one workflow: `all` and `race` over steps and multi-step generator branches.
 *
 * Order is fixed so that replay is identical however completions arrived: branches start in array
 * order, each running until it blocks; afterwards a branch resumes only when history delivers the
 * event it waits for, and branches made runnable by one event resume in the order they became
 * runnable. The engine never lets two branches run at once.
 */
import { Step } from "./step.ts";

/** A branch: a single step, or a generator of steps such as `(async function* () { ... })()`. */
export type Branch<T = unknown> =
  | Step<T>
  | AsyncGenerator<Step<unknown>, T, unknown>
  | Generator<Step<unknown>, T, unknown>;

/** The result type of a branch. */
export type BranchResult<B> =
  B extends Step<infer T>
    ? T
    : B extends AsyncGenerator<unknown, infer T, unknown>
      ? T
      : B extends Generator<unknown, infer T, unknown>
        ? T
        : never;

/** A step that runs branches concurrently: `all` waits for every one, `race` for the first. */
export class GroupStep<T> extends Step<T> {
  constructor(
    readonly kind: "all" | "race",
    readonly branches: readonly Branch[],
  ) {
    super();
  }
  describe(): string {
    return `${this.kind} of ${this.branches.length} branch(es)`;
  }
}

/**
 * Runs branches concurrently and returns all their results as a typed tuple. Fail-fast: the first
 * failure is thrown at the `yield*` and the other branches are cancelled. `all([])` returns `[]`.
 *
 * @example
 * ```ts
 * const [a, b] = yield* all([reserve({ id }), notify({ id })]);
 * ```
 */
export function all<const B extends readonly Branch[]>(
  branches: B,
): GroupStep<{ -readonly [K in keyof B]: BranchResult<B[K]> }> {
  return new GroupStep("all", branches);
}

/**
 * Runs branches concurrently and returns the first to finish (or throws the first failure); the
 * losers are cancelled: timers and signal waits are dropped, running activities are aborted,
 * generator branches are closed (their `finally` blocks run).
 *
 * @example
 * ```ts
 * const winner = yield* race([approve.wait(), sleep("1d")]);
 * ```
 */
export function race<const B extends readonly Branch[]>(branches: B): GroupStep<BranchResult<B[number]>> {
  return new GroupStep("race", branches);
}
