// Guards against a poison workflow (a TypeError in its code, or code that diverges from history on replay) hot-looping a worker or hurting other runs: it is parked as blocked with the reason (the diff for a divergence), retried with back-off, and resumes when fixed code is deployed.
import { Client, NonDeterminismError, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { go, poisonFixed, quickFlow } from "./fixtures/workflows.ts";
import {
  cleanScratch,
  cpuMs,
  lanes,
  readEffects,
  scratch,
  sleep,
  spawnWorker,
  stop,
  waitFor,
} from "./harness.ts";

afterAll(cleanScratch);

// Two tests at a time: they mostly wait (on sleeps, leases, back-offs), so they share the CPUs well.
const lane = lanes(2);

const BACKOFF = { SPOOL_BLOCKED_RETRY_MS: "100,3200" };
const WINDOW_MS = 3000;

/** Replay attempts of one run by one code variant, as the workflow code logged them. */
function attempts(effects: string, workflowId: string, variant: string): number[] {
  return readEffects(effects)
    .filter((l) => l.kind === "replay" && l.workflowId === workflowId && l.variant === variant)
    .map((l) => l.t ?? 0);
}

/** While parked: few replays, spaced further and further apart, and a nearly idle process. */
async function expectBackoff(effects: string, pid: number, workflowId: string, variant: string) {
  const first = attempts(effects, workflowId, variant).length;
  const cpu0 = cpuMs(pid);
  await sleep(WINDOW_MS);
  const cpu = cpuMs(pid) - cpu0;
  const times = attempts(effects, workflowId, variant);
  const inWindow = times.length - first;
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  console.log(
    `[reliability] poison ${variant}: ${inWindow} replays in ${WINDOW_MS} ms, gaps ${gaps.join("/")} ms, ` +
      `worker CPU ${cpu} ms in the window`,
  );
  // A hot loop replays hundreds of times a second; back-off from 100 ms doubling allows about five.
  expect(inWindow, "replays while parked are few").toBeLessThanOrEqual(8);
  expect(gaps.at(-1)!, "the interval between attempts grows").toBeGreaterThanOrEqual(2 * gaps[0]!);
  // A resource-use bound, not a speed target: a parked run must leave the process close to idle.
  expect(cpu, "worker CPU while the run is parked").toBeLessThan(WINDOW_MS * 0.3);
}

describe("a poison workflow", () => {
  it.concurrent(
    "a TypeError in workflow code: parked with the reason, backed off, others unaffected, fixed code resumes it",
    () =>
      lane(async () => {
        const { db, effects } = scratch();
        const backend = new SqliteBackend({ path: db });
        const client = new Client({ backend });
        try {
          const bad = spawnWorker(db, effects, { ...BACKOFF, SPOOL_POISON: "typeerror" });
          const h = await client.start(poisonFixed, { base: 7 }, { id: "poison-typeerror" });
          await waitFor(async () => (await h.describe()).status === "blocked", 20_000, "parked");
          const d = await h.describe();
          expect(d.blockedReason).toMatch(/^TypeError: .*retries/);
          const others = [];
          for (let i = 0; i < 5; i++)
            others.push(await client.start(quickFlow, { base: i, steps: 3 }, { id: `bystander-${i}` }));
          for (const [i, o] of others.entries())
            expect(await o.result({ timeout: 20_000 })).toBe(3 * i * 1000 + 3);
          await expectBackoff(effects, bad.pid, "poison-typeerror", "typeerror");
          expect((await h.describe()).status).toBe("blocked");

          // Deploy the fix: a worker with the good code re-offers blocked runs at start.
          await stop(bad);
          const fixed = spawnWorker(db, effects, BACKOFF);
          await h.signal(go, { n: 5 });
          expect(await h.result({ timeout: 20_000 })).toBe(7001 + 7002 + 5);
          await stop(fixed);
        } finally {
          await backend.close();
        }
      }),
    60_000,
  );

  it.concurrent(
    "code that diverges on replay: parked with the diff, backed off, and resumed by the previous code",
    () =>
      lane(async () => {
        const { db, effects } = scratch();
        const backend = new SqliteBackend({ path: db });
        const client = new Client({ backend });
        try {
          const good = spawnWorker(db, effects, BACKOFF);
          const h = await client.start(poisonFixed, { base: 3 }, { id: "poison-diverge" });
          await waitFor(async () => (await h.history()).some((e) => e.type === "ActivityCompleted"));
          await stop(good);
          // A bad deploy: the first step changed. Replaying the recorded run diverges.
          const bad = spawnWorker(db, effects, { ...BACKOFF, SPOOL_POISON: "diverge" });
          await h.signal(go, { n: 4 });
          await waitFor(async () => (await h.describe()).status === "blocked", 20_000, "parked");
          const d = await h.describe();
          expect(NonDeterminismError.is(d.error)).toBe(true);
          expect(d.blockedReason).toMatch(
            /history recorded activity "rel\.step".*but the code now produced activity "rel\.other"/,
          );
          const historyBefore = (await h.history()).length;
          await expectBackoff(effects, bad.pid, "poison-diverge", "diverge");
          expect((await h.history()).length, "parking leaves the history untouched").toBe(historyBefore);

          await stop(bad);
          const fixed = spawnWorker(db, effects, BACKOFF);
          expect(await h.result({ timeout: 20_000 })).toBe(3001 + 3002 + 4);
          await stop(fixed);
        } finally {
          await backend.close();
        }
      }),
    60_000,
  );
});
