/**
 * A worker process for the multi-process scenarios: opens its own backend from the spec, runs a
 * Worker for bench.steps when the parent says "go", and shuts it down gracefully on "stop".
 *
 * Usage (forked by bench/lib/process-workers.ts): worker-process.ts <JSON { spec, settings }>
 */
import { silentLogger, Worker, type WorkerOptions } from "spool";
import { type BackendSpec, openBackend } from "../lib/backends.ts";
import { fromParent, sendToParent } from "../lib/child-process.ts";
import { noop, stepsWorkflow } from "../lib/workflows.ts";

const config = JSON.parse(process.argv[2] ?? "{}") as {
  spec: BackendSpec;
  settings: Omit<WorkerOptions, "backend" | "workflows" | "activities">;
};
// Listen before announcing readiness, so neither message can arrive unheard.
const go = fromParent("go");
const stop = fromParent("stop");

const backend = await openBackend(config.spec);
const worker = new Worker({
  logger: silentLogger,
  ...config.settings,
  backend,
  workflows: [stepsWorkflow],
  activities: [noop],
});
sendToParent({ type: "ready" });
await go;
await worker.start();
await stop;
await worker.shutdown();
sendToParent({ type: "stopped", stats: worker.stats() });
await backend.close();
process.exit(0);
