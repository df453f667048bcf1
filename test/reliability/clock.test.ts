// Guards against clock jumps (NTP steps, VM resumes) breaking exactly-once recording or liveness: with worker clocks jumping forward and backward, no timer fires twice, no step is recorded twice, no lease taken over comes back to life for its old holder; and a real process whose wall clock steps an hour keeps its timers on schedule (neither an hour late nor early).
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Client, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { sleepFlow, slowFlow } from "./fixtures/workflows.ts";
import {
  allHistories,
  baseSeed,
  cleanScratch,
  executionFigures,
  expectIntact,
  type Fleet,
  readEffects,
  runFleet,
  scratch,
  sleep,
  spawnWorker,
  stop,
  waitFor,
} from "./harness.ts";

afterAll(cleanScratch);

const HOUR = 3_600_000;
const OFFSETS = [-HOUR, -3000, 0, 3000, HOUR];
const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
if (!existsSync(LIBFAKETIME)) {
  console.warn(
    `[reliability] ${LIBFAKETIME} is missing: the process-clock-jump test is skipped. ` +
      "Install it with `apt-get install libfaketime` (.ci/run does).",
  );
}

/** Marks a jump in the effects log: the harness then allows that process extra (at-least-once) executions. */
function jumped(f: Fleet, pid: number, offset: number): void {
  appendFileSync(
    f.effects,
    `${JSON.stringify({ kind: "fault", point: "clock", mode: "jump", pid, t: Date.now(), info: { offset } })}\n`,
  );
}

