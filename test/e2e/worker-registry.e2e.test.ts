// Guards against runs waiting in silence for a name no live worker hosts (and against false alarms for names another live worker hosts): the warning comes from the worker registry, on SQLite and PostgreSQL.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostgresBackend } from "@spool/postgres";
import {
  type Backend,
  Client,
  defineWorkflow,
  type Logger,
  SqliteBackend,
  silentLogger,
  Worker,
} from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { closeAdmin, dropSchema, freshSchema, PG_URL } from "../postgres/pg-harness.ts";

function capture(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const noop = () => undefined;
  return { warnings, logger: { debug: noop, info: noop, error: noop, warn: (m) => warnings.push(m) } };
}

afterAll(closeAdmin);

const hostedHere = defineWorkflow(
  { name: "registry.here", input: z.object({}), output: z.string() },
  async function* () {
    return "here";
  },
);
const hostedElsewhere = defineWorkflow(
  { name: "registry.elsewhere", input: z.object({}), output: z.string() },
  async function* () {
    return "elsewhere";
  },
);

const stores: { name: string; open: () => Promise<{ backend: Backend; close: () => Promise<void> }> }[] = [
  {
    name: "SQLite",
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), "spool-registry-"));
      const backend = new SqliteBackend({ path: join(dir, "spool.db"), durability: "normal" });
      return {
        backend,
        close: async () => {
          await backend.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "PostgreSQL",
    open: async () => {
      const schema = freshSchema("reg");
      const backend = new PostgresBackend({ connectionString: PG_URL, schema, poolSize: 3 });
      return {
        backend,
        close: async () => {
          await backend.close();
          await dropSchema(schema);
        },
      };
    },
  },
];

describe("warnings about work no live worker hosts", () => {
  for (const store of stores) {
    it(`${store.name}: work another live worker hosts is not reported; once that worker stops, it is`, async () => {
      const { backend, close } = await store.open();
      const { logger, warnings } = capture();
      const here = new Worker({
        backend,
        workflows: [hostedHere],
        logger,
        unknownWorkCheck: { intervalMs: 600_000, minAgeMs: 0 },
      });
      // Registered, but it never claims: its workflow stays waiting, hosted by a live worker.
      const elsewhere = new Worker({
        backend,
        workflows: [hostedElsewhere],
        logger: silentLogger,
        // It must not run the run it hosts before the check: it claims nothing (no free slot).
        maxConcurrentWorkflowTasks: 0,
      });
      try {
        await here.start();
        await elsewhere.start();
        const client = new Client({ backend });
        await client.start(hostedElsewhere, {}, { id: "waits" });
        expect(await here.reportUnknownWork(), "hosted by a live worker: not reported").toEqual([]);
        expect(warnings).toEqual([]);
        const listed = await backend.inspect.workers();
        expect(
          listed
            .filter((w) => w.status === "live")
            .flatMap((w) => w.workflowNames)
            .sort(),
        ).toEqual(["registry.elsewhere", "registry.here"]);

        await elsewhere.shutdown();
        expect(await here.reportUnknownWork()).toEqual([
          { kind: "workflow", name: "registry.elsewhere", count: 1 },
        ]);
        expect(warnings.join("\n")).toMatch(/no live worker hosts workflow "registry.elsewhere"/);
      } finally {
        await here.shutdown();
        await elsewhere.shutdown();
        await close();
      }
    }, 30_000);
  }
});
