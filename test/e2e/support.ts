/**
 * End-to-end fixtures: a real SQLite file in a temp dir, a real Worker and a Client in this
 * process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, SqliteBackend, silentLogger, Worker, type WorkerOptions } from "spool";

/** A worker and client on a fresh SQLite file. */
export interface E2E {
  backend: SqliteBackend;
  worker: Worker;
  client: Client;
  path: string;
  /** Starts another worker on the same file (a second process in spirit). */
  restartWorker(opts?: Partial<WorkerOptions>): Promise<Worker>;
  close(): Promise<void>;
}

export async function e2e(opts: Omit<WorkerOptions, "backend">): Promise<E2E> {
  const dir = mkdtempSync(join(tmpdir(), "spool-e2e-"));
  const path = join(dir, "spool.db");
  const backend = new SqliteBackend({ path, durability: "normal" });
  const make = (extra?: Partial<WorkerOptions>) =>
    new Worker({ logger: silentLogger, pollIntervalMs: { min: 5, max: 50 }, ...opts, ...extra, backend });
  let worker = make();
  await worker.start();
  const client = new Client({ backend, workflows: opts.workflows, queryResponders: [worker] });
  const env: E2E = {
    backend,
    get worker() {
      return worker;
    },
    client,
    path,
    async restartWorker(extra) {
      await worker.shutdown();
      worker = make(extra);
      await worker.start();
      return worker;
    },
    async close() {
      await worker.shutdown();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** Polls `cond` every 10 ms until it holds (a test helper, not a timing assertion). */
export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
