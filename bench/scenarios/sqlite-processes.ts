/**
 * Extra scenario — SQLite with several worker processes: the postgres scenario's harness (real
 * forked worker processes, workflows preloaded, all told to go at once) on one SQLite file at
 * durability "full". It shows what sharing one file across processes costs (one writer at a time,
 * busy waits, no cross-process wake-ups: each process polls for work the others made ready), and
 * it keeps the child-process path exercised while @spool/postgres is unfinished.
 */
import { measureWithProcesses } from "../lib/process-workers.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { perSecond } from "../lib/stats.ts";
import { tempDb } from "../lib/temp-db.ts";
import { concurrentWorkerSettings } from "./concurrent.ts";

const STEPS = 10;

async function run(ctx: ScenarioContext): Promise<void> {
  const count = ctx.options.quick ? 60 : 300;
  const processCounts = [1, 2, 4];
  const settings = { ...concurrentWorkerSettings, pollIntervalMs: { min: 5, max: 100 } };
  ctx.setting("workflows per measurement", count);
  ctx.setting("steps per workflow", STEPS);
  ctx.setting("durability", "full");
  ctx.setting("worker processes", processCounts);
  ctx.setting("worker (per process)", settings);

  for (let round = 1; round <= ctx.options.rounds; round++) {
    for (const processes of processCounts) {
      const tmp = tempDb("procs");
      try {
        const r = await measureWithProcesses({
          spec: { kind: "sqlite", path: tmp.path, durability: "full" },
          processes,
          count,
          steps: STEPS,
          settings,
        });
        const label = `${processes} worker process${processes === 1 ? "" : "es"}`;
        ctx.sample(`steps/s, ${label}`, "steps/s", perSecond(count * STEPS, r.ms), { durability: "full" });
        if ((r.statuses.completed ?? 0) !== count)
          ctx.note(`round ${round}, ${label}: ${JSON.stringify(r.statuses)}`);
        ctx.log(`round ${round}, ${label}: ${r.ms.toFixed(0)} ms`);
      } finally {
        tmp.remove();
      }
    }
  }
}

const scenario: Scenario = {
  name: "sqlite-processes",
  title: "SQLite, 1/2/4 worker processes on one file (extra)",
  run,
};
export default scenario;
