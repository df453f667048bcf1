/**
 * Throughput with real worker processes: the parent starts `count` workflows of `steps` steps
 * through a Client (before any worker runs), forks `processes` workers
 * (bench/children/worker-process.ts), tells them all to go at once, and polls the backend's run
 * counts until every run has closed. Figures are from "go" to the last run closing. With `warmup`,
 * each child first runs that many workflows on storage of its own (see worker-process.ts), so the
 * figures measure warm processes rather than V8 compiling the same code once per process.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, type WorkerOptions } from "spool";
import { type BackendSpec, openBackend } from "./backends.ts";
import { type Child, repoRoot, startChild } from "./child-process.ts";
import { stepsWorkflow } from "./workflows.ts";

const workerScript = join(repoRoot, "bench", "children", "worker-process.ts");

/** What one measurement gives. */
export interface ProcessRunResult {
  ms: number;
  statuses: Record<string, number>;
}

/** Runs one measurement; the storage named by `spec` must be empty and is left for the caller to remove. */
export async function measureWithProcesses(opts: {
  spec: BackendSpec;
  processes: number;
  count: number;
  steps: number;
  settings: Omit<WorkerOptions, "backend" | "workflows" | "activities">;
  /** Workflows each child runs on its own storage before "ready" (default 0: measured cold). */
  warmup?: number;
  timeoutMs?: number;
}): Promise<ProcessRunResult> {
  const backend = await openBackend(opts.spec);
  const children: Child[] = [];
  try {
    const client = new Client({ backend });
    for (let i = 0; i < opts.count; i += 250) {
      const n = Math.min(250, opts.count - i);
      await Promise.all(
        Array.from({ length: n }, (_, k) =>
          client.start(stepsWorkflow, { steps: opts.steps }, { id: `proc-${i + k}` }),
        ),
      );
    }
    const arg = JSON.stringify({ spec: opts.spec, settings: opts.settings, warmup: opts.warmup ?? 0 });
    for (let p = 0; p < opts.processes; p++) children.push(startChild(workerScript, [arg]));
    await Promise.all(children.map((c) => c.next("ready", 120_000)));

    const t0 = performance.now();
    for (const c of children) c.send({ type: "go" });
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    let statuses: Record<string, number> = {};
    for (;;) {
      statuses = (await backend.inspect.stats()).runsByStatus as Record<string, number>;
      const closed = (statuses.completed ?? 0) + (statuses.failed ?? 0) + (statuses.cancelled ?? 0);
      if (closed >= opts.count) break;
      if (Date.now() > deadline) {
        throw new Error(`only ${closed} of ${opts.count} runs closed within ${opts.timeoutMs ?? 600_000} ms`);
      }
      await sleep(10);
    }
    const ms = performance.now() - t0;
    for (const c of children) c.send({ type: "stop" });
    await Promise.all(children.map((c) => c.next("stopped", 60_000).then(() => c.exited)));
    return { ms, statuses };
  } finally {
    for (const c of children) c.kill();
    await backend.close();
  }
}
