/**
 * Scenario 6 — memory: RSS and heap of a worker process holding 10,000 runs suspended on a
 * signal, with the live-run cache holding them all (maxCachedRuns ≥ 10,000) and with it off
 * (maxCachedRuns 0: every run is evicted and would be replayed on its next event). Each round is
 * a fresh child process run with --expose-gc (bench/children/memory-probe.ts); garbage is
 * collected before both snapshots, and per-run bytes are (after − baseline) / runs.
 */
import { join } from "node:path";
import { type ChildMessage, repoRoot, startChild } from "../lib/child-process.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { tempDb } from "../lib/temp-db.ts";

const probe = join(repoRoot, "bench", "children", "memory-probe.ts");

interface ProbeResult {
  baseline: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
  ms: number;
  cachedRuns: number;
  evictions: number;
}

async function measure(runs: number, maxCachedRuns: number): Promise<ProbeResult> {
  const tmp = tempDb("memory");
  const child = startChild(probe, [tmp.path, String(runs), String(maxCachedRuns)], ["--expose-gc"]);
  try {
    const msg: ChildMessage = await child.next("result", 900_000);
    await child.exited;
    return msg as unknown as ProbeResult;
  } finally {
    child.kill();
    tmp.remove();
  }
}

async function run(ctx: ScenarioContext): Promise<void> {
  const runs = ctx.options.quick ? 1000 : 10_000;
  const modes = [
    { label: "cache full", maxCachedRuns: runs + 100 },
    { label: "cache off (evicted)", maxCachedRuns: 0 },
  ];
  ctx.setting("suspended runs", runs);
  ctx.setting("workflow", "bench.parked: one no-op step, then waits on a signal");
  ctx.setting("modes", modes);
  ctx.setting("durability", "normal (memory does not depend on it)");

  for (let round = 1; round <= ctx.options.rounds; round++) {
    for (const mode of modes) {
      const r = await measure(runs, mode.maxCachedRuns);
      const mib = (b: number) => b / 2 ** 20;
      ctx.sample(`${mode.label}: RSS`, "MiB", mib(r.after.rss), { better: "lower" });
      ctx.sample(`${mode.label}: heap used`, "MiB", mib(r.after.heapUsed), { better: "lower" });
      ctx.sample(`${mode.label}: RSS per run`, "bytes", (r.after.rss - r.baseline.rss) / runs, {
        better: "lower",
      });
      ctx.sample(`${mode.label}: heap per run`, "bytes", (r.after.heapUsed - r.baseline.heapUsed) / runs, {
        better: "lower",
      });
      ctx.detail(`round ${round} ${mode.label}`, {
        cachedRuns: r.cachedRuns,
        evictions: r.evictions,
        parkMs: Math.round(r.ms),
        baselineMiB: { rss: +mib(r.baseline.rss).toFixed(1), heapUsed: +mib(r.baseline.heapUsed).toFixed(1) },
        externalPerRunBytes: Math.round((r.after.external - r.baseline.external) / runs),
      });
      ctx.log(`round ${round} ${mode.label}: rss ${mib(r.after.rss).toFixed(1)} MiB, cached ${r.cachedRuns}`);
    }
  }
}

const scenario: Scenario = {
  name: "memory",
  title: "Memory: 10,000 runs suspended on a signal",
  run,
};
export default scenario;
