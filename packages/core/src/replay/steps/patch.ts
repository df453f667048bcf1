/**
 * The patch step: `yield* patched(id)` is true for runs that pass this point on new code (it
 * records a PatchMarker) and false for runs that passed it before the patch existed (history has no
 * marker there). `deprecatePatch(id)` is always true and records nothing.
 */
import { WorkflowCodeError } from "../../errors.ts";
import type { PatchStep } from "../../steps/patch.ts";
import type { StepOps, StepStart } from "../step-ops.ts";

export function startPatch(s: PatchStep, ops: StepOps): StepStart {
  const known = ops.s.patches.get(s.patchId);
  if (known) {
    if (!s.deprecated && known.callSite && s.callSite && known.callSite !== s.callSite) {
      throw new WorkflowCodeError(
        `patch id "${s.patchId}" is used at two places (${known.callSite} and ${s.callSite}). One patch id guards ` +
          'one change; give each change its own id, e.g. "<change>-part2".',
      );
    }
    return { ok: true, value: known.value };
  }
  let value: boolean;
  if (ops.rec.takeIf((rec) => rec.type === "PatchMarker" && rec.patchId === s.patchId)) {
    value = true;
  } else if (ops.s.isReplaying || s.deprecated) {
    // Replaying a run that passed this point before the patch existed: keep the old path.
    // A deprecated patch never records; its new path is the only path.
    value = s.deprecated;
  } else {
    ops.rec.emit({ type: "PatchMarker", patchId: s.patchId });
    value = true;
  }
  ops.s.patches.set(s.patchId, { value, callSite: s.callSite });
  return { ok: true, value };
}
