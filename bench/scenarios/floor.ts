/**
 * Scenario 3 — the floor: what the storage itself can do on this machine, in the same run, at the
 * same durability settings (WAL, synchronous FULL or NORMAL), with raw better-sqlite3 and no
 * Spool code at all.
 *
 * - Per-commit floor: one small INSERT per `BEGIN IMMEDIATE` transaction, back to back: the most
 *   commits/s one connection can make. Each Spool step needs several commits, so Spool's steps/s
 *   divided by this is the fraction of the disk's commit rate a step gets.
 * - Group-commit floor: 1,000 concurrent async writers (as many as the concurrent scenario's
 *   workflows); inserts requested in one event-loop turn share one transaction, flushed by
 *   setImmediate. This is the ceiling a group-committing backend could approach.
 *
 * Spool's steps/s divided by each floor is computed by bench/run.ts once both are measured.
 */
import Database from "better-sqlite3";
import type { Durability, Scenario, ScenarioContext } from "../lib/scenario.ts";
import { perSecond } from "../lib/stats.ts";
import { tempDb } from "../lib/temp-db.ts";

const ROW = Buffer.alloc(64, 7);

function open(path: string, durability: Durability): Database.Database {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, body BLOB)");
  return db;
}

/** One INSERT per transaction for `ms` milliseconds; returns commits. */
function perCommit(db: Database.Database, ms: number): { commits: number; elapsed: number } {
  const insert = db.prepare("INSERT INTO t (at, body) VALUES (?, ?)");
  const txn = db.transaction(() => insert.run(Date.now(), ROW));
  let commits = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    txn.immediate();
    commits++;
    if ((commits & 15) === 0) now = performance.now();
  }
  return { commits, elapsed: performance.now() - t0 };
}

/** `writers` async loops awaiting their inserts; one transaction per event-loop turn. */
async function groupCommit(
  db: Database.Database,
  writers: number,
  ms: number,
): Promise<{ inserts: number; transactions: number; elapsed: number }> {
  const insert = db.prepare("INSERT INTO t (at, body) VALUES (?, ?)");
  let queue: (() => void)[] = [];
  let scheduled = false;
  let inserts = 0;
  let transactions = 0;
  const flushTxn = db.transaction((n: number) => {
    const at = Date.now();
    for (let i = 0; i < n; i++) insert.run(at, ROW);
  });
  const flush = () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    flushTxn.immediate(batch.length);
    transactions++;
    inserts += batch.length;
    for (const resolve of batch) resolve();
  };
  const write = () =>
    new Promise<void>((resolve) => {
      queue.push(resolve);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  let stop = false;
  const t0 = performance.now();
  const timer = setTimeout(() => {
    stop = true;
  }, ms);
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (!stop) await write();
    }),
  );
  clearTimeout(timer);
  return { inserts, transactions, elapsed: performance.now() - t0 };
}

async function run(ctx: ScenarioContext): Promise<void> {
  const ms = ctx.options.quick ? 300 : 1500;
  const writers = 1000;
  ctx.setting("duration per measurement", `${ms} ms`);
  ctx.setting("row", "INTEGER PRIMARY KEY, INTEGER, 64-byte BLOB; WAL; BEGIN IMMEDIATE");
  ctx.setting("group-commit writers", writers);

  for (const durability of ctx.options.durabilities) {
    for (let round = 0; round <= ctx.options.rounds; round++) {
      const tmp = tempDb("floor");
      const db = open(tmp.path, durability);
      try {
        const a = perCommit(db, round === 0 ? 200 : ms);
        const b = await groupCommit(db, writers, round === 0 ? 200 : ms);
        if (round === 0) continue; // warm-up
        ctx.sample("per-commit floor", "commits/s", perSecond(a.commits, a.elapsed), { durability });
        ctx.sample("group-commit floor", "inserts/s", perSecond(b.inserts, b.elapsed), { durability });
        ctx.sample("group-commit transactions", "txn/s", perSecond(b.transactions, b.elapsed), {
          durability,
        });
        ctx.log(
          `${durability} round ${round}: ${a.commits} commits; ${b.inserts} inserts in ${b.transactions} transactions`,
        );
      } finally {
        db.close();
        tmp.remove();
      }
    }
  }
}

const scenario: Scenario = {
  name: "floor",
  title: "The floor: raw better-sqlite3 at the same durability",
  run,
};
export default scenario;
