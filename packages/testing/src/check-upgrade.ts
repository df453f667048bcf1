/**
 * `checkUpgrade`: would deploying v2 of a workflow break the runs v1 left in flight? Runs
 * generated worlds with v1, cuts each history at every activation boundary (the states a run can
 * be persisted in), replays each prefix with v2, and classifies what diverges — steps added,
 * removed, reordered or renamed, inputs changed (strict mode), or v2 throwing on old data — with
 * the `patched()` guard that makes the change safe.
 */
import {
  describeEvent,
  type HistoryEvent,
  InvalidOptionsError,
  isInbound,
  type Schema,
  type WorkflowDefinition,
  WorkflowExecutor,
} from "@spool/core";
import fc from "fast-check";
import { UpgradeCheckError } from "./errors.ts";
import { formatValue } from "./format-value.ts";
import { type Divergence, fromEngineError, isReplayableCut } from "./replay-checks.ts";
import { installStepObserver } from "./step-observer.ts";
import {
  formatUpgradeReport,
  type UpgradeChangeKind,
  type UpgradeFinding,
  type UpgradeReport,
} from "./upgrade-report.ts";
import { FallbackScripts, type World, worldArbitrary, worldScripts } from "./world.ts";
import { discoverDefinitions, type WorldOptions, worldSpecOf } from "./world-options.ts";
import { type Simulation, simulate } from "./world-simulator.ts";

/**
 * Options of {@link checkUpgrade} (the world options of checkDeterminism, plus `throwOnFailure`).
 *
 * @example
 * ```ts
 * const report = await checkUpgrade(orderV1, orderV2, { numRuns: 100, strict: true, throwOnFailure: false });
 * ```
 */
export interface CheckUpgradeOptions<I extends Schema = Schema> extends WorldOptions<I> {
  /** Throw UpgradeCheckError when a change would break runs in flight (default true); else return the report. */
  throwOnFailure?: boolean;
}

interface StepId {
  kind: string;
  name: string;
  text: string;
}

