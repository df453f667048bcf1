/**
 * A Spool stack for one round of an in-process scenario: a fresh SQLite file in os.tmpdir(), a
 * SqliteBackend at the round's durability, a started Worker and a Client. Completion is observed
 * through one subscription to the backend's run-closed notifications, so watching 1,000 runs
 * costs one listener, not 1,000 polling `handle.result()` calls.
 */
import {
  Client,
  SqliteBackend,
  type SqliteBackendOptions,
  silentLogger,
  Worker,
  type WorkerOptions,
} from "spool";
import type { Durability } from "./scenario.ts";
import { type TempDb, tempDb } from "./temp-db.ts";

/** A running stack; `close()` stops the worker, closes the database and removes the file. */
export interface BenchEnv {
  backend: SqliteBackend;
  worker: Worker;
  client: Client;
  db: TempDb;
  /** Runs closed (completed, failed, cancelled) since the stack was opened. */
  readonly closedRuns: number;
  /** Resolves once `count` runs have closed since the stack was opened; rejects after `timeoutMs`. */
  waitClosed(count: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens a stack with these worker options (logger silent unless given) and backend extras. */
export async function openBenchEnv(
  label: string,
  durability: Durability,
  workerOptions: Omit<WorkerOptions, "backend">,
  backendOptions: Pick<SqliteBackendOptions, "faultHook"> = {},
): Promise<BenchEnv> {
  const db = tempDb(label);
  const backend = new SqliteBackend({ ...backendOptions, path: db.path, durability });
  const worker = new Worker({ logger: silentLogger, ...workerOptions, backend });
  const client = new Client({ backend });
  let closed = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const unsubscribe = backend.subscribe((n) => {
    if (n.kind !== "run-closed") return;
    closed++;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (closed >= (waiters[i] as { count: number }).count) waiters.splice(i, 1)[0]?.resolve();
    }
  });
  await worker.start();
  return {
    backend,
    worker,
    client,
    db,
    get closedRuns() {
      return closed;
    },
    waitClosed(count, timeoutMs) {
      if (closed >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`only ${closed} of ${count} runs closed within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    async close() {
      unsubscribe();
      await worker.shutdown();
      await backend.close();
      db.remove();
    },
  };
}
