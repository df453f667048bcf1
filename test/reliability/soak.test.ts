// Guards against rare losses and duplicates that only thousands of kills expose; the soak tier (SPOOL_SOAK=1) kills workers at every fault point again and again, measures throughput with 1, 2 and 4 processes and runs 2,000 workflows under random kills, then writes REPORT.md.
import { writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  baseSeed,
  type CampaignResult,
  cleanScratch,
  distribution,
  type FleetResult,
  KILL_POINTS,
  percentile,
  runCampaign,
  runFleet,
  summary,
} from "./harness.ts";

const SOAK = process.env.SPOOL_SOAK === "1";
const KILLS_PER_POINT = Number(process.env.SPOOL_SOAK_KILLS ?? 100);
const LOAD_RUNS = Number(process.env.SPOOL_SOAK_LOAD ?? 2000);
const REPORT = join(import.meta.dirname, "REPORT.md");

describe.skipIf(!SOAK)("soak tier (SPOOL_SOAK=1)", () => {
  it(
    `kills workers ${KILLS_PER_POINT}x at each of ${KILL_POINTS.length} fault points, races 1/2/4 workers, runs ${LOAD_RUNS} workflows under kills; writes REPORT.md`,
    async () => {
      const started = Date.now();
      const load0 = loadavg()[0] ?? 0;
      const campaigns: CampaignResult[] = [];
      for (const [i, point] of KILL_POINTS.entries()) {
        const r = await runCampaign({
          name: `soak-${point}`,
          point,
          faults: KILLS_PER_POINT,
          concurrency: 2,
          hitMax: point.startsWith("sqlite.write") ? 16 : 6,
          initialRuns: 16,
          runsPerFault: 2,
          maxRuns: 16 + KILLS_PER_POINT * 2,
          steps: 3,
          seed: baseSeed + i * 100_000,
          finishTimeoutMs: 180_000,
        });
        console.log(summary(r));
        campaigns.push(r);
        cleanScratch();
      }

      const throughput: { workers: number; r: FleetResult }[] = [];
      for (const workers of [1, 2, 4]) {
        const r = await runFleet({
          name: `soak-race-${workers}`,
          seed: baseSeed + workers,
          runs: 400,
          steps: 5,
          workers: Array.from({ length: workers }, (_, k) => ({ SPOOL_WORKER_ID: `racer-${k}` })),
          maxExtraPerFault: 0,
          finishTimeoutMs: 180_000,
        });
        expect(r.executions, "no double claim: each step executed once, bar leases that ran out").toBe(
          r.steps + r.leaseLost,
        );
        console.log(
          `[soak] throughput ${workers} worker(s): ${r.runsPerSecond} runs/s, ${r.stepsPerSecond} steps/s`,
        );
        throughput.push({ workers, r });
        cleanScratch();
      }

      const load = await runCampaign({
        name: `soak-load-${LOAD_RUNS}`,
        point: "",
        points: KILL_POINTS,
        faults: 30,
        concurrency: 2,
        // Points are hit about once per step at most: die somewhere in the first quarter of the work.
        hitMax: Math.max(10, Math.round(LOAD_RUNS / 4)),
        initialRuns: LOAD_RUNS,
        runsPerFault: 0,
        maxRuns: LOAD_RUNS,
        steps: 7,
        initialSignals: Math.ceil(LOAD_RUNS / 2),
        signalsPerFault: Math.ceil(LOAD_RUNS / 60),
        seed: baseSeed + 424_242,
        roundTimeoutMs: 20_000,
        cleanWorkers: 2,
        finishTimeoutMs: 600_000,
      });
      console.log(summary(load));
      cleanScratch();

      const loads = `${load0.toFixed(1)} at the start, ${(loadavg()[0] ?? 0).toFixed(1)} at the end`;
      writeFileSync(REPORT, report(campaigns, throughput, load, Date.now() - started, loads));
      const kills = campaigns.reduce((s, c) => s + c.injected, 0) + load.injected;
      expect(kills).toBeGreaterThanOrEqual(1000);
    },
    6 * 3_600_000,
  );
});

function ms(v: number): string {
  return Number.isNaN(v) ? "–" : `${Math.round(v)}`;
}

