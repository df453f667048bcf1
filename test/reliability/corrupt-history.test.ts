// Guards against a corrupt or truncated history (or inbox) row poisoning a worker process: the damage is detected by checksum, that run alone is parked as blocked naming the sequence number and reason, and every other run completes.
import Database from "better-sqlite3";
import { Client, HistoryCorruptError, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { type chaosFlow, go } from "./fixtures/workflows.ts";
import {
  allHistories,
  checkHistory,
  cleanScratch,
  expectIntact,
  Runs,
  referenceResults,
  rng,
  scratch,
  spawnWorker,
  stop,
  waitFor,
} from "./harness.ts";

afterAll(cleanScratch);

/** How each victim's stored rows are damaged (on disk, behind the backend's back). */
const DAMAGE = {
  "flipped byte": (raw: Database.Database, runId: string) =>
    raw.prepare("UPDATE history SET body = ? WHERE run_id = ? AND seq = 2").run(
      (() => {
        const row = raw.prepare("SELECT body FROM history WHERE run_id = ? AND seq = 2").get(runId) as {
          body: Buffer;
        };
        const b = Buffer.from(row.body);
        b[b.length - 1] = (b[b.length - 1] ?? 0) ^ 0x20;
        return b;
      })(),
      runId,
    ),
  "truncated body": (raw: Database.Database, runId: string) =>
    raw
      .prepare("UPDATE history SET body = substr(body, 1, length(body) / 2) WHERE run_id = ? AND seq = 3")
      .run(runId),
  "missing row": (raw: Database.Database, runId: string) =>
    raw.prepare("DELETE FROM history WHERE run_id = ? AND seq = 4").run(runId),
  "corrupt inbox row": (raw: Database.Database, runId: string) =>
    raw.prepare("UPDATE inbox SET body = substr(body, 2) WHERE run_id = ?").run(runId),
} as const;
const EXPECTED: Record<keyof typeof DAMAGE, RegExp> = {
  "flipped byte": /is corrupt at event #2: /,
  "truncated body": /is corrupt at event #3: /,
  "missing row": /is corrupt at event #4: /,
  "corrupt inbox row": /is corrupt at event #0: inbox event \d+/,
};

describe("corrupt or truncated rows with real worker processes", () => {
  it("parks only the damaged runs, naming position and reason; the others complete", async () => {
    const { db, effects } = scratch();
    const backend = new SqliteBackend({ path: db });
    const client = new Client({ backend });
    const victims = new Runs(client, "victim", 3);
    const bystanders = new Runs(client, "bystander", 3);
    try {
      const w1 = spawnWorker(db, effects);
      await victims.start(4);
      await bystanders.start(8);
      // Victims wait for their signal with history written; the worker has them cached in memory.
      await waitFor(async () => {
        for (const id of victims.ledger.starts.keys()) {
          const h = await client.getHandle(id).history();
          if (h.filter((e) => e.type === "ActivityCompleted").length < 5) return false;
        }
        return true;
      });
      // The inbox victim gets its signal while no worker runs, so it sits in the inbox to be damaged.
      await stop(w1);
      const ids = [...victims.ledger.starts.keys()];
      const names = Object.keys(DAMAGE) as (keyof typeof DAMAGE)[];
      await client.getHandle<typeof chaosFlow>(ids[3]!).signal(go, { n: 1 });
      const raw = new Database(db);
      const lastSeq = new Map<string, number>();
      for (const [i, id] of ids.entries()) {
        const d = await client.getHandle(id).describe();
        lastSeq.set(id, (await client.getHandle(id).history()).length);
        const changed = DAMAGE[names[i]!](raw, d.runId);
        expect(changed.changes, `${names[i]} applied`).toBeGreaterThan(0);
      }
      raw.close();

      // A fresh worker process (cold cache: it must read the damaged rows) and every signal.
      const w2 = spawnWorker(db, effects, { SPOOL_BLOCKED_RETRY_MS: "200,2000" });
      for (const id of ids.slice(0, 3)) await client.getHandle<typeof chaosFlow>(id).signal(go, { n: 1 });
      await bystanders.signal(8, rng(3));
      const reference = await referenceResults(bystanders.ledger);
      for (const id of bystanders.ledger.starts.keys()) {
        expect(await client.getHandle<typeof chaosFlow>(id).result({ timeout: 30_000 }), id).toBe(
          reference.get(id),
        );
      }
      for (const [i, id] of ids.entries()) {
        const h = client.getHandle(id);
        await waitFor(async () => (await h.describe()).status === "blocked", 20_000, `${id} blocked`);
        const d = await h.describe();
        expect(d.blockedReason, `${names[i]}: reason names the position`).toMatch(
          /^HistoryCorruptError: history of run \w+ is corrupt at event #\d+/,
        );
        expect(d.blockedReason).toMatch(EXPECTED[names[i]!]);
        expect(HistoryCorruptError.is(d.error)).toBe(true);
      }
      await stop(w2);
      console.log(
        `[reliability] corrupt rows: ${names.join(", ")} parked; ${bystanders.ledger.starts.size} bystanders completed`,
      );
      // Parking wrote nothing to the damaged histories: their last_seq is what it was.
      const rawAfter = new Database(db, { readonly: true });
      for (const id of ids) {
        const row = rawAfter.prepare("SELECT last_seq FROM runs WHERE workflow_id = ?").get(id) as {
          last_seq: number;
        };
        expect(row.last_seq, `${id}: history untouched`).toBe(lastSeq.get(id));
      }
      rawAfter.close();
      const histories = await allHistories(db).catch(() => null);
      expect(histories, "reading every history at once fails on the damaged ones").toBeNull();
      for (const id of bystanders.ledger.starts.keys()) {
        const d = await client.getHandle(id).describe();
        checkHistory(
          id,
          await client.getHandle(id).history(),
          (await backend.inspect.getRun(d.runId))!.lastSeq,
        );
      }
      expectIntact(db);
    } finally {
      await backend.close();
    }
  }, 90_000);
});
