/**
 * Versioning of in-flight runs. `patched(id)` records a marker the first time new code passes the
 * point, so runs started before the change replay the old path and new runs take the new one.
 *
 * Stage 1: `if (yield* patched("x")) { new } else { old }`. Stage 2, once no run without the
 * marker is open: `yield* deprecatePatch("x"); new`. Stage 3: remove the call.
 */
import { Step } from "./step.ts";

/** A step that answers whether this run takes the patched path. */
export class PatchStep extends Step<boolean> {
  readonly kind = "patch" as const;
  constructor(
    readonly patchId: string,
    readonly deprecated: boolean,
    /** Where the call was made (first stack frame outside Spool), to detect one id used for two changes. */
    readonly callSite: string | undefined,
  ) {
    super();
  }
  describe(): string {
    return `${this.deprecated ? "deprecatePatch" : "patched"}("${this.patchId}")`;
  }
}

function callSite(): string | undefined {
  const stack = new Error().stack?.split("\n") ?? [];
  // [0] "Error", [1] callSite, [2] patched/deprecatePatch, [3] the workflow code
  return stack[3]?.trim();
}

/**
 * True when this run should take the new code path; false for runs that reached this point before
 * the change was deployed. Memoised per id within a run.
 *
 * @example
 * ```ts
 * if (yield* patched("fraud-check")) yield* fraudCheck({ orderId });
 * ```
 */
export function patched(patchId: string): PatchStep {
  return new PatchStep(patchId, false, callSite());
}

/**
 * The clean-up stage of a patch: the code no longer branches, and old histories that carry the
 * marker still replay. Records nothing.
 */
export function deprecatePatch(patchId: string): PatchStep {
  return new PatchStep(patchId, true, callSite());
}
