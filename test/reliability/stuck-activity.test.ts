// Guards against stuck activities starving a worker: one that never returns and one that ignores its AbortSignal both time out, free their slot for other work (maxConcurrentActivities: 1), and a late result is never recorded.
import { Client, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { hangFlow, quickFlow } from "./fixtures/workflows.ts";
import {
  allHistories,
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

describe("activities that never return or ignore their abort", () => {
  it("time out, free the only slot, and their late results are dropped", async () => {
    const { db, effects } = scratch();
    const backend = new SqliteBackend({ path: db });
    const client = new Client({ backend });
    try {
      const w = spawnWorker(db, effects, {
        SPOOL_MAX_ACTIVITIES: "1",
        SPOOL_EAGER: "0",
        SPOOL_GRACE_MS: "500",
      });
      const never = await client.start(hangFlow, { mode: "never", lateMs: 0 }, { id: "never" });
      const stubborn = await client.start(
        hangFlow,
        { mode: "ignore-abort", lateMs: 1500 },
        { id: "stubborn" },
      );
      const others = [];
      for (let i = 0; i < 4; i++)
        others.push(await client.start(quickFlow, { base: i, steps: 3 }, { id: `other-${i}` }));

      // With one slot, the others can only finish if the hung attempts gave theirs back.
      for (const [i, o] of others.entries())
        expect(await o.result({ timeout: 20_000 })).toBe(3 * i * 1000 + 3);
      expect(await never.result({ timeout: 20_000 })).toEqual({ value: "on-time", attempt: 2 });
      expect(await stubborn.result({ timeout: 20_000 })).toEqual({ value: "on-time", attempt: 2 });

      // The stubborn attempt returned its value after the timeout: logged, never recorded.
      await waitFor(() => readEffects(effects).some((l) => l.kind === "late"), 10_000, "the late return");
      const lines = readEffects(effects);
      const late = lines.find((l) => l.kind === "late")!;
      expect(late.attempt).toBe(1);
      expect(late.reason, "it was told to stop").toBe("aborted=true");
      for (const id of ["never", "stubborn"]) {
        const aborts = lines.filter((l) => l.kind === "abort" && l.workflowId === id);
        expect(aborts.map((a) => a.attempt)).toEqual([1]);
        expect(aborts[0]!.reason).toMatch(/attempt 1 exceeded its 300 ms timeout/);
      }
      const histories = await allHistories(db);
      for (const { row, events } of histories.values()) {
        if (row.workflow_id !== "never" && row.workflow_id !== "stubborn") continue;
        const done = events.filter((e) => e.type === "ActivityCompleted") as {
          attempt: number;
          result: unknown;
        }[];
        expect(done.map((e) => [e.attempt, e.result])).toEqual([[2, { value: "on-time", attempt: 2 }]]);
      }

      // The never-returning handler is still pending in the process: shutdown does not wait for it.
      const exit = await stop(w, 10_000);
      expect(exit.code, "SIGTERM drains and exits although a handler never returned").toBe(0);
      expect(leasedRows(db)).toEqual({ workflow: 0, activity: 0 });
      expectIntact(db);
    } finally {
      await backend.close();
    }
  }, 60_000);
});