describe("clock jumps", () => {
  it("worker clocks jumping ±3 s and ±1 h (injected clock): every timer fires once, every step is recorded once", async () => {
    const seed = baseSeed + 11;
    const dir = scratch().dir;
    const files = [join(dir, "clock-a"), join(dir, "clock-b")];
    for (const f of files) writeFileSync(f, "0");
    let jumps = 0;
    const r = await runFleet({
      name: "clock-jumps",
      seed,
      runs: 16,
      steps: 2,
      signalUpFront: 2,
      signalEveryMs: 130,
      workers: files.map((f) => ({ SPOOL_CLOCK_FILE: f })),
      during: async (f) => {
        for (let i = 0; i < 15; i++) {
          await sleep(120);
          const w = Math.floor(f.random() * 2);
          const offset = OFFSETS[Math.floor(f.random() * OFFSETS.length)]!;
          writeFileSync(files[w]!, String(offset));
          jumped(f, f.procs[w]!.pid, offset);
          jumps++;
        }
        // Worker A ends up an hour ahead and stays there (a forward step that is never undone), B on
        // time: everything either clock scheduled is due for A, so every run can finish.
        writeFileSync(files[0]!, String(HOUR));
        writeFileSync(files[1]!, "0");
        jumped(f, f.procs[0]!.pid, HOUR);
      },
    });
    console.log(
      `[reliability] clock-jumps SPOOL_SEED=${baseSeed} jumps=${jumps} runs=${r.runs} steps=${r.steps} executions=${r.executions}`,
    );
    expect(r.runs).toBe(32);
  }, 90_000);

  it("a worker an hour ahead takes over a live lease; the old holder is fenced off and never gets it back", async () => {
    const { db, effects } = scratch();
    const clockB = join(scratch().dir, "clock-b");
    writeFileSync(clockB, String(HOUR));
    const backend = new SqliteBackend({ path: db });
    const client = new Client({ backend });
    // Every wait below is for a child process to start, claim or finish: on a loaded machine (the
    // suite runs on 2 busy cores) starting a process alone can take several seconds, so the waits
    // are a minute each. None of them is a measure: each only waits for an event the test needs.
    const GENEROUS = 60_000;
    try {
      const a = spawnWorker(db, effects, { SPOOL_LOG: "debug" });
      await a.ready;
      // A's attempt works for a minute, heartbeating: B is started only once it runs, and however
      // long B takes to start on a loaded machine it finds a live lease to take over (a fixed
      // 1.2 s attempt used to end before a slow B arrived, and B then waited for nothing). B's own
      // attempt (attempt 2) works 1.2 s.
      const h = await client.start(
        slowFlow,
        { count: 1, ms: 1200, firstMs: 60_000, heartbeat: true, heartbeatTimeout: 300 },
        { id: "steal" },
      );
      await waitFor(
        () => readEffects(effects).some((l) => l.kind === "effect" && l.pid === a.pid),
        GENEROUS,
        "A to start the attempt",
      );
      // B's clock is an hour ahead: A's heartbeated lease looks long expired to it.
      const b = spawnWorker(db, effects, { SPOOL_CLOCK_FILE: clockB, SPOOL_LOG: "debug" });
      await waitFor(
        () => readEffects(effects).some((l) => l.kind === "effect" && l.pid === b.pid),
        GENEROUS,
        "B to take the attempt over",
      );
      // The jump is B's, the lost attempt A's: both count as touched by the fault.
      for (const pid of [a.pid, b.pid]) {
        appendFileSync(
          effects,
          `${JSON.stringify({ kind: "fault", point: "clock", mode: "jump", pid, t: Date.now() })}\n`,
        );
      }
      writeFileSync(clockB, "0"); // ...and steps back while its attempt runs.
      expect(await h.result({ timeout: GENEROUS })).toEqual(["steal#0"]);
      await waitFor(
        () => readEffects(effects).some((l) => l.kind === "abort" && l.pid === a.pid),
        GENEROUS,
        "A to hear its lease was lost",
      );
      const abort = readEffects(effects).find((l) => l.kind === "abort" && l.pid === a.pid)!;
      expect(abort.reason).toMatch(/lease was lost/);
      await stop(a);
      await stop(b);
      const histories = await allHistories(db);
      const events = [...histories.values()][0]!.events;
      const done = events.filter((e) => e.type === "ActivityCompleted") as { attempt: number }[];
      expect(
        done.map((e) => e.attempt),
        "recorded once, by the new holder",
      ).toEqual([2]);
      executionFigures(effects, histories, 1);
      expectIntact(db);
    } finally {
      await backend.close();
    }
  }, 240_000);

  it.skipIf(!existsSync(LIBFAKETIME))(
    "a worker whose whole process clock jumps (libfaketime): timers fire once, steps are recorded once",
    async () => {
      const seed = baseSeed + 12;
      const dir = scratch().dir;
      const file = join(dir, "faketime");
      writeFileSync(file, "+0");
      const faked = {
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: file,
        FAKETIME_NO_CACHE: "1",
        // libuv's timers run on the monotonic clock, which NTP steps do not move either.
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      };
      const r = await runFleet({
        name: "faketime",
        seed,
        runs: 10,
        steps: 2,
        signalUpFront: 2,
        signalEveryMs: 150,
        workers: [faked, {}],
        // The faked worker reads its clock file on every time call (FAKETIME_NO_CACHE) and ends up
        // doing most of the work an hour ahead of the other: slow on a loaded machine, so the runs
        // get three minutes to finish (a wait, not a measure).
        finishTimeoutMs: 180_000,
        during: async (f) => {
          for (const offset of ["+1h", "-1h", "+0", "-3s", "+3s", "+1h"]) {
            await sleep(250);
            writeFileSync(file, offset);
            jumped(f, f.procs[0]!.pid, 0);
          }
        },
      });
      expect(r.runs).toBe(20);
    },
    300_000,
  );
  /** A worker process whose whole wall clock is moved by libfaketime (monotonic clock untouched). */
  const fakedWorker = (db: string, effects: string, file: string) =>
    spawnWorker(db, effects, {
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_NO_CACHE: "1",
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    });
  const dueAt = (db: string): number | undefined => {
    const raw = new Database(db, { readonly: true });
    try {
      return (raw.prepare("SELECT due_at FROM timers").get() as { due_at: number } | undefined)?.due_at;
    } finally {
      raw.close();
    }
  };
  const stepWarning = (effects: string, pid: number) =>
    readEffects(effects).find(
      (l) => l.kind === "log" && l.pid === pid && /wall clock stepped/.test(String(l.message)),
    );

  it.skipIf(!existsSync(LIBFAKETIME))(
    "a worker process whose wall clock steps back an hour during sleep('5s') still fires the timer on schedule (libfaketime)",
    async () => {
      const { db, effects } = scratch();
      const file = join(scratch().dir, "faketime");
      writeFileSync(file, "+0");
      const backend = new SqliteBackend({ path: db });
      const client = new Client({ backend });
      const w = fakedWorker(db, effects, file);
      try {
        await w.ready;
        const h = await client.start(sleepFlow, { ms: 5_000 }, { id: "back" });
        await waitFor(() => dueAt(db) !== undefined, 60_000, "the timer to be scheduled");
        writeFileSync(file, "-1h");
        // The child's clock stays an hour behind from here on: had the timer kept its wall-clock due
        // time it could only fire an hour from now, far beyond this wait (generous for a loaded machine).
        expect(await h.result({ timeout: 120_000 })).toBe(5_000);
        const warning = stepWarning(effects, w.pid);
        expect(warning?.message, "the step was reported loudly").toMatch(
          /stepped by -\d+ ms.*moved 1 timer/s,
        );
        // The step is measured against the monotonic clock, so it is an hour give or take the
        // milliseconds between the two clock reads (-3599999 ms happens), not exactly an hour.
        const stepMs = Number(/stepped by (-\d+) ms/.exec(String(warning?.message))?.[1]);
        expect(Math.abs(stepMs + 3_600_000), `measured step ${stepMs} ms, the jump was -1 h`).toBeLessThan(
          5_000,
        );
        const events = await h.history();
        expect(events.filter((e) => e.type === "TimerFired")).toHaveLength(1);
      } finally {
        await stop(w);
        await backend.close();
      }
    },
    240_000,
  );

  it.skipIf(!existsSync(LIBFAKETIME))(
    "a worker process whose wall clock steps forward an hour during sleep('8s') does not fire the timer early (libfaketime)",
    async () => {
      const { db, effects } = scratch();
      const file = join(scratch().dir, "faketime");
      writeFileSync(file, "+0");
      const backend = new SqliteBackend({ path: db });
      const client = new Client({ backend });
      const w = fakedWorker(db, effects, file);
      try {
        await w.ready;
        const h = await client.start(sleepFlow, { ms: 8_000 }, { id: "forward" });
        await waitFor(() => dueAt(db) !== undefined, 60_000, "the timer to be scheduled");
        const scheduled = dueAt(db)!;
        writeFileSync(file, "+1h");
        // The child reconciles the step at its next write (it polls, so within a poll interval).
        await waitFor(() => stepWarning(effects, w.pid) !== undefined, 60_000, "the step to be reconciled");
        // Still pending, moved by the step: the sleep keeps its 8 s rather than ending at once.
        const moved = dueAt(db);
        expect(moved, "the timer has not fired").toBeDefined();
        expect(Math.abs(moved! - scheduled - 3_600_000)).toBeLessThan(1_000);
        expect(await h.result({ timeout: 120_000 })).toBe(8_000);
      } finally {
        await stop(w);
        await backend.close();
      }
    },
    240_000,
  );
});
