// Guards two promises a real Worker and Client keep on SQLite and PostgreSQL: a start with an existing id and a different input is refused (not silently answered with the old run, even a completed one), and a flood of signals a workflow never waits for is refused at the sender (SignalBufferFullError) instead of failing the run at the history limit.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostgresBackend } from "@spool/postgres";
import {
  type Backend,
  Client,
  defineActivity,
  defineSignal,
  defineWorkflow,
  SignalBufferFullError,
  SqliteBackend,
  silentLogger,
  Worker,
  WorkflowAlreadyStartedError,
} from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { closeAdmin, dropSchema, freshSchema, PG_URL } from "../postgres/pg-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "spool-e2e-conflicts-"));
let files = 0;
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await closeAdmin();
});

const CAP = 5;

const double = defineWorkflow(
  { name: "conflicts.double", input: z.object({ n: z.number() }), output: z.number() },
  async function* (input) {
    return input.n * 2;
  },
);

/** Released by the test: holds the flooded run open while signals arrive (whenever the attempt starts). */
let released = false;
const waiting: (() => void)[] = [];
const releaseGate = () => {
  released = true;
  for (const w of waiting.splice(0)) w();
};
const gate = defineActivity({ name: "conflicts.gate", input: z.object({}), output: z.string() }, async () => {
  if (!released) await new Promise<void>((resolve) => waiting.push(resolve));
  return "released";
});
const noise = defineSignal("conflicts.noise", z.object({ i: z.number() }));
/** Declares a signal it never waits for. */
const deaf = defineWorkflow(
  { name: "conflicts.deaf", input: z.object({}), output: z.string(), signals: [noise] },
  async function* () {
    return yield* gate({});
  },
);

const stores = [
  [
    "SQLite file",
    () => {
      const backend = new SqliteBackend({ path: join(dir, `e2e-${++files}.db`), maxBufferedSignals: CAP });
      return { backend: backend as Backend, drop: async () => undefined };
    },
  ],
  [
    "PostgreSQL",
    () => {
      const schema = freshSchema("e2ecap");
      const backend = new PostgresBackend({
        connectionString: PG_URL,
        schema,
        poolSize: 4,
        maxBufferedSignals: CAP,
      });
      return { backend: backend as Backend, drop: () => dropSchema(schema) };
    },
  ],
] as const;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to reject");
}

describe.each(stores)("%s", (_name, makeStore) => {
  async function env() {
    const { backend, drop } = makeStore();
    const worker = new Worker({
      backend,
      workflows: [double, deaf],
      activities: [gate],
      logger: silentLogger,
      pollIntervalMs: { min: 5, max: 50 },
    });
    await worker.start();
    const client = new Client({ backend });
    return {
      client,
      backend,
      close: async () => {
        releaseGate();
        await worker.shutdown();
        await backend.close();
        await drop();
      },
    };
  }

  it("a start with the id of a completed run and a different input is WorkflowAlreadyStartedError", async () => {
    const { client, close } = await env();
    try {
      const first = await client.start(double, { n: 2 }, { id: "order-7" });
      expect(await first.result({ timeout: 30_000 })).toBe(4);
      // The same input: the idempotent start still attaches to the completed run.
      const same = await client.start(double, { n: 2 }, { id: "order-7" });
      expect(same.runId).toBe(first.runId);
      expect(await same.result({ timeout: 30_000 })).toBe(4);

      // Before the fix this returned the old run, whose result (4) answers a question not asked.
      const err = await rejection(client.start(double, { n: 3 }, { id: "order-7" }));
      expect(err).toBeInstanceOf(WorkflowAlreadyStartedError);
      expect((err as Error).message).toMatch(
        new RegExp(
          `"order-7" already has run ${first.runId} \\(status completed\\), started with a different input`,
        ),
      );

      const existing = await client.start(double, { n: 3 }, { id: "order-7", onConflict: "useExisting" });
      expect(existing.runId).toBe(first.runId);
      const fresh = await client.start(double, { n: 3 }, { id: "order-7", onConflict: "startNewIfClosed" });
      expect(fresh.runId).not.toBe(first.runId);
      expect(await fresh.result({ timeout: 30_000 })).toBe(6);
    } finally {
      await close();
    }
  });

  it("signals over the cap are refused at the sender; the run completes normally with the ones it took", async () => {
    const { client, backend, close } = await env();
    released = false;
    try {
      const handle = await client.start(deaf, {}, { id: "deaf-1" });
      for (let i = 0; i < CAP; i++) await handle.signal(noise, { i });
      const err = await rejection(handle.signal(noise, { i: CAP }));
      expect(err).toBeInstanceOf(SignalBufferFullError);
      expect(err).toMatchObject({ workflowId: "deaf-1", runId: handle.runId, waiting: CAP, limit: CAP });
      expect((err as Error).message).toMatch(/Nothing was delivered and the run is unaffected/);
      // signalWithStart meets the same cap.
      expect(
        await rejection(
          client.signalWithStart(deaf, {}, { id: "deaf-1", signal: noise, payload: { i: 99 } }),
        ),
      ).toBeInstanceOf(SignalBufferFullError);

      releaseGate();
      expect(await handle.result({ timeout: 30_000 })).toBe("released");
      const history = await handle.history();
      const received = history.filter((e) => e.type === "SignalReceived");
      expect(received.map((e) => (e as { payload: { i: number } }).payload.i)).toEqual([0, 1, 2, 3, 4]);
      expect(history.at(-1)?.type).toBe("WorkflowCompleted");
      expect((await backend.inspect.getRun(handle.runId!))?.status).toBe("completed");
      // Nothing stored was damaged on the way.
      const integrity = await backend.checkIntegrity!();
      expect(integrity.problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
