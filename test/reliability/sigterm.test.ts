// Guards against a graceful shutdown (SIGTERM) losing or stranding work: in-flight activities finish within the grace period and are recorded, nothing new starts while draining, one that outlasts the grace is handed back, and no task is left claimed after the process exits.
import { Client, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { slowFlow, slowSeqFlow } from "./fixtures/workflows.ts";
import {
  cleanScratch,
  expectIntact,
  leasedRows,
  readEffects,
  scratch,
  spawnWorker,
  stop,
  waitFor,
} from "./harness.ts";

afterAll(cleanScratch);

const started = (effects: string, pid: number) =>
  readEffects(effects).filter((l) => l.kind === "effect" && l.pid === pid);

describe("SIGTERM", () => {
  it("in-flight activities finish within the grace period and are recorded; nothing is left claimed", async () => {
    const { db, effects } = scratch();
    const backend = new SqliteBackend({ path: db });
    const client = new Client({ backend });
    try {
      const w = spawnWorker(db, effects, { SPOOL_GRACE_MS: "5000" });
      const h = await client.start(
        slowFlow,
        { count: 4, ms: 600, heartbeat: false, heartbeatTimeout: 0 },
        { id: "drain" },
      );
      const seq = await client.start(slowSeqFlow, { count: 3, ms: 600 }, { id: "drain-seq" });
      await waitFor(() => started(effects, w.pid).length >= 5, 10_000, "five attempts running");
      const exit = await stop(w, 20_000);
      expect(exit.code).toBe(0);
      const lines = readEffects(effects);
      const exitAt = lines.find((l) => l.kind === "exit" && l.pid === w.pid)!.t!;
      const ends = lines.filter((l) => l.kind === "end" && l.pid === w.pid);
      expect(ends.length, "every attempt running at SIGTERM ran to its end").toBe(5);
      expect(ends.every((l) => l.t! <= exitAt)).toBe(true);
      // Draining starts nothing new: the sequential run's next step was not started by this process.
      expect(started(effects, w.pid).length, "no attempt started after SIGTERM").toBe(5);
      expect(leasedRows(db), "nothing left claimed").toEqual({ workflow: 0, activity: 0 });
      // Every finished attempt's outcome is recorded: in history, or in the run's inbox for the next activation.
      const recorded = async (handle: typeof h | typeof seq) => {
        const inHistory = (await handle.history()).filter((e) => e.type === "ActivityCompleted").length;
        const inbox = await backend.getInbox((await handle.describe()).runId).catch(() => []);
        return inHistory + inbox.filter((e) => e.type === "ActivityCompleted").length;
      };
      expect(await recorded(h), "the four parallel attempts recorded").toBe(4);
      expect(await recorded(seq), "the sequential run's finished step recorded").toBe(1);

      // Another worker carries on from there.
      const next = spawnWorker(db, effects);
      expect(await h.result({ timeout: 20_000 })).toEqual([0, 1, 2, 3].map((i) => `drain#${i}`));
      expect(await seq.result({ timeout: 20_000 })).toEqual(["drain-seq#0", "drain-seq#1", "drain-seq#2"]);
      const executions = readEffects(effects).filter((l) => l.kind === "effect");
      expect(executions.length, "no step ran twice").toBe(4 + 3);
      await stop(next);
      expect(leasedRows(db)).toEqual({ workflow: 0, activity: 0 });
      expectIntact(db);
    } finally {
      await backend.close();
    }
  }, 60_000);

  it("an activity that outlasts the grace period is aborted and handed back at once, not left leased", async () => {
    const { db, effects } = scratch();
    const backend = new SqliteBackend({ path: db });
    const client = new Client({ backend });
    try {
      const w = spawnWorker(db, effects, { SPOOL_GRACE_MS: "300" });
      const h = await client.start(
        slowFlow,
        { count: 2, ms: 1500, heartbeat: false, heartbeatTimeout: 0 },
        { id: "long" },
      );
      await waitFor(() => started(effects, w.pid).length >= 2, 10_000, "two attempts running");
      const exit = await stop(w, 20_000);
      expect(exit.code).toBe(0);
      const aborts = readEffects(effects).filter((l) => l.kind === "abort" && l.pid === w.pid);
      expect(aborts.length).toBe(2);
      for (const a of aborts) expect(a.reason).toMatch(/the worker is shutting down/);
      expect(leasedRows(db), "handed back, not leased").toEqual({ workflow: 0, activity: 0 });
      const raw = (await import("better-sqlite3")).default;
      const conn = new raw(db, { readonly: true });
      const ready = conn
        .prepare("SELECT count(*) AS n FROM activity_tasks WHERE visible_at <= ?")
        .get(Date.now()) as { n: number };
      conn.close();
      expect(ready.n, "claimable by the next worker right away").toBe(2);
      const next = spawnWorker(db, effects);
      expect(await h.result({ timeout: 20_000 })).toEqual(["long#0", "long#1"]);
      await stop(next);
      expectIntact(db);
    } finally {
      await backend.close();
    }
  }, 60_000);
});
