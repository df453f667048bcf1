/**
 * End-to-end fixtures: a real Worker and a Client in this process on a real store — a SQLite file
 * in a temp dir, SQLite in memory, or a fresh PostgreSQL schema. Suites that must hold on every
 * backend run once per store: `describe.each(STORES)` with `e2eOn(store, ...)`; `e2e()` is the
 * SQLite file, for suites that reach into the file itself.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Backend, Client, SqliteBackend, silentLogger, Worker, type WorkerOptions } from "spool";
import { afterAll } from "vitest";
import { closeAdmin, openPg } from "../postgres/pg-harness.ts";

/** The stores the end-to-end suites run on. */
export type StoreKind = "sqlite-file" | "sqlite-memory" | "postgres";
export const STORES: readonly StoreKind[] = ["sqlite-file", "sqlite-memory", "postgres"];

/**
 * `[kind, open]` pairs for `describe.each`: each `open()` gives a fresh, initialised store as
 * `{ backend, teardown }`.
 */
export function storeCases(
  kinds: readonly StoreKind[] = STORES,
): [StoreKind, () => Promise<{ backend: Backend; teardown: () => Promise<void> }>][] {
  return kinds.map((kind) => [
    kind,
    async () => {
      const s = await openStore(kind);
      return { backend: s.backend, teardown: () => s.close() };
    },
  ]);
}

/** Ends the shared PostgreSQL admin pool after a file's suites (register once per file). */
export function closeStoresAfterAll(): void {
  afterAll(closeAdmin);
}

/** A worker and client on a fresh store. */
export interface AnyE2E {
  backend: Backend;
  worker: Worker;
  client: Client;
  /** The store this environment runs on. */
  store: StoreKind;
  /** Starts another worker on the same store (a second process in spirit). */
  restartWorker(opts?: Partial<WorkerOptions>): Promise<Worker>;
  close(): Promise<void>;
}

/** A worker and client on a fresh SQLite file (for tests that reach into the file itself). */
export interface E2E extends AnyE2E {
  backend: SqliteBackend;
  path: string;
}

/** Opens a fresh store of the given kind (no worker). */
export async function openStore(
  store: StoreKind,
): Promise<{ backend: Backend; path?: string; close(): Promise<void> }> {
  if (store === "postgres") {
    const h = openPg();
    await h.backend.init();
    return { backend: h.backend, close: h.teardown };
  }
  if (store === "sqlite-memory") {
    const backend = new SqliteBackend({ path: ":memory:" });
    return { backend, close: () => backend.close() };
  }
  const dir = mkdtempSync(join(tmpdir(), "spool-e2e-"));
  const path = join(dir, "spool.db");
  const backend = new SqliteBackend({ path, durability: "normal" });
  return {
    backend,
    path,
    close: async () => {
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A worker and client on a fresh SQLite file. */
export async function e2e(opts: Omit<WorkerOptions, "backend">): Promise<E2E> {
  const env = await e2eOn("sqlite-file", opts);
  return env as E2E;
}

/** A worker and client on a fresh store of the given kind. */
export async function e2eOn(store: StoreKind, opts: Omit<WorkerOptions, "backend">): Promise<AnyE2E> {
  const s = await openStore(store);
  const make = (extra?: Partial<WorkerOptions>) =>
    new Worker({
      logger: silentLogger,
      pollIntervalMs: { min: 5, max: 50 },
      ...opts,
      ...extra,
      backend: s.backend,
    });
  let worker = make();
  await worker.start();
  const client = new Client({ backend: s.backend, workflows: opts.workflows, queryResponders: [worker] });
  return {
    backend: s.backend,
    get worker() {
      return worker;
    },
    client,
    store,
    ...(s.path !== undefined ? { path: s.path } : {}),
    async restartWorker(extra) {
      await worker.shutdown();
      worker = make(extra);
      await worker.start();
      return worker;
    },
    async close() {
      await worker.shutdown();
      await s.close();
    },
  };
}

/** Polls `cond` every 10 ms until it holds (a test helper, not a timing assertion). */
export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
