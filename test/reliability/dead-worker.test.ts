// Guards against runs stalling for a whole lease after a worker dies: a worker process SIGKILLed while it holds an activity attempt with a five-minute lease is recognised as dead (SQLite: its process is gone; PostgreSQL: its heartbeat stops), its lease is released at once, and another worker process runs the next attempt long before the lease would have run out.
import type { HistoryEvent } from "@spool/core";
import { PostgresBackend } from "@spool/postgres";
import { type Backend, Client, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { closeAdmin, dropSchema, freshSchema, PG_URL } from "../postgres/pg-harness.ts";
import { hangFlow } from "./fixtures/workflows.ts";
import { cleanScratch, readEffects, scratch, spawnWorker, stop, waitFor } from "./harness.ts";

afterAll(async () => {
  cleanScratch();
  await closeAdmin();
});

/** The attempt timeout of the held activity: its lease is this plus a grace of 1 s. */
const FIVE_MINUTES = 300_000;

const backends: {
  name: string;
  open: (db: string) => { backend: Backend; env: Record<string, string>; done: () => Promise<void> };
}[] = [
  {
    name: "SQLite (one machine: the dead process is seen at once)",
    open: (db) => {
      const backend = new SqliteBackend({ path: db });
      return { backend, env: {}, done: () => backend.close() };
    },
  },
  {
    name: "PostgreSQL (the heartbeat stops: dead after 5 s on the database clock)",
    open: () => {
      const schema = freshSchema("dead");
      const backend = new PostgresBackend({ connectionString: PG_URL, schema, poolSize: 2 });
      return {
        backend,
        env: { SPOOL_PG_SCHEMA: schema, SPOOL_PG_URL: PG_URL },
        done: async () => {
          await backend.close();
          await dropSchema(schema);
        },
      };
    },
  },
];

describe("a worker process killed while it holds a long activity lease", () => {
  for (const b of backends) {
    it(`${b.name}: another worker takes the attempt over while the dead one's lease is still valid`, async () => {
      const { db, effects } = scratch();
      const { backend, env, done } = b.open(db);
      await backend.init();
      const client = new Client({ backend });
      const a = spawnWorker(db, effects, env);
      const other = spawnWorker(db, effects, env);
      try {
        await a.ready;
        await other.ready;
        // Attempt 1 never returns; every later attempt returns at once.
        const h = await client.start(
          hangFlow,
          { mode: "never", lateMs: 0, timeout: FIVE_MINUTES },
          { id: "held" },
        );
        // Waits are generous (a loaded machine starts processes slowly); none of them is asserted.
        await waitFor(
          () => readEffects(effects).some((l) => l.kind === "effect" && l.attempt === 1),
          60_000,
          "attempt 1 to start",
        );
        const first = readEffects(effects).find((l) => l.kind === "effect" && l.attempt === 1)!;
        const holder = first.pid === a.pid ? a : other;
        const taker = holder === a ? other : a;
        const killedAt = Date.now();
        holder.child.kill("SIGKILL");
        await holder.exit;

        // Without the registry this waits for the lease (5 min + 1 s): longer than this wait.
        expect(await h.result({ timeout: 120_000 })).toEqual({ value: "on-time", attempt: 2 });

        const events = (await h.history()) as HistoryEvent[];
        const scheduled = events.find((e) => e.type === "ActivityScheduled")!;
        const completed = events.find((e) => e.type === "ActivityCompleted") as HistoryEvent & {
          attempt: number;
        };
        expect(completed.attempt, "recorded once, by the second attempt").toBe(2);
        // Recorded (on the backend's clock) while attempt 1's lease — at least its timeout from the
        // schedule — was still valid.
        expect(completed.ts).toBeLessThan(scheduled.ts + FIVE_MINUTES);
        const lines = readEffects(effects);
        const second = lines.find((l) => l.kind === "effect" && l.attempt === 2)!;
        expect(second.pid, "run by the live worker").toBe(taker.pid);
        console.log(
          `[reliability] dead-worker ${b.name.split(" ")[0]}: takeover ${second.t! - killedAt} ms after SIGKILL ` +
            `(the lease had ${scheduled.ts + FIVE_MINUTES + 1_000 - second.t!} ms left; reported, not asserted)`,
        );
        expect(lines.filter((l) => l.kind === "effect").map((l) => l.attempt)).toEqual([1, 2]);
        const workers = await backend.inspect.workers();
        expect(workers.find((w) => w.pid === holder.pid)?.status).toBe("dead");
        expect(workers.find((w) => w.pid === taker.pid)?.status).toBe("live");
      } finally {
        for (const p of [a, other])
          if (p.child.exitCode === null && p.child.signalCode === null) await stop(p);
        await done();
      }
    }, 200_000);
  }
});
