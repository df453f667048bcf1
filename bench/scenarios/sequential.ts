/**
 * Scenario 1 — sequential: one 10-step workflow at a time, started with `client.start` and awaited
 * with `handle.result()`, so each step's latency is the full round trip through Spool with
 * nothing else competing: the activity's completion committed, the workflow task claimed, the
 * run advanced, the next ActivityScheduled committed with its task claimed eagerly, the next
 * activity invoked.
 *
 * Per-step latency is timed inside the activity (performance.now(), microsecond resolution; the
 * history's timestamps have millisecond resolution, too coarse for sub-millisecond steps): the
 * interval between one step's activity starting and the next step's starting, 9 intervals per
 * 10-step workflow.
 *
 * After the timed rounds, one untimed pass counts what a step costs the storage when nothing else
 * runs (lib/step-costs.ts).
 */
import { openBenchEnv } from "../lib/bench-env.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { percentile, perSecond } from "../lib/stats.ts";
import { stepAnatomy } from "../lib/step-anatomy.ts";
import { measureStepCosts } from "../lib/step-costs.ts";
import { noop, stepProbe, stepsWorkflow } from "../lib/workflows.ts";

const STEPS = 10;
/** Workflows in the untimed step-costs pass. */
const COST_WORKFLOWS = 20;

async function run(ctx: ScenarioContext): Promise<void> {
  const workflows = ctx.options.quick ? 20 : 100;
  // Each round is a fresh stack in the same process: the warm-up readies the new file and, in the
  // first round, lets V8 optimise the step path (5 workflows left it still warming up).
  const warmup = ctx.options.quick ? 5 : 30;
  ctx.setting("workflows per round", workflows);
  ctx.setting("steps per workflow", STEPS);
  ctx.setting("untimed warm-up workflows per round", warmup);
  ctx.setting("worker", "defaults (maxConcurrentWorkflowTasks 10, maxConcurrentActivities 100)");

  for (const durability of ctx.options.durabilities) {
    for (let round = 1; round <= ctx.options.rounds; round++) {
      const env = await openBenchEnv("sequential", durability, {
        workflows: [stepsWorkflow],
        activities: [noop],
      });
      const stamps = new Map<string, number[]>();
      stepProbe.onStep = (info) => {
        const list = stamps.get(info.workflowId);
        if (list) list.push(performance.now());
        else stamps.set(info.workflowId, [performance.now()]);
      };
      try {
        for (let i = 0; i < warmup; i++) {
          const h = await env.client.start(stepsWorkflow, { steps: STEPS }, { id: `warm-${i}` });
          await h.result({ timeout: 60_000 });
        }
        stamps.clear();
        const t0 = performance.now();
        for (let i = 0; i < workflows; i++) {
          const h = await env.client.start(stepsWorkflow, { steps: STEPS }, { id: `seq-${i}` });
          await h.result({ timeout: 60_000 });
        }
        const ms = performance.now() - t0;
        const latencies: number[] = [];
        for (const list of stamps.values()) {
          for (let k = 1; k < list.length; k++) latencies.push((list[k] as number) - (list[k - 1] as number));
        }
        ctx.sample("step latency p50", "ms", percentile(latencies, 50), { durability, better: "lower" });
        ctx.sample("step latency p99", "ms", percentile(latencies, 99), { durability, better: "lower" });
        ctx.sample("workflows/s", "wf/s", perSecond(workflows, ms), { durability });
        ctx.sample("steps/s", "steps/s", perSecond(workflows * STEPS, ms), { durability });
        ctx.log(`${durability} round ${round}: ${ms.toFixed(0)} ms, ${latencies.length} step intervals`);
      } finally {
        stepProbe.onStep = null;
        await env.close();
      }
    }
    if (ctx.options.diagnostics) {
      // Untimed: what a step costs the storage when nothing else runs.
      const env = await openBenchEnv("sequential", durability, {
        workflows: [stepsWorkflow],
        activities: [noop],
      });
      try {
        const costs = measureStepCosts(env);
        for (let i = 0; i < COST_WORKFLOWS; i++) {
          const h = await env.client.start(stepsWorkflow, { steps: STEPS }, { id: `costs-${i}` });
          await h.result({ timeout: 60_000 });
        }
        ctx.detail(
          `step costs (${durability}, untimed pass of ${COST_WORKFLOWS} workflows)`,
          costs.stop(COST_WORKFLOWS * STEPS),
        );
      } finally {
        await env.close();
      }
      // Untimed: where a step's time goes (engine, queue, statements, COMMIT, hand-over).
      const anatomy = stepAnatomy();
      const traced = await openBenchEnv(
        "sequential",
        durability,
        { workflows: [stepsWorkflow], activities: [noop] },
        { faultHook: anatomy.faultHook },
      );
      anatomy.attach(traced.backend);
      stepProbe.onStep = (info) => anatomy.onStep(info);
      try {
        for (let i = 0; i < workflows; i++) {
          const h = await traced.client.start(stepsWorkflow, { steps: STEPS }, { id: `anatomy-${i}` });
          await h.result({ timeout: 60_000 });
        }
        ctx.detail(`step anatomy (${durability}, untimed pass of ${workflows} workflows)`, anatomy.result());
      } finally {
        stepProbe.onStep = null;
        await traced.close();
      }
    }
  }
}

const scenario: Scenario = {
  name: "sequential",
  title: "Sequential: one 10-step workflow at a time",
  run,
};
export default scenario;