function report(
  campaigns: CampaignResult[],
  throughput: { workers: number; r: FleetResult }[],
  load: CampaignResult,
  tookMs: number,
  loads: string,
): string {
  const all = [...campaigns, load];
  const kills = all.reduce((s, c) => s + c.injected, 0);
  const extras = all.flatMap((c) => c.extraPerFault);
  const recovery = all.flatMap((c) => c.recoveryMs);
  const takeover = all.flatMap((c) => c.takeoverMs);
  const row = (c: CampaignResult, label: string) =>
    `| ${label} | ${c.injected} | ${c.started} | ${c.lost ?? 0} | ${c.duplicates ?? 0} | ${c.executions - c.steps} | ${c.leaseLost} | ` +
    `${distribution(c.extraPerFault)} | ${ms(percentile(c.takeoverMs, 50))} / ${ms(percentile(c.takeoverMs, 95))} | ` +
    `${ms(percentile(c.recoveryMs, 50))} / ${ms(percentile(c.recoveryMs, 95))} | ${c.recoveryMs.length} |`;
  return `# Reliability soak report

Produced by \`SPOOL_SOAK=1 npx vitest run test/reliability/soak.test.ts\` (test/reliability/soak.test.ts);
do not edit by hand. Seed \`SPOOL_SEED=${baseSeed}\`; ${new Date().toISOString().slice(0, 10)}; Node ${process.version};
${availableParallelism()} CPU(s) (${cpus()[0]?.model.trim() ?? "unknown"}), shared with other work (1-minute load
average ${loads}: timings are inflated accordingly); took ${Math.round(tookMs / 60_000)} min.

**${kills} SIGKILLs** of real worker processes; **runs lost: ${all.reduce((s, c) => s + (c.lost ?? 0), 0)}**;
**duplicate recordings: ${all.reduce((s, c) => s + (c.duplicates ?? 0), 0)}**; every database passed \`PRAGMA integrity_check\`.

## What one campaign does

Starts chaosFlow runs (\`steps\` sequential activities, a durable timer, a two-way fan-out, a signal
wait, a child workflow) from the test process, recording every acknowledged start and signal.
Two worker processes at a time are armed at one fault point and SIGKILL themselves at a random
hit of it (1..6, or 1..16 for the frequent \`sqlite.write.*\` points); each death is replaced by a
fresh armed worker (which takes over what the dead one held, and may die in turn), more runs are
started and more signals sent. After the last kill a clean worker finishes everything, and the
harness checks: every acknowledged start completed with the result of a
fault-free reference run; every acknowledged signal is in its history exactly once; histories are
gapless with no outcome recorded twice; no task, timer or inbox row is left; per step, the recorded
attempt was executed, and every other execution was an earlier attempt with the same idempotency
key, run in a killed process (at most 18 per kill) or by a live worker whose lease had run out and
that was told so; \`integrity_check\` is ok.

Leases in these runs: workflow task 400 ms; activity attempt 600 ms timeout + 300 ms grace.

## Kills per fault point

| fault point | kills | runs | lost | duplicates | extra executions | of which by live workers whose lease ran out | extra executions per kill (extra:kills) | takeover p50 / p95 ms | recovery p50 / p95 ms | samples |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${campaigns.map((c) => row(c, `\`${c.point}\``)).join("\n")}
${row(load, `load: ${LOAD_RUNS} workflows x 10 steps, random points`)}

Extra executions per kill, all campaigns: ${distribution(extras)} (count of extra executions : number of kills).
Every extra execution was an earlier attempt with the same idempotency key, either in a killed
process or in a live worker whose lease had run out while it was starved of CPU (its late completion
was rejected by the fence and its attempt aborted as lease-lost; the harness requires that evidence).
At-least-once bound asserted per kill: at most the attempts the killed process could have had in
flight (maxConcurrentActivities 8 + eagerActivities 10); observed maximum ${Math.max(...extras)}.

**Takeover and recovery** are measured per kill from the SIGKILL (timestamped by the dying process)
on the work the dead worker held: each attempt it had executed but not recorded, plus the step or
run its fault point names. *Takeover* ends when another process started that work again (for a run,
when the run moved on); *recovery* ends when all of it was recorded. Both include the lease running
out (workflow task 400 ms, attempt 900 ms) and a replacement process starting (~0.5 s); recovery also
includes the replacement dying in turn (it is armed too) and queueing behind other ready work — in
the load campaign, behind a backlog of thousands of runs started at once.
Kills that orphaned no identifiable work (a claim that found nothing, a timer sweep) are not sampled.
All kills: takeover p50 ${ms(percentile(takeover, 50))} ms, p95 ${ms(percentile(takeover, 95))} ms;
recovery p50 ${ms(percentile(recovery, 50))} ms, p95 ${ms(percentile(recovery, 95))} ms (${recovery.length} samples).
The load campaign drained its ${load.started} runs in ${Math.round(load.drainMs / 1000)} s after its last kill.

## Throughput with several worker processes on one SQLite file

Reported, never asserted (shared CPUs). 400 chaosFlow runs of 5 + 3 activity steps each, no faults;
each step executed once, or again only after the first attempt's lease ran out (no double claim).

| worker processes | runs/s | activity steps/s | elapsed ms | steps re-run after a lease ran out |
| --- | --- | --- | --- | --- |
${throughput.map(({ workers, r }) => `| ${workers} | ${r.runsPerSecond} | ${r.stepsPerSecond} | ${r.elapsedMs} | ${r.leaseLost} |`).join("\n")}
`;
}
