// Guards against a full disk losing or half-writing state: SQLITE_FULL surfaces as a typed StorageFullError, nothing partial is written, the worker stops claiming work it cannot record, and it resumes by itself once space is back.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Client, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import type { chaosFlow } from "./fixtures/workflows.ts";
import {
  checkCampaign,
  cleanScratch,
  Runs,
  readEffects,
  rng,
  scratch,
  sleep,
  spawnWorker,
  stop,
  waitFor,
} from "./harness.ts";

afterAll(cleanScratch);

function consistent(db: string): void {
  const raw = new Database(db, { readonly: true });
  try {
    const bad = raw
      .prepare(
        `SELECT r.workflow_id, r.last_seq, (SELECT max(seq) FROM history h WHERE h.run_id = r.run_id) AS top,
                (SELECT count(*) FROM history h WHERE h.run_id = r.run_id) AS n
         FROM runs r WHERE r.last_seq <> top OR n <> top`,
      )
      .all();
    expect(bad, "every run's last_seq matches its gapless history").toEqual([]);
    expect(raw.pragma("integrity_check", { simple: true })).toBe("ok");
  } finally {
    raw.close();
  }
}

describe("disk full", () => {
  it("StorageFullError, nothing partial, no claiming while full, resumes by itself when space is back", async () => {
    const { dir, db, effects } = scratch();
    const pages = join(dir, "max-pages");
    writeFileSync(pages, "0");
    const backend = new SqliteBackend({ path: db });
    const client = new Client({ backend });
    const runs = new Runs(client, "full", 3);
    const worker = spawnWorker(db, effects, { SPOOL_MAX_PAGES_FILE: pages, SPOOL_LOG: "info" });
    try {
      await worker.ready;
      await runs.start(30);
      await waitFor(() => readEffects(effects).filter((l) => l.kind === "effect").length >= 20);
      // The disk fills up: the worker's connection may not grow the file any more.
      writeFileSync(pages, "1");
      await runs.signal(30, rng(1));
      await runs.start(30);
      await waitFor(
        () =>
          readEffects(effects).some((l) => l.kind === "log" && /StorageFullError/.test(JSON.stringify(l))),
        10_000,
        "a StorageFullError",
      );
      const fullAt = Date.now();
      const before = readEffects(effects).filter((l) => l.kind === "effect").length;
      await sleep(2000);
      const lines = readEffects(effects);
      const executions = lines.filter((l) => l.kind === "effect");
      const during = executions.length - before;
      const seen = new Set<string>();
      let repeated = 0;
      for (const l of executions) {
        const key = `${l.workflowId}/${l.step}`;
        if (seen.has(key)) repeated++;
        seen.add(key);
      }
      const errors = lines.filter(
        (l) => l.kind === "log" && (l.level === "error" || l.level === "warn") && (l.t ?? 0) >= fullAt,
      );
      console.log(
        `[reliability] disk full for 2 s: ${during} activity executions (probes; none repeated), ` +
          `${errors.length} error/warn lines (first: ${errors[0]?.message})`,
      );
      consistent(db);
      // An attempt whose outcome could not be stored is kept and reported again, not dropped and
      // re-run once its lease ran out: no side effect is repeated.
      expect(repeated, "no step executed twice while the disk was full").toBe(0);
      expect(errors.length, "the worker backs off instead of retrying in a hot loop").toBeLessThan(40);

      // Space comes back: the same worker process carries on by itself.
      writeFileSync(pages, "0");
      await runs.signal(30, rng(2));
      for (const id of runs.ledger.starts.keys()) {
        await client.getHandle<typeof chaosFlow>(id).result({ timeout: 60_000 });
      }
      await stop(worker);
      const kill = readEffects(effects).filter((l) => l.kind === "fault");
      expect(kill).toEqual([]);
      await checkCampaign({ db, effects, ledger: runs.ledger, client, maxExtraPerFault: 0 });
    } finally {
      if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
      await backend.close();
    }
  }, 120_000);
});
