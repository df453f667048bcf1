import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, defineActivity, defineWorkflow, SqliteBackend, silentLogger, Worker } from "spool";
import { z } from "zod";

const noop = defineActivity(
  {
    name: "bench.noop",
    input: z.object({ i: z.number() }),
    output: z.object({ ok: z.boolean(), i: z.number() }),
  },
  async ({ i }) => ({ ok: true, i }),
);
const wf = defineWorkflow(
  { name: "bench.ten", input: z.object({ steps: z.number() }), output: z.number() },
  async function* (input) {
    let s = 0;
    for (let i = 0; i < input.steps; i++) s += (yield* noop({ i })).i;
    return s;
  },
);
const durability = (process.argv[2] ?? "full") as "full" | "normal";
const N = Number(process.argv[3] ?? 1000);
const dir = mkdtempSync(join(tmpdir(), "spool-bench-"));
const backend = new SqliteBackend({ path: join(dir, "b.db"), durability });
const worker = new Worker({
  backend,
  workflows: [wf],
  activities: [noop],
  logger: silentLogger,
  maxConcurrentWorkflowTasks: Number(process.argv[4] ?? 10),
  maxConcurrentActivities: Number(process.argv[5] ?? 100),
  maxCachedRuns: 2000,
});
const client = new Client({ backend });
let closed = 0;
let done!: () => void;
const all = new Promise<void>((r) => (done = r));
backend.subscribe((n) => {
  if (n.kind === "run-closed" && ++closed === N) done();
});
const t0 = performance.now();
for (let i = 0; i < N; i++) await client.start(wf, { steps: 10 }, { id: `w-${i}` });
const t1 = performance.now();
await worker.start();
await all;
const t2 = performance.now();
console.log(
  durability,
  "start ms",
  (t1 - t0).toFixed(0),
  "run ms",
  (t2 - t1).toFixed(0),
  "wf/s",
  ((N / (t2 - t1)) * 1000).toFixed(0),
  "steps/s",
  (((N * 10) / (t2 - t1)) * 1000).toFixed(0),
);
await worker.shutdown();
await backend.close();
rmSync(dir, { recursive: true });