const DESCRIPTIONS: [RegExp, string][] = [
  [/^activity "(.+?)" \(step/, "activity"],
  [/^child workflow "(.+?)"/, "child workflow"],
  [/^patched\("(.+?)"\)/, "patch"],
  [/^timer of (\d+) ms/, "timer"],
  [/^(sideEffect)/, "sideEffect"],
];

/** Reads the step a description (as written by describeEvent) names. */
function parseStep(desc: string): StepId | undefined {
  for (const [re, kind] of DESCRIPTIONS) {
    const m = re.exec(desc);
    if (m)
      return {
        kind,
        name: kind === "timer" ? `${m[1]} ms` : (m[1] as string),
        text: desc.replace(/ \(.*$/, ""),
      };
  }
  return undefined;
}

function idOfEvent(e: HistoryEvent): StepId | undefined {
  switch (e.type) {
    case "ActivityScheduled":
      return { kind: "activity", name: e.name, text: `activity "${e.name}"` };
    case "ChildStarted":
      return { kind: "child workflow", name: e.name, text: `child workflow "${e.name}"` };
    case "PatchMarker":
      return { kind: "patch", name: e.patchId, text: `patched("${e.patchId}")` };
    case "TimerStarted":
      return { kind: "timer", name: `${e.durationMs} ms`, text: `timer of ${e.durationMs} ms` };
    case "SideEffect":
      return { kind: "sideEffect", name: "sideEffect", text: "sideEffect" };
    default:
      return undefined;
  }
}

function idsOf(history: readonly HistoryEvent[]): Set<string> {
  const out = new Set<string>();
  for (const e of history) {
    const id = idOfEvent(e);
    if (id) out.add(`${id.kind}:${id.name}`);
  }
  return out;
}

function patchId(kind: string, id: StepId | undefined): string {
  const base = id ? `${kind}-${id.name}` : kind;
  return base.replace(/[^A-Za-z0-9_.:-]+/g, "-").slice(0, 60);
}

/** Classifies a divergence of v2 on v1's history. */
function classify(
  d: Divergence,
  recordedEvent: HistoryEvent | undefined,
  producedEvent: HistoryEvent | undefined,
  v1Ids: Set<string>,
  v2Ids: Set<string>,
): Pick<UpgradeFinding, "kind" | "summary" | "fix"> {
  if (d.kind !== "divergence") {
    const what = d.kind === "await" ? "awaits something that is not a step" : `throws ${d.produced}`;
    return {
      kind: "error",
      summary: `the new code ${what} while replaying the old history`,
      fix:
        "Make the new code accept what old runs recorded (results of the old shape), or guard the new code path " +
        'with `if (yield* patched("<change-id>"))`.',
    };
  }
  const rec = recordedEvent && !isInbound(recordedEvent) ? idOfEvent(recordedEvent) : undefined;
  const prod = (producedEvent && idOfEvent(producedEvent)) ?? parseStep(d.produced);
  const key = (x: StepId) => `${x.kind}:${x.name}`;
  if (/different input/.test(d.recorded)) {
    return {
      kind: "changed-input",
      summary: `${rec?.text ?? d.recorded} is now called with a different input (strict mode)`,
      fix: `keep the old input for runs in flight: \`if (yield* patched("${patchId("input", rec)}")) { new input } else { old input }\`.`,
    };
  }
  if (/different duration/.test(d.recorded)) {
    return {
      kind: "changed",
      summary: `${rec?.text ?? d.recorded} now has a different duration (strict mode)`,
      fix: `guard the new duration with \`patched("${patchId("duration", rec)}")\`, or keep the old one.`,
    };
  }
  if (rec && prod) {
    const recInV2 = v2Ids.has(key(rec));
    const prodInV1 = v1Ids.has(key(prod));
    if (key(rec) === key(prod)) {
      return {
        kind: "changed",
        summary: `${rec.text} moved to another step number (steps before it changed)`,
        fix: `guard the change before it with \`patched("${patchId("change", rec)}")\`.`,
      };
    }
    if (recInV2 && prodInV1) {
      return {
        kind: "reordered",
        summary: `${prod.text} now runs before ${rec.text}`,
        fix: `keep the old order for runs in flight: \`if (yield* patched("${patchId("reorder", prod)}")) { new order } else { old order }\`.`,
      };
    }
    if (!recInV2 && !prodInV1) {
      return {
        kind: "renamed",
        summary: `${rec.text} was replaced by ${prod.text} (renamed?)`,
        fix:
          `names are recorded in history: keep the name "${rec.name}", or guard the switch with ` +
          `\`if (yield* patched("${patchId("rename", prod)}")) { new } else { old }\`.`,
      };
    }
    if (recInV2 && !prodInV1) {
      return {
        kind: "added",
        summary: `${prod.text} was added before ${rec.text}`,
        fix: `guard the new step: \`if (yield* patched("${patchId("add", prod)}")) yield* ...\` — runs already past this point keep the old path.`,
      };
    }
    return {
      kind: "removed",
      summary: `${rec.text} was removed (the new code goes on with ${prod.text})`,
      fix: `keep it for runs in flight: \`if (!(yield* patched("${patchId("remove", rec)}"))) yield* ...\`, then deprecatePatch() once they are gone.`,
    };
  }
  if (rec && !prod) {
    return {
      kind: "removed",
      summary: `${rec.text} was removed (the new code produced ${d.produced})`,
      fix: `keep it for runs in flight: \`if (!(yield* patched("${patchId("remove", rec)}"))) yield* ...\`, then deprecatePatch() once they are gone.`,
    };
  }
  if (prod) {
    return {
      kind: "added",
      summary: `${prod.text} was added where the old code ${recordedEvent && isInbound(recordedEvent) ? "waited" : "ended"}`,
      fix: `guard the new step: \`if (yield* patched("${patchId("add", prod)}")) yield* ...\` — runs already past this point keep the old path.`,
    };
  }
  return {
    kind: "changed",
    summary: `the new code produced ${d.produced} where the old code recorded ${d.recorded}`,
    fix: 'guard the change with `if (yield* patched("<change-id>")) { new } else { old }`.',
  };
}

/**
 * Checks that a new version of a workflow can take over the runs an old version left in flight.
 * It generates worlds like {@link checkDeterminism}, records v1's history in each, and replays
 * every in-flight state (the history up to each activation boundary) with v2. Every change that
 * would park such runs as blocked is reported: steps added, removed, reordered or renamed without
 * a `patched()` guard, inputs changed (with `strict: true`), or v2 throwing on old data.
 *
 * Both versions must have the same workflow name (they are two deploys of one workflow).
 *
 * @returns the report (`ok: true` when nothing breaks).
 * @throws UpgradeCheckError with the report when a change would break runs in flight (unless
 *   `throwOnFailure: false`, which returns the report instead); InvalidOptionsError when the names
 *   differ or a value cannot be generated.
 * @example
 * ```ts
 * import { checkUpgrade } from "@spool/testing";
 * import { it } from "vitest";
 * import { orderV1, orderV2 } from "../src/order-versions.ts";
 *
 * it("order v2 can take over v1 runs", async () => {
 *   await checkUpgrade(orderV1, orderV2, { strict: true });
 * });
 * ```
 */
export async function checkUpgrade<I extends Schema, O extends Schema>(
  v1: WorkflowDefinition<I, O>,
  // biome-ignore lint/suspicious/noExplicitAny: the new version may change its schemas
  v2: WorkflowDefinition<any, any>,
  options: CheckUpgradeOptions<I> = {},
): Promise<UpgradeReport> {
  const old = v1 as unknown as WorkflowDefinition;
  const next = v2 as unknown as WorkflowDefinition;
  if (old.name !== next.name) {
    throw new InvalidOptionsError(
      `checkUpgrade compares two versions of one workflow, but the names differ ("${old.name}" and "${next.name}"). ` +
        "A run is bound to its workflow name; a renamed workflow is a new workflow.",
    );
  }
  const spec = worldSpecOf(old, options as WorldOptions);
  const startTime = options.startTime ?? Date.UTC(2024, 0, 1);
  const maxEvents = options.maxEvents ?? 1000;
  const numRuns = options.numRuns ?? 50;
  const strict = options.strict ?? false;
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x100000000)) | 0;
  const release = installStepObserver(spec.catalog);
  try {
    await discoverDefinitions([old, next], spec, { startTime, maxEvents });
    const worlds = fc.sample(worldArbitrary(spec), { numRuns, seed });
    const fallbacks = new FallbackScripts(spec);
    const sim = (def: WorkflowDefinition, world: World) =>
      simulate(def, world, worldScripts(world, fallbacks), {
        catalog: spec.catalog,
        workflowId: "check",
        runId: "check-run",
        strict,
        startTime,
        maxEvents,
        traps: null,
        gap: false,
      });
    interface Raw {
      d: Divergence;
      recordedEvent: HistoryEvent | undefined;
      producedEvent: HistoryEvent | undefined;
      world: World;
      worldIndex: number;
      cut: number;
      sim: Simulation;
    }
    const raws: Raw[] = [];
    const v1Ids = new Set<string>();
    const v2Ids = new Set<string>();
    let statesChecked = 0;
    let statesBroken = 0;
    for (const [worldIndex, world] of worlds.entries()) {
      const s1 = await sim(old, world);
      const s2 = await sim(next, world);
      for (const id of idsOf(s2.history)) v2Ids.add(id);
      if (s1.outcome === "engine-error") continue;
      const h = s1.history;
      for (const id of idsOf(h)) v1Ids.add(id);
      for (let cut = 1; cut <= h.length; cut++) {
        const atBoundary =
          cut < h.length
            ? isReplayableCut(h, cut) && isInbound(h[cut] as HistoryEvent)
            : !isClosing(h[h.length - 1]);
        if (!atBoundary) continue;
        statesChecked++;
        const d = await replayWith(next, h.slice(0, cut), strict);
        if (!d) continue;
        statesBroken++;
        const recordedEvent = d.seq !== undefined ? h[d.seq - 1] : undefined;
        const producedEvent = d.seq !== undefined ? await producedAt(next, h, d.seq) : undefined;
        raws.push({ d, recordedEvent, producedEvent, world, worldIndex, cut, sim: s1 });
      }
    }
    const findings = new Map<string, UpgradeFinding & { seenIn: Set<number> }>();
    for (const r of raws) {
      const c = classify(r.d, r.recordedEvent, r.producedEvent, v1Ids, v2Ids);
      const key = `${c.kind}|${c.summary}`;
      const example = {
        world: r.world,
        script: r.sim.script.filter((l) => l.seq !== undefined && l.seq <= r.cut),
        history: r.sim.history.slice(0, r.cut),
      };
      const withInputs = c.kind === "changed-input" && r.recordedEvent && r.producedEvent;
      const recorded = withInputs
        ? `${describeEvent(r.recordedEvent as HistoryEvent)} with input ${inputOf(r.recordedEvent)}`
        : r.d.recorded;
      const produced = withInputs
        ? `${describeEvent(r.producedEvent as HistoryEvent)} with input ${inputOf(r.producedEvent)}`
        : r.d.produced;
      const known = findings.get(key);
      if (!known) {
        findings.set(key, {
          ...c,
          seq: r.d.seq,
          step: r.d.step,
          recorded,
          produced,
          cut: r.cut,
          worlds: 1,
          example,
          seenIn: new Set([r.worldIndex]),
        });
        continue;
      }
      known.seenIn.add(r.worldIndex);
      known.worlds = known.seenIn.size;
      if (r.cut < known.cut)
        Object.assign(known, { cut: r.cut, seq: r.d.seq, step: r.d.step, recorded, produced, example });
    }
    const order: UpgradeChangeKind[] = [
      "added",
      "removed",
      "reordered",
      "renamed",
      "changed-input",
      "changed",
      "error",
    ];
    const list: UpgradeFinding[] = [...findings.values()]
      .map(({ seenIn: _seen, ...f }) => f)
      .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.cut - b.cut);
    const data = {
      ok: list.length === 0,
      workflow: old.name,
      from: old.version,
      to: next.version,
      numRuns: worlds.length,
      seed,
      statesChecked,
      statesBroken,
      findings: list,
    };
    const report: UpgradeReport = { ...data, toString: () => formatUpgradeReport(data) };
    if (!report.ok && (options.throwOnFailure ?? true)) throw new UpgradeCheckError(report);
    return report;
  } finally {
    release();
  }
}

