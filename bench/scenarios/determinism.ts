/**
 * Scenario 8 — determinism check: `checkDeterminism` from @spool/testing with 100 worlds on a
 * 20-step workflow (bench.twentySteps): total ms and ms per world.
 *
 * Written against the documented API — `checkDeterminism(workflow, { worlds })`, resolving to a
 * report — and loaded with a dynamic import, so the harness runs before @spool/testing is
 * finished and reports "unavailable" until the export exists. Numeric fields of the report that
 * name how many worlds actually ran are recorded, so a different default is visible.
 */
import type { WorkflowDefinition } from "spool";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { twentyStepWorkflow } from "../lib/workflows.ts";

type CheckDeterminism = (workflow: WorkflowDefinition, options: { worlds: number }) => unknown;

async function loadChecker(ctx: ScenarioContext): Promise<CheckDeterminism> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import("@spool/testing")) as Record<string, unknown>;
  } catch (err) {
    return ctx.unavailable(
      `@spool/testing cannot be imported (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  const fn = mod.checkDeterminism;
  if (typeof fn !== "function") return ctx.unavailable("@spool/testing does not export checkDeterminism yet");
  return fn as CheckDeterminism;
}

/** The report's fields that say what was checked (numbers and booleans, one level deep). */
function reportShape(report: unknown): Record<string, unknown> {
  if (typeof report !== "object" || report === null) return { value: String(report) };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(report)) {
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "string") out[k] = v;
    else if (Array.isArray(v)) out[k] = `array(${v.length})`;
  }
  return out;
}

async function run(ctx: ScenarioContext): Promise<void> {
  const worlds = 100;
  ctx.setting("worlds", worlds);
  ctx.setting("workflow", "bench.twentySteps: 20 sequential no-op steps");
  const checkDeterminism = await loadChecker(ctx);

  for (let round = 0; round <= ctx.options.rounds; round++) {
    const t0 = performance.now();
    const report = await checkDeterminism(twentyStepWorkflow, { worlds });
    const ms = performance.now() - t0;
    if (round === 0) {
      ctx.detail("report (first call, untimed warm-up)", reportShape(report));
      continue;
    }
    ctx.sample(`checkDeterminism, ${worlds} worlds`, "ms", ms, { better: "lower" });
    ctx.sample("per world", "ms", ms / worlds, { better: "lower" });
  }
}

const scenario: Scenario = {
  name: "determinism",
  title: "Determinism check: checkDeterminism, 100 worlds, 20 steps",
  run,
};
export default scenario;
