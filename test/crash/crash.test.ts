// Guards crash safety with real processes: a worker SIGKILLed mid-activity, between steps, inside and right after an activation commit loses no run, records no step twice, and never re-executes a step whose completion was recorded.
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Client, type HistoryEvent, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { crashFlow, type EffectLine, expected } from "../reliability/fixtures/workflows.ts";

// The worker fixture is shared with the reliability harness (test/reliability), which extends
// these kills to every fault point, other fault modes and more invariants.
const fixture = join(import.meta.dirname, "..", "reliability", "fixtures", "worker-process.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function startWorker(db: string, effects: string, env: Record<string, string> = {}): ChildProcess {
  return fork(fixture, [db], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, SPOOL_EFFECTS: effects, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

function readEffects(path: string): EffectLine[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EffectLine);
}

/** Steps whose completion is recorded (in history or waiting in the inbox), per workflow id. */
async function recordedCompletions(
  backend: SqliteBackend,
  client: Client,
  ids: string[],
): Promise<Set<string>> {
  const done = new Set<string>();
  for (const id of ids) {
    const h = client.getHandle(id);
    const d = await h.describe();
    for (const e of await h.history()) if (e.type === "ActivityCompleted") done.add(`${id}/${e.step}`);
    for (const e of await backend.getInbox(d.runId)) {
      if (e.type === "ActivityCompleted") done.add(`${id}/${e.step}`);
    }
  }
  return done;
}

function checkHistory(id: string, history: HistoryEvent[]): void {
  expect(
    history.map((e) => e.seq),
    `${id}: contiguous seq`,
  ).toEqual(history.map((_, i) => i + 1));
  const seen = new Set<string>();
  for (const e of history) {
    if (!("step" in e)) continue;
    const key = `${e.type}/${e.step}`;
    expect(seen.has(key), `${id}: ${key} recorded twice`).toBe(false);
    seen.add(key);
  }
  const scheduled = history.filter((e) => e.type === "ActivityScheduled").map((e) => e.step);
  const completed = history.filter((e) => e.type === "ActivityCompleted").map((e) => e.step);
  expect(completed.sort(), `${id}: every scheduled activity completed once`).toEqual(scheduled.sort());
}

const POINTS = [
  "activity.mid", // mid-activity: the side effect happened, the completion was not recorded
  "activity.before-complete", // the attempt finished, its completion not yet written
  "workflow.after-claim", // between steps: a workflow task claimed, nothing decided
  "workflow.before-commit", // the activation computed, not committed
  "sqlite.commit.mid", // inside the commit transaction, after the history rows
  "sqlite.commit.end", // inside the commit transaction, after every statement
  "sqlite.commit.after", // committed, before the worker heard of it
  "workflow.after-commit", // committed, eager activities claimed but not started
] as const;

describe("crash safety with real worker processes (SIGKILL)", () => {
  for (const point of POINTS) {
    // Two kill positions per point; the seed picks which hit of the point kills.
    for (const hit of [1, 4]) {
      it(`recovers every run after SIGKILL at ${point} (hit ${hit})`, async () => {
        const dir = mkdtempSync(join(tmpdir(), "spool-crash-"));
        dirs.push(dir);
        const db = join(dir, "spool.db");
        const effects = join(dir, "effects.log");
        writeFileSync(effects, "");
        const backend = new SqliteBackend({ path: db });
        const client = new Client({ backend });
        const ids: string[] = [];
        for (let base = 1; base <= 4; base++) {
          const id = `crash-${point}-${base}`;
          await client.start(crashFlow, { base }, { id });
          ids.push(id);
        }

        const doomed = startWorker(db, effects, { SPOOL_CRASH_AT: point, SPOOL_CRASH_AFTER: String(hit) });
        const death = await exited(doomed);
        expect(death.signal, `the fault point ${point} must have been reached`).toBe("SIGKILL");
        const killedPid = doomed.pid;
        const recordedBefore = await recordedCompletions(backend, client, ids);
        const executionsBefore = readEffects(effects).filter((l) => l.kind === "effect").length;

        const fresh = startWorker(db, effects);
        try {
          for (const [i, id] of ids.entries()) {
            const result = await client.getHandle<typeof crashFlow>(id).result({ timeout: 20_000 });
            expect(result).toBe(expected(i + 1));
          }
        } finally {
          fresh.kill("SIGTERM");
          await exited(fresh);
        }

        for (const id of ids) checkHistory(id, await client.getHandle(id).history());
        const lines = readEffects(effects);
        const runs = lines.filter((l) => l.kind === "effect");
        const byStep = new Map<string, EffectLine[]>();
        for (const l of runs) {
          const key = `${l.workflowId}/${l.step}`;
          byStep.set(key, [...(byStep.get(key) ?? []), l]);
        }
        for (const [key, execs] of byStep) {
          // At least once, and at most once per process: a re-execution only after the crash.
          const pids = execs.map((e) => e.pid);
          expect(new Set(pids).size, `${key} executed twice in one process`).toBe(pids.length);
          if (recordedBefore.has(key)) {
            expect(
              execs.filter((e) => e.pid !== killedPid),
              `${key}: completion was recorded, yet it ran again`,
            ).toEqual([]);
          }
        }
        // Extra executions are bounded by what was in flight in the killed worker.
        const extra = runs.length - byStep.size;
        expect(extra).toBeLessThanOrEqual(executionsBefore);
        await backend.close();
        const raw = new Database(db, { readonly: true });
        expect(raw.pragma("integrity_check", { simple: true })).toBe("ok");
        raw.close();
      });
    }
  }
});
