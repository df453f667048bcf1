/**
 * A worker process for the multi-process scenarios: opens its own backend from the spec, runs a
 * Worker for bench.steps when the parent says "go", and shuts it down gracefully on "stop".
 *
 * With `warmup` > 0 it first runs that many workflows to completion on private storage of its own
 * (a schema or a file next to the spec's, removed afterwards), before announcing readiness. A
 * freshly forked process runs its hot paths unoptimised until V8 has compiled them; measured from
 * cold, N processes pay that warm-up N times inside a few seconds of measurement, which charges
 * more processes for JIT compilation rather than for the backend.
 *
 * Usage (forked by bench/lib/process-workers.ts): worker-process.ts <JSON { spec, settings, warmup? }>
 */
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { Client, silentLogger, Worker, type WorkerOptions } from "spool";
import { type BackendSpec, openBackend } from "../lib/backends.ts";
import { fromParent, sendToParent } from "../lib/child-process.ts";
import { noop, stepsWorkflow } from "../lib/workflows.ts";

const config = JSON.parse(process.argv[2] ?? "{}") as {
  spec: BackendSpec;
  settings: Omit<WorkerOptions, "backend" | "workflows" | "activities">;
  warmup?: number;
};
// Listen before announcing readiness, so neither message can arrive unheard.
const go = fromParent("go");
const stop = fromParent("stop");

/** The worker this process runs, with the scenario's settings. */
function benchWorker(backend: Awaited<ReturnType<typeof openBackend>>): Worker {
  return new Worker({
    logger: silentLogger,
    ...config.settings,
    backend,
    workflows: [stepsWorkflow],
    activities: [noop],
  });
}

/** Runs `count` ten-step workflows on storage of this process's own, then removes it. */
async function warmUp(spec: BackendSpec, count: number): Promise<void> {
  const own: BackendSpec =
    spec.kind === "postgres"
      ? { ...spec, schema: `${spec.schema}_w${process.pid}` }
      : { ...spec, path: `${spec.path}.warm-${process.pid}` };
  try {
    const backend = await openBackend(own);
    const worker = benchWorker(backend);
    const client = new Client({ backend });
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        client.start(stepsWorkflow, { steps: 10 }, { id: `warm-${i}` }),
      ),
    );
    await worker.start();
    for (;;) {
      const statuses = (await backend.inspect.stats()).runsByStatus as Record<string, number>;
      if ((statuses.completed ?? 0) + (statuses.failed ?? 0) >= count) break;
      await sleep(10);
    }
    await worker.shutdown();
    await backend.close();
  } finally {
    if (own.kind === "postgres") {
      const admin = new pg.Client({ connectionString: own.url });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${own.schema}" CASCADE`).finally(() => admin.end());
    } else {
      for (const suffix of ["", "-wal", "-shm"]) rmSync(own.path + suffix, { force: true });
    }
  }
}

if ((config.warmup ?? 0) > 0) await warmUp(config.spec, config.warmup ?? 0);
const backend = await openBackend(config.spec);
const worker = benchWorker(backend);
sendToParent({ type: "ready" });
await go;
await worker.start();
await stop;
await worker.shutdown();
sendToParent({ type: "stopped", stats: worker.stats() });
await backend.close();
process.exit(0);
