/**
 * Scenario 7 — fan-out: one workflow running 1,000 no-op activities at once through `all`, from
 * `client.start` to `handle.result()`: total ms. One activation schedules all 1,000 (ten claimed
 * eagerly); the rest are claimed by the worker's loop; each completion lands in the run's inbox,
 * and activations consume whatever has arrived since the last one.
 */
import { openBenchEnv } from "../lib/bench-env.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { perSecond } from "../lib/stats.ts";
import { fanOutWorkflow, noop } from "../lib/workflows.ts";
import { concurrentWorkerSettings } from "./concurrent.ts";

async function run(ctx: ScenarioContext): Promise<void> {
  const n = ctx.options.quick ? 200 : 1000;
  ctx.setting("activities", n);
  ctx.setting("worker", concurrentWorkerSettings);

  for (const durability of ctx.options.durabilities) {
    for (let round = 0; round <= ctx.options.rounds; round++) {
      const env = await openBenchEnv("fanout", durability, {
        workflows: [fanOutWorkflow],
        activities: [noop],
        ...concurrentWorkerSettings,
      });
      try {
        const t0 = performance.now();
        const h = await env.client.start(fanOutWorkflow, { n: round === 0 ? 100 : n }, { id: "fan-out" });
        const result = await h.result({ timeout: 600_000 });
        const ms = performance.now() - t0;
        if (round === 0) continue; // warm-up
        if (result !== n) ctx.note(`${durability} round ${round}: result ${result}, expected ${n}`);
        const d = await h.describe();
        ctx.sample(`fan-out of ${n.toLocaleString("en-US")}`, "ms", ms, { durability, better: "lower" });
        ctx.sample("fan-out activities/s", "act/s", perSecond(n, ms), { durability });
        ctx.detail(`history length (${durability})`, d.historyLength);
        ctx.log(`${durability} round ${round}: ${ms.toFixed(0)} ms, history ${d.historyLength} events`);
      } finally {
        await env.close();
      }
    }
  }
}

const scenario: Scenario = {
  name: "fan-out",
  title: "Fan-out: one workflow, 1,000 activities through all",
  run,
};
export default scenario;
