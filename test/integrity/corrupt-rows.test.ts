// Guards against a damaged row outside history handing out a wrong value: a flipped byte in a run's stored result (9 read back as -10), its status or an activity task's input is detected by checksum on SQLite and PostgreSQL; reads fail with RowCorruptError naming the run and the row (never suggesting `spool terminate` for a finished run), and `spool doctor` finds the damage.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "@spool/cli";
import { PostgresBackend } from "@spool/postgres";
import { runChecksum } from "@spool/sql-store";
import Database from "better-sqlite3";
import {
  type Backend,
  Client,
  defineActivity,
  defineWorkflow,
  HistoryCorruptError,
  RowCorruptError,
  SqliteBackend,
  silentLogger,
  Worker,
  WorkflowFailedError,
} from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { adminPool, closeAdmin, dropSchema, freshSchema, PG_URL } from "../postgres/pg-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "spool-corrupt-rows-"));
let files = 0;
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await closeAdmin();
});

const nine = defineActivity({ name: "rows.nine", input: z.object({}), output: z.number() }, async () => 9);
const neverRun = defineActivity(
  { name: "rows.never", input: z.object({ n: z.number() }), output: z.number() },
  async ({ n }) => n,
);
const returnsNine = defineWorkflow(
  { name: "rows.returns-nine", input: z.object({}), output: z.number() },
  async function* () {
    return yield* nine({});
  },
);
const waitsOnActivity = defineWorkflow(
  { name: "rows.waits", input: z.object({}), output: z.number() },
  async function* () {
    return yield* neverRun({ n: 5 });
  },
);

/** One store under test: how to open it, and SQL on a connection of its own (another process, in effect). */
interface Store {
  open(): Backend;
  /** `?` placeholders, numbered for PostgreSQL. */
  sql(text: string, values?: unknown[]): Promise<Record<string, unknown>[]>;
  cli: string[];
  close(): Promise<void>;
}

function sqliteStore(): Store {
  const path = join(dir, `rows-${++files}.db`);
  return {
    open: () => new SqliteBackend({ path }),
    async sql(text, values = []) {
      const raw = new Database(path);
      try {
        const stmt = raw.prepare(text);
        if (stmt.reader) return stmt.all(...values) as Record<string, unknown>[];
        stmt.run(...values);
        return [];
      } finally {
        raw.close();
      }
    },
    cli: ["--db", path],
    close: async () => undefined,
  };
}

function postgresStore(): Store {
  const schema = freshSchema("rows");
  return {
    open: () => new PostgresBackend({ connectionString: PG_URL, schema, poolSize: 3 }),
    async sql(text, values = []) {
      let i = 0;
      const numbered = text
        .replace(/\?/g, () => `$${++i}`)
        .replace(/\b(runs|activity_tasks|history)\b/g, `"${schema}".$1`);
      return (await adminPool().query(numbered, values)).rows;
    },
    cli: ["--pg", PG_URL, "--schema", schema],
    close: () => dropSchema(schema),
  };
}

/** A byte string with every bit of byte `index` flipped. */
function flipped(blob: Uint8Array, index: number): Buffer {
  const b = Buffer.from(blob);
  b[index] = (b[index] ?? 0) ^ 0xff;
  return b;
}

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to reject");
}

