/**
 * Scenario 8 — determinism check: `checkDeterminism` from @spool/testing with 100 worlds
 * (`numRuns: 100`, a fixed seed so every round checks the same worlds) on a 20-step workflow
 * (bench.twentySteps): total ms and ms per world. The checker drives the pure engine (no
 * database): each world is simulated, then every prefix of its history is replayed.
 *
 * @spool/testing is loaded with a dynamic import, so while it is unfinished (or broken) the
 * scenario reports "unavailable" with the reason instead of stopping the whole run.
 */
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { twentyStepWorkflow } from "../lib/workflows.ts";

type Testing = typeof import("@spool/testing");

async function loadChecker(ctx: ScenarioContext): Promise<Testing["checkDeterminism"]> {
  let mod: Partial<Testing>;
  try {
    mod = await import("@spool/testing");
  } catch (err) {
    return ctx.unavailable(
      `@spool/testing cannot be imported (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  if (typeof mod.checkDeterminism !== "function") {
    return ctx.unavailable("@spool/testing does not export checkDeterminism yet");
  }
  return mod.checkDeterminism;
}

async function run(ctx: ScenarioContext): Promise<void> {
  const worlds = 100;
  const seed = 20_251_128;
  ctx.setting("worlds (numRuns)", worlds);
  ctx.setting("seed", seed);
  ctx.setting("workflow", "bench.twentySteps: 20 sequential no-op steps");
  ctx.setting("checker options", "defaults otherwise (faults on, cancellation off)");
  const checkDeterminism = await loadChecker(ctx);

  for (let round = 0; round <= ctx.options.rounds; round++) {
    const t0 = performance.now();
    const report = await checkDeterminism(twentyStepWorkflow, { numRuns: worlds, seed });
    const ms = performance.now() - t0;
    if (round === 0) {
      ctx.detail("report of the warm-up call", {
        numRuns: report.numRuns,
        replays: report.replays,
        outcomes: report.outcomes,
      });
      continue; // warm-up
    }
    ctx.sample(`checkDeterminism, ${worlds} worlds`, "ms", ms, { better: "lower" });
    ctx.sample("per world", "ms", ms / worlds, { better: "lower" });
    ctx.sample("per prefix replay", "µs", (ms * 1000) / report.replays, { better: "lower" });
  }
}

const scenario: Scenario = {
  name: "determinism",
  title: "Determinism check: checkDeterminism, 100 worlds, 20 steps",
  run,
};
export default scenario;
