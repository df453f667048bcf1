/**
 * Child process of the memory scenario (run with --expose-gc): starts a worker on a fresh SQLite
 * file, measures memory after a warm-up, parks `runs` runs of bench.parked on their signal, waits
 * until every one is suspended, collects garbage and measures again. Sends the two snapshots to
 * the parent as a "result" message, then exits.
 *
 * Usage (forked by bench/scenarios/memory.ts): memory-probe.ts <db path> <runs> <maxCachedRuns>
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Client, SqliteBackend, silentLogger, Worker } from "spool";
import { sendToParent } from "../lib/child-process.ts";
import { noop, parkedWorkflow, release } from "../lib/workflows.ts";

const [dbPath, runsArg, cacheArg] = process.argv.slice(2);
if (!dbPath || !runsArg || !cacheArg) throw new Error("usage: memory-probe <db> <runs> <maxCachedRuns>");
const runs = Number(runsArg);
const maxCachedRuns = Number(cacheArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("memory-probe needs --expose-gc");

async function collect(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await sleep(20); // let finalizers and weak callbacks run between collections
  }
  return process.memoryUsage();
}

const backend = new SqliteBackend({ path: dbPath, durability: "normal" });
const worker = new Worker({
  backend,
  workflows: [parkedWorkflow],
  activities: [noop],
  logger: silentLogger,
  maxCachedRuns,
  maxConcurrentWorkflowTasks: 50,
  maxConcurrentActivities: 200,
});
const client = new Client({ backend });
await worker.start();

/** Until every open run waits on its signal: no ready or running work, nothing in flight. */
async function settled(expectedOpen: number): Promise<void> {
  const deadline = Date.now() + 600_000;
  let quiet = 0;
  while (Date.now() < deadline) {
    const s = await backend.inspect.stats();
    const idle =
      worker.isIdle() &&
      s.readyWorkflowTasks === 0 &&
      s.readyActivityTasks === 0 &&
      s.runningActivityTasks === 0 &&
      (s.runsByStatus.running ?? 0) === expectedOpen;
    quiet = idle ? quiet + 1 : 0;
    if (quiet >= 3) return;
    await sleep(50);
  }
  throw new Error(`runs did not settle within 10 minutes (expected ${expectedOpen} suspended)`);
}

// Warm-up: a few runs through their whole life, so code is loaded and JIT-compiled before the baseline.
for (let i = 0; i < 20; i++) await client.start(parkedWorkflow, { id: i }, { id: `warm-${i}` });
await settled(20);
for (let i = 0; i < 20; i++) await client.getHandle(`warm-${i}`).signal(release, {});
await settled(0);
const baseline = await collect();

const t0 = performance.now();
const batch = 500;
for (let i = 0; i < runs; i += batch) {
  const n = Math.min(batch, runs - i);
  // Handles are dropped at once: only Spool's own memory should count.
  await Promise.all(
    Array.from({ length: n }, (_, k) =>
      client.start(parkedWorkflow, { id: i + k }, { id: `parked-${i + k}` }),
    ),
  );
}
await settled(runs);
const ms = performance.now() - t0;
const after = await collect();
const stats = worker.stats();

sendToParent({
  type: "result",
  baseline,
  after,
  ms,
  cachedRuns: stats.cachedRuns,
  evictions: stats.evictions,
});
await worker.shutdown();
await backend.close();
process.exit(0);