function isClosing(e: HistoryEvent | undefined): boolean {
  return (
    e?.type === "WorkflowCompleted" ||
    e?.type === "WorkflowFailed" ||
    e?.type === "WorkflowCancelled" ||
    e?.type === "WorkflowContinued"
  );
}

function inputOf(e: HistoryEvent | undefined): string {
  return e && "input" in e ? formatValue(e.input, 100) : "?";
}

/**
 * The command the new code produces at history position `seq`: replay the history before it
 * leniently (not strict) and take the first new event.
 */
async function producedAt(
  def: WorkflowDefinition,
  history: readonly HistoryEvent[],
  seq: number,
): Promise<HistoryEvent | undefined> {
  const ex = new WorkflowExecutor(def, { workflowId: "check", runId: "check-run", strict: false });
  try {
    await ex.replayHistory(history.slice(0, seq - 1));
    return ex.takeNewEvents()[0];
  } catch {
    return undefined;
  }
}

async function replayWith(
  def: WorkflowDefinition,
  prefix: readonly HistoryEvent[],
  strict: boolean,
): Promise<Divergence | null> {
  const ex = new WorkflowExecutor(def, { workflowId: "check", runId: "check-run", strict });
  try {
    await ex.replayHistory(prefix);
    return null;
  } catch (err) {
    return fromEngineError(err);
  }
}
