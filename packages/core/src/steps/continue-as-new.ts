/**
 * Continue-as-new: close this run and start a fresh one with the same workflow id and an empty
 * history — the way to keep long-lived workflows (loops, entity workflows) under the history limit.
 */
import { Step } from "./step.ts";

/** A step that never returns: the run ends as `continued`. */
export class ContinueAsNewStep extends Step<never> {
  readonly kind = "continueAsNew" as const;
  constructor(readonly input: unknown) {
    super();
  }
  describe(): string {
    return "continueAsNew";
  }
}

/**
 * Ends this run and starts a new one of the same workflow with `input`; `handle.result()` follows
 * the chain to the last run. Outstanding steps of this run are cancelled.
 *
 * @example
 * ```ts
 * if (ctx.info.historyLength > 5_000) yield* continueAsNew({ cursor });
 * ```
 */
export function continueAsNew(input: unknown): ContinueAsNewStep {
  return new ContinueAsNewStep(input);
}
