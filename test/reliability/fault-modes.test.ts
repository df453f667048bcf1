// Guards against faults other than death corrupting or losing work: errors thrown at any fault point, a worker stalled or asleep past its lease (late commits must be fenced off), and a process holding the write lock.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client, SpoolError, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { chaosFlow } from "./fixtures/workflows.ts";
import {
  baseSeed,
  cleanScratch,
  distribution,
  lanes,
  readEffects,
  runFleet,
  scratch,
  sleep,
  stop,
  waitFor,
} from "./harness.ts";

afterAll(cleanScratch);

// Two tests at a time: they mostly wait (on sleeps, leases, back-offs), so they share the CPUs well.
const lane = lanes(2);

/** Whether the faulted process has logged a line matching `re` since its fault. */
function sleeperSaid(effects: string, re: RegExp): boolean {
  const lines = readEffects(effects);
  const fault = lines.find((l) => l.kind === "fault");
  return !!fault && lines.some((l) => l.kind === "log" && l.pid === fault.pid && re.test(l.message ?? ""));
}

describe("faults that do not kill", () => {
  it.concurrent(
    "errors thrown at random fault points (every point armed) lose nothing and record nothing twice",
    () =>
      lane(async () => {
        const seed = baseSeed + 1;
        const armed = { SPOOL_FAULT_AT: "*", SPOOL_FAULT_MODE: "throw", SPOOL_FAULT_RATE: "0.03" };
        const r = await runFleet({
          name: "throw-everywhere",
          seed,
          runs: 24,
          steps: 3,
          workers: [
            { ...armed, SPOOL_SEED: String(seed) },
            { ...armed, SPOOL_SEED: String(seed + 1) },
          ],
        });
        const faults = readEffects(r.effects).filter((l) => l.kind === "fault");
        const points = new Set(faults.map((f) => f.point));
        console.log(
          `[reliability] throw-everywhere SPOOL_SEED=${baseSeed} faults=${faults.length} points=${[...points].join(",")} ` +
            `extra/faulted-process={${distribution(r.extraPerFault)}} executions=${r.executions} steps=${r.steps}`,
        );
        expect(faults.length).toBeGreaterThanOrEqual(10);
        expect(points.size).toBeGreaterThanOrEqual(5);
      }),
    90_000,
  );

  it.concurrent(
    "a worker asleep past its lease before committing is fenced off: its late activation is discarded",
    () =>
      lane(async () => {
        const seed = baseSeed + 2;
        const r = await runFleet({
          name: "sleep-before-commit",
          seed,
          runs: 6,
          steps: 2,
          workers: [
            {
              SPOOL_FAULT_AT: "workflow.before-commit",
              SPOOL_FAULT_MODE: "sleep",
              SPOOL_FAULT_MS: "5000", // well past the 1 s lease, so the takeover has happened even on a loaded machine
              SPOOL_FAULT_HIT: "2",
              SPOOL_LOG: "debug",
              // No cached runs: every activation goes through a claimed, fenced workflow task.
              SPOOL_MAX_CACHED: "0",
            },
            {},
          ],
          // Keep the fleet up until the sleeper has woken and tried to commit.
          during: (f) =>
            waitFor(() => sleeperSaid(f.effects, /activation discarded/), 20_000, "the late commit"),
        });
        const lines = readEffects(r.effects);
        const fault = lines.find((l) => l.kind === "fault");
        expect(fault, "the sleeper reached its fault point").toBeDefined();
        // The sleeper woke after another worker had claimed the task (higher fence) and moved the run on.
        const discarded = lines.filter(
          (l) => l.kind === "log" && l.pid === fault!.pid && /activation discarded/.test(l.message ?? ""),
        );
        expect(
          discarded.length,
          "the late activation was rejected by the fence or seq guard",
        ).toBeGreaterThan(0);
        expect(String(discarded[0]!.fields?.reason)).toMatch(
          /fence \d+ is stale|expected last seq|run is already/,
        );
      }),
    60_000,
  );

  it.concurrent(
    "a worker asleep past an activity's lease before completing it: the late completion is rejected",
    () =>
      lane(async () => {
        const seed = baseSeed + 3;
        const r = await runFleet({
          name: "sleep-before-complete",
          seed,
          runs: 6,
          steps: 2,
          workers: [
            {
              SPOOL_FAULT_AT: "activity.before-complete",
              SPOOL_FAULT_MODE: "sleep",
              SPOOL_FAULT_MS: "4000", // far past the 900 ms lease (600 ms timeout + grace), even on a loaded machine
              SPOOL_FAULT_HIT: "1",
              SPOOL_LOG: "debug",
            },
            {},
          ],
          during: (f) =>
            waitFor(
              () => sleeperSaid(f.effects, /late activity completion rejected|activation discarded/),
              20_000,
              "the late completion",
            ),
        });
        const lines = readEffects(r.effects);
        const fault = lines.find((l) => l.kind === "fault")!;
        expect(fault).toBeDefined();
        const step = fault.info?.step as number;
        const runId = fault.info?.runId as string;
        const execs = lines.filter((l) => l.kind === "effect" && l.runId === runId && l.step === step);
        // Slept past its lease: another worker ran the step again (at least once), and only one attempt is recorded.
        expect(execs.length, "the step was taken over and executed again").toBeGreaterThanOrEqual(2);
        const rejected = lines.filter(
          (l) =>
            l.kind === "log" &&
            l.pid === fault.pid &&
            /late activity completion rejected|activation discarded/.test(l.message ?? ""),
        );
        expect(rejected.length, "the sleeper's late completion was rejected").toBeGreaterThan(0);
      }),
    60_000,
  );

  it.concurrent(
    "a process holding the write lock for less than the busy timeout delays others; no error reaches them",
    () =>
      lane(async () => {
        const seed = baseSeed + 4;
        const errors: unknown[] = [];
        const r = await runFleet({
          name: "lock-held",
          seed,
          runs: 10,
          steps: 2,
          signalUpFront: 2,
          workers: [
            // Asleep inside the commit transaction, holding SQLite's write lock, again and again —
            // each time for less than the busy timeout and less than any lease (longer holds would
            // let leases of the waiting worker run out, a different, at-least-once story).
            {
              SPOOL_FAULT_AT: "sqlite.commit.mid",
              SPOOL_FAULT_MODE: "sleep",
              SPOOL_FAULT_MS: "300",
              SPOOL_FAULT_RATE: "0.15",
            },
            {},
          ],
          during: async (f) => {
            // Meanwhile clients keep starting and signalling (the fleet's signaller) through the same file.
            await waitFor(
              () => readEffects(f.effects).some((l) => l.kind === "fault"),
              20_000,
              "a lock-holding sleep",
            );
            for (let i = 0; i < 5; i++) await f.runs.start(1).catch((e) => errors.push(e));
          },
        });
        const holds = readEffects(r.effects).filter((l) => l.kind === "fault").length;
        console.log(
          `[reliability] lock-held SPOOL_SEED=${baseSeed}: the write lock was held ${holds} times for 300 ms`,
        );
        expect(holds).toBeGreaterThanOrEqual(3);
        const workerErrors = readEffects(r.effects).filter((l) => l.kind === "log" && l.level === "error");
        expect(errors, "client calls below the busy timeout never fail").toEqual([]);
        expect(
          workerErrors,
          "no error (SQLITE_BUSY or other) reaches a worker below the busy timeout",
        ).toEqual([]);
      }),
    90_000,
  );

  it.concurrent(
    "a process stalled while holding the write lock: past the busy timeout callers get a typed error; killing it recovers everything",
    () =>
      lane(async () => {
        const seed = baseSeed + 5;
        let typed: unknown;
        const armFile = join(scratch().dir, "arm");
        await runFleet({
          name: "lock-stalled",
          seed,
          runs: 6,
          steps: 2,
          workers: [
            {
              SPOOL_FAULT_AT: "sqlite.commit.mid",
              SPOOL_FAULT_MODE: "stall",
              SPOOL_FAULT_HIT: "1",
              SPOOL_FAULT_ARM_FILE: `${armFile}`,
            },
            {},
          ],
          during: async (f) => {
            // Armed only now: every start and signal has been acknowledged already, so this test
            // process (whose SQLite calls are synchronous) never waits on the stalled lock itself.
            writeFileSync(armFile, "");
            await waitFor(() => readEffects(f.effects).some((l) => l.kind === "fault"), 20_000, "the stall");
            const stalled = f.procs[0]!;
            // A client with a short busy timeout: opening the file (migrations take the write lock) or
            // starting a run fails with the typed error, whichever meets the lock first.
            typed = await (async () => {
              const impatient = new SqliteBackend({ path: f.db, busyTimeoutMs: 300 });
              try {
                await new Client({ backend: impatient }).start(
                  chaosFlow,
                  { base: 1, steps: 0 },
                  { id: "stalled" },
                );
              } finally {
                await impatient.close();
              }
            })().catch((e) => e);
            // The operator (or orchestrator) kills the hung process; its transaction rolls back.
            stalled.child.kill("SIGKILL");
            await stop(stalled);
            await sleep(10);
          },
        });
        expect(SpoolError.is(typed), "a typed SpoolError, not a raw SQLITE_BUSY").toBe(true);
        expect((typed as Error).message).toMatch(
          /stayed locked by another connection for longer than the busy timeout/,
        );
      }),
    90_000,
  );
});
