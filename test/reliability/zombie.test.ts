// Guards against zombie workers: a process paused (SIGSTOP) past its lease while another takes over must, once resumed, have its late heartbeat or completion rejected by the fencing token and see its attempt aborted as lease-lost.
import { appendFileSync } from "node:fs";
import { Client, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { slowFlow } from "./fixtures/workflows.ts";
import {
  allHistories,
  cleanScratch,
  executionFigures,
  expectIntact,
  readEffects,
  scratch,
  spawnWorker,
  stop,
  waitFor,
} from "./harness.ts";

afterAll(cleanScratch);

async function zombie(opts: { heartbeat: boolean; ms: number; heartbeatTimeout: number; timeout?: number }) {
  const { db, effects } = scratch();
  const backend = new SqliteBackend({ path: db });
  const client = new Client({ backend });
  try {
    const z = spawnWorker(db, effects, { SPOOL_LOG: "debug", SPOOL_WORKER_ID: "zombie" });
    await z.ready;
    const h = await client.start(
      slowFlow,
      {
        count: 1,
        ms: opts.ms,
        heartbeat: opts.heartbeat,
        heartbeatTimeout: opts.heartbeatTimeout,
        timeout: opts.timeout,
      },
      { id: `zombie-${opts.heartbeat ? "hb" : "nohb"}` },
    );
    await waitFor(() => readEffects(effects).some((l) => l.kind === "effect" && l.pid === z.pid), 10_000);
    z.child.kill("SIGSTOP");
    // The harness counts a paused process as faulted: its unrecorded attempt is an allowed extra.
    appendFileSync(
      effects,
      `${JSON.stringify({ kind: "fault", point: "sigstop", mode: "stop", pid: z.pid, t: Date.now() })}\n`,
    );
    const b = spawnWorker(db, effects, { SPOOL_LOG: "debug", SPOOL_WORKER_ID: "successor" });
    const result = await h.result({ timeout: 20_000 });
    const taken = readEffects(effects).filter((l) => l.kind === "effect");
    expect(
      taken.map((l) => l.pid),
      "the successor ran the step while the zombie was paused",
    ).toContain(b.pid);
    z.child.kill("SIGCONT");
    // The zombie wakes: its heartbeat or its completion meets the fence and it aborts the attempt.
    await waitFor(
      () => readEffects(effects).some((l) => l.kind === "abort" && l.pid === z.pid),
      10_000,
      "the zombie's attempt aborted",
    );
    await stop(z);
    await stop(b);
    const lines = readEffects(effects);
    const abort = lines.find((l) => l.kind === "abort" && l.pid === z.pid)!;
    expect(abort.reason).toMatch(/lease was lost to another worker/);
    const histories = await allHistories(db);
    const events = [...histories.values()][0]!.events;
    const completed = events.filter((e) => e.type === "ActivityCompleted");
    expect(completed.length, "the step recorded once").toBe(1);
    expect((completed[0] as { attempt: number }).attempt, "the successor's attempt is the one recorded").toBe(
      2,
    );
    expect(result).toEqual([`zombie-${opts.heartbeat ? "hb" : "nohb"}#0`]);
    executionFigures(effects, histories, 1);
    expectIntact(db);
    return lines.filter((l) => l.pid === z.pid && l.kind === "log").map((l) => l.message ?? "");
  } finally {
    await backend.close();
  }
}

describe("a zombie worker (SIGSTOP past its lease, then SIGCONT)", () => {
  it("a heartbeating activity: the late heartbeat gets ConflictError and the attempt aborts as lease-lost", async () => {
    const logs = await zombie({ heartbeat: true, ms: 1500, heartbeatTimeout: 300 });
    // Either the late heartbeat or (if the work ended first on resume) the late completion met the fence.
    expect(logs.join("\n")).toMatch(/activity attempt abandoned|late activity completion rejected/);
  }, 60_000);

  it("an activity that finishes after the pause: its late completion is rejected by the fence and the attempt aborts", async () => {
    // No heartbeat: the lease is the 1 s attempt timeout plus grace. Paused early, the zombie resumes
    // after the successor completed the step; its own work then ends before its timeout fires.
    const logs = await zombie({ heartbeat: false, ms: 400, heartbeatTimeout: 0, timeout: 1000 });
    expect(logs.join("\n")).toMatch(/late activity completion rejected/);
  }, 60_000);
});