describe.each([
  ["SQLite file", sqliteStore],
  ["PostgreSQL", postgresStore],
] as const)("damaged rows outside history (%s)", (_name, makeStore) => {
  /** A store holding a run of returnsNine that completed with 9. */
  async function completedNine() {
    const store = makeStore();
    const backend = store.open();
    const worker = new Worker({
      backend,
      workflows: [returnsNine],
      activities: [nine],
      logger: silentLogger,
    });
    await worker.start();
    const client = new Client({ backend });
    const handle = await client.start(returnsNine, {}, { id: "nine" });
    expect(await handle.result({ timeout: 30_000 })).toBe(9);
    await worker.shutdown();
    return { store, backend, client, runId: handle.runId! };
  }

  it("a flipped byte in a completed run's result is RowCorruptError naming the run, not -10", async () => {
    const { store, backend, client, runId } = await completedNine();
    try {
      const [row] = await store.sql("SELECT result FROM runs WHERE run_id = ?", [runId]);
      const result = row!.result as Uint8Array;
      expect([...result]).toEqual([9]); // msgpack fixint 9; every bit flipped it reads -10
      await store.sql("UPDATE runs SET result = ? WHERE run_id = ?", [flipped(result, 0), runId]);

      const err = await rejection(client.getHandle("nine").result({ timeout: 5000 }));
      expect(err).toBeInstanceOf(RowCorruptError);
      expect(HistoryCorruptError.is(err)).toBe(true);
      expect((err as RowCorruptError).runId).toBe(runId);
      expect((err as RowCorruptError).table).toBe("runs");
      expect((err as Error).message).toMatch(
        new RegExp(`record of run ${runId} .*\\(table runs\\) is corrupt`),
      );
      expect((err as Error).message).toMatch(/checksum mismatch/);
      expect((err as Error).message).toMatch(/nothing to terminate/);
      expect((err as Error).message).not.toMatch(/spool terminate/);
      expect(await rejection(backend.inspect.getRun(runId))).toBeInstanceOf(RowCorruptError);

      const doctor = await cli("doctor", ...store.cli);
      expect(doctor.code).toBe(1);
      expect(doctor.out).toMatch(new RegExp(`DAMAGED runs run ${runId} record: checksum mismatch`));
      expect(doctor.out).toMatch(new RegExp(`run ${runId} \\(completed; runs\\): the run has ended`));
      expect(doctor.out).not.toMatch(/spool terminate/);
      const json = JSON.parse((await cli("doctor", ...store.cli, "--json")).out);
      expect(json.healthy).toBe(false);
      expect(json.problems).toEqual([
        { table: "runs", runId, row: "record", reason: expect.stringMatching(/checksum mismatch/) },
      ]);
    } finally {
      await backend.close();
      await store.close();
    }
  });

  it("a status rewritten behind the backend's back is detected", async () => {
    const { store, backend, runId } = await completedNine();
    try {
      await store.sql("UPDATE runs SET status = 'failed' WHERE run_id = ?", [runId]);
      const err = await rejection(backend.inspect.getLatestRun("nine"));
      expect(err).toBeInstanceOf(RowCorruptError);
      expect((err as Error).message).toMatch(/unverified, is "failed"/);
    } finally {
      await backend.close();
      await store.close();
    }
  });

  it("a result rewritten with a valid checksum still fails the cross-check with WorkflowCompleted", async () => {
    const { store, backend, client, runId } = await completedNine();
    try {
      const forged = Buffer.from([8]);
      await store.sql("UPDATE runs SET result = ?, crc = ? WHERE run_id = ?", [
        forged,
        runChecksum(runId, "completed", forged, null),
        runId,
      ]);
      const err = await rejection(client.getHandle("nine").result({ timeout: 5000 }));
      expect(err).toBeInstanceOf(RowCorruptError);
      expect((err as Error).message).toMatch(
        /differs from the one recorded by WorkflowCompleted \(event #\d+\)/,
      );
    } finally {
      await backend.close();
      await store.close();
    }
  });

  it("a flipped byte in an activity task's input is caught at the claim: doctor names it, and the step fails without running", async () => {
    const store = makeStore();
    const backend = store.open();
    try {
      // A worker without the activity: the task waits, unclaimed, in the store.
      const worker = new Worker({ backend, workflows: [waitsOnActivity], logger: silentLogger });
      await worker.start();
      const client = new Client({ backend });
      const handle = await client.start(waitsOnActivity, {}, { id: "waits" });
      let tasks: Record<string, unknown>[] = [];
      for (let i = 0; i < 1000 && tasks.length === 0; i++) {
        tasks = await store.sql("SELECT task_id, input FROM activity_tasks");
        if (tasks.length === 0) await new Promise((r) => setTimeout(r, 20));
      }
      await worker.shutdown();
      const task = tasks[0]!;
      const input = task.input as Uint8Array;
      await store.sql("UPDATE activity_tasks SET input = ? WHERE task_id = ?", [
        flipped(input, input.length - 1),
        task.task_id,
      ]);

      const doctor = await cli("doctor", ...store.cli);
      expect(doctor.code).toBe(1);
      expect(doctor.out).toMatch(
        /DAMAGED activity_tasks run \S+ task \S+ \(step 1, "rows\.never"\): checksum mismatch/,
      );
      expect(doctor.out).toMatch(/\(running; activity_tasks\): .*spool terminate/);

      // A worker with the activity claims the task, sees the damage and fails the step for good
      // without running the activity: the run moves on (here it fails), nothing waits for ever.
      let ran = 0;
      const counting = defineActivity(
        { name: "rows.never", input: z.object({ n: z.number() }), output: z.number() },
        async ({ n }) => {
          ran++;
          return n;
        },
      );
      const fixer = new Worker({
        backend,
        workflows: [waitsOnActivity],
        activities: [counting],
        logger: silentLogger,
      });
      await fixer.start();
      try {
        const err = await rejection(handle.result({ timeout: 20_000 }));
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const failed = (await handle.history()).find((e) => e.type === "ActivityFailed");
        expect(failed).toMatchObject({ type: "ActivityFailed", step: 1, attempt: 1, reason: "validation" });
        const cause = (failed as { error: { name: string; message: string } }).error;
        expect(cause.name).toBe("RowCorruptError");
        expect(cause.message).toMatch(
          new RegExp(`activity task ${task.task_id} \\(run ${handle.runId}, step 1, "rows\\.never"\\)`),
        );
        expect(ran).toBe(0);
      } finally {
        await fixer.shutdown();
      }
    } finally {
      await backend.close();
      await store.close();
    }
  });

  it("a corrupt history row of a completed run does not send the reader to `spool terminate`", async () => {
    const { store, backend, client, runId } = await completedNine();
    try {
      const [row] = await store.sql("SELECT body FROM history WHERE run_id = ? AND seq = 2", [runId]);
      const body = row!.body as Uint8Array;
      await store.sql("UPDATE history SET body = ? WHERE run_id = ? AND seq = 2", [
        flipped(body, body.length - 1),
        runId,
      ]);
      for (const err of [
        await rejection(client.getHandle("nine").history()),
        await rejection(backend.getHistory(runId)),
      ]) {
        expect(err).toBeInstanceOf(HistoryCorruptError);
        expect((err as Error).message).toMatch(/corrupt at event #2: checksum mismatch/);
        expect((err as Error).message).toMatch(/has ended \(completed\), so there is nothing to terminate/);
        expect((err as Error).message).not.toMatch(/spool terminate/);
      }
      const history = await cli("history", "nine", ...store.cli);
      expect(history.code).toBe(1);
      expect(history.err).not.toMatch(/spool terminate/);
      const doctor = await cli("doctor", ...store.cli);
      expect(doctor.out).toMatch(new RegExp(`DAMAGED history run ${runId} event #2: checksum mismatch`));
    } finally {
      await backend.close();
      await store.close();
    }
  });

  it("an open run whose record is damaged is parked by the worker, and then `spool terminate` ends it", async () => {
    const store = makeStore();
    const backend = store.open();
    try {
      const client = new Client({ backend });
      const handle = await client.start(waitsOnActivity, {}, { id: "parked" });
      // Damaged before any worker ran it: its stored status no longer matches the checksum.
      await store.sql("UPDATE runs SET status = 'blocked' WHERE run_id = ?", [handle.runId]);
      expect(await rejection(handle.describe())).toBeInstanceOf(RowCorruptError);
      const worker = new Worker({ backend, workflows: [waitsOnActivity], logger: silentLogger });
      await worker.start();
      let described: Awaited<ReturnType<typeof handle.describe>> | undefined;
      for (let i = 0; i < 1500; i++) {
        described = await handle.describe().catch(() => undefined);
        if (described?.blockedReason) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await worker.shutdown();
      expect(described?.status).toBe("blocked");
      expect(described?.blockedReason).toMatch(/RowCorruptError|record of run .* is corrupt/);
      const terminated = await cli("terminate", "parked", ...store.cli, "--reason", "damaged record");
      expect(terminated.err).toBe("");
      expect(terminated.code).toBe(0);
      expect((await handle.describe()).status).toBe("cancelled");
    } finally {
      await backend.close();
      await store.close();
    }
  });

  it("doctor reports a sound store as healthy (exit 0)", async () => {
    const { store, backend } = await completedNine();
    try {
      const doctor = await cli("doctor", ...store.cli);
      expect(doctor.err).toBe("");
      expect(doctor.code).toBe(0);
      if (store.cli[0] === "--db") expect(doctor.out).toMatch(/PRAGMA quick_check: ok/);
      expect(doctor.out).toMatch(
        /checksums: 1 runs, \d+ history events, 0 inbox events, 0 activity tasks checked; all sound/,
      );
      expect(doctor.out).toMatch(/healthy: nothing to do/);
    } finally {
      await backend.close();
      await store.close();
    }
  });
});
