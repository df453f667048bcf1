/**
 * The group steps `all([...])` and `race([...])`: branches (steps or generators) run as child
 * fibers, started in array order, each until it blocks. `all` settles when every branch has a
 * result or at the first failure; `race` at the first outcome. Settling cancels the branches still
 * running, which withdraws whatever they wait on.
 */
import { WorkflowCodeError } from "../../errors.ts";
import type { GroupStep } from "../../steps/concurrency.ts";
import { isStep, type Step } from "../../steps/step.ts";
import type { Fiber, GroupState, Outcome, Pending } from "../fiber.ts";
import { CONTINUED, type StepOps, type StepStart } from "../step-ops.ts";
import { asAnyStep } from "./any-step.ts";

export async function startGroup(fiber: Fiber, s: GroupStep<unknown>, ops: StepOps): Promise<StepStart> {
  if (s.branches.length === 0) {
    if (s.kind === "all") return { ok: true, value: [] };
    throw new WorkflowCodeError("race([]) can never finish: give race() at least one branch");
  }
  const g: GroupState = {
    kind: s.kind,
    parent: fiber,
    children: [],
    results: new Array(s.branches.length),
    remaining: s.branches.length,
    settled: false,
    starting: true,
    early: null,
  };
  fiber.pending = { kind: "group", group: g };
  for (let i = 0; i < s.branches.length; i++) {
    if (g.settled) break;
    const b = s.branches[i];
    if (isStep(b)) {
      const leaf = ops.newFiber(null, g, i);
      g.children.push(leaf);
      markUsed(b);
      const outcome = await ops.startStep(leaf, asAnyStep(b));
      if (outcome === CONTINUED) return null;
      if (outcome !== null) ops.finish(leaf, outcome);
    } else if (b && typeof (b as { next?: unknown }).next === "function") {
      const child = ops.newFiber(b as Fiber["gen"], g, i);
      g.children.push(child);
      await ops.drive(child, "next", undefined);
    } else {
      throw new WorkflowCodeError(
        `${s.kind}() branch ${i} is ${describeValue(b)}; pass steps or generator branches such as (async function* () { ... })()`,
      );
    }
    if (ops.s.closed) return null;
  }
  g.starting = false;
  if (g.early) {
    fiber.pending = null;
    return g.early;
  }
  return null;
}

/** A branch ended: records its result, or settles the group. */
export function branchDone(g: GroupState, index: number, outcome: Outcome, ops: StepOps): void {
  if (g.settled) return;
  if (!outcome.ok || g.kind === "race") {
    settleGroup(g, outcome, ops);
    return;
  }
  g.results[index] = outcome.value;
  g.remaining--;
  if (g.remaining === 0) settleGroup(g, { ok: true, value: g.results }, ops);
}

export function withdrawGroup(p: Extract<Pending, { kind: "group" }>, ops: StepOps): void {
  p.group.settled = true;
  for (const c of p.group.children) ops.cancelFiber(c);
}

function settleGroup(g: GroupState, outcome: Outcome, ops: StepOps): void {
  g.settled = true;
  for (const c of g.children) if (!c.done) ops.cancelFiber(c);
  if (g.starting) {
    g.early = outcome;
    return;
  }
  g.parent.pending = null;
  ops.resume(g.parent, outcome);
}

function markUsed(step: Step<unknown>): void {
  // Consume the one-shot iterator so the same step object cannot also be yielded directly.
  const it = step[Symbol.iterator]();
  it.next();
}

/** Names a value that is not a step, for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof Promise) return "a Promise";
  if (typeof v === "object") return `an object (${Object.prototype.toString.call(v)})`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}
