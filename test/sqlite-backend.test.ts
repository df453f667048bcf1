// Guards the SQLite backend against durability and integrity bugs: wrong pragmas, unsafe migrations, undetected corrupt rows, partial writes on a full disk, double claims across connections and processes.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  ConfigurationError,
  ConflictError,
  HistoryCorruptError,
  InvalidOptionsError,
  SpoolError,
  StorageFullError,
} from "@spool/core";
import { MIGRATIONS, SCHEMA_VERSION, SqliteBackend, type SqliteBackendOptions } from "@spool/sqlite";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it, vi } from "vitest";
import { commitOf } from "./conformance/commits.ts";
import { describeBackend } from "./conformance/describe-backend.ts";

const T0 = 1_700_000_000_000;
const dir = mkdtempSync(join(tmpdir(), "spool-sqlite-"));
let fileCounter = 0;
const freshPath = () => join(dir, `t${++fileCounter}.db`);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A backend on a controllable clock. */
function open(options: Partial<SqliteBackendOptions> = {}) {
  let t = T0;
  const backend = new SqliteBackend({ path: ":memory:", clock: () => t, ...options });
  const clock = {
    advance: (ms: number) => {
      t += ms;
    },
    set: (ms: number) => {
      t = ms;
    },
  };
  return { backend, clock, teardown: () => backend.close() };
}

/** The backend's own connection, for pragmas and fault injection. */
const connectionOf = (backend: SqliteBackend) => (backend as unknown as { db: Database.Database }).db;

describeBackend("SqliteBackend :memory:", async (o) => open(o));
describeBackend("SqliteBackend file (WAL)", async (o) => open({ ...o, path: freshPath() }));

const bytes = (...values: number[]) => new Uint8Array(values);

/** Removes what migration 3 added, leaving a file as version 2 wrote it. */
const UNDO_V3 = `ALTER TABLE runs DROP COLUMN input_hash; ALTER TABLE runs DROP COLUMN crc;
  ALTER TABLE runs DROP COLUMN buffered_signals; ALTER TABLE activity_tasks DROP COLUMN crc;`;

const startReq = (workflowId: string) => ({
  workflowId,
  workflowName: "wf",
  version: null,
  startedEventBody: bytes(1),
  onConflict: "attach" as const,
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to reject");
}

describe("SqliteBackend (SQLite specifics)", () => {
  describe("opening", () => {
    it("uses WAL with synchronous=FULL by default and NORMAL on request, with the busy timeout", async () => {
      const full = new SqliteBackend({ path: freshPath(), busyTimeoutMs: 1234 });
      const db = connectionOf(full);
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.pragma("synchronous", { simple: true })).toBe(2);
      // The connection waits in short slices; the backend tries again until busyTimeoutMs has passed.
      expect(db.pragma("busy_timeout", { simple: true })).toBe(2);
      await full.close();

      const normal = new SqliteBackend({ path: freshPath(), durability: "normal" });
      expect(connectionOf(normal).pragma("synchronous", { simple: true })).toBe(1);
      await normal.close();
    });

    it("rejects invalid options with InvalidOptionsError", () => {
      expect(() => new SqliteBackend({ path: ":memory:", durability: "fast" as "full" })).toThrow(
        InvalidOptionsError,
      );
      expect(() => new SqliteBackend({ path: ":memory:", busyTimeoutMs: -1 })).toThrow(InvalidOptionsError);
      expect(() => new SqliteBackend({ path: "" })).toThrow(InvalidOptionsError);
    });

    it("records migrations once and reopens an existing file without re-running them", async () => {
      const path = freshPath();
      const first = new SqliteBackend({ path });
      const { runId } = await first.startWorkflow(startReq("keep-me"));
      await first.close();

      const second = new SqliteBackend({ path });
      const rows = connectionOf(second)
        .prepare("SELECT version, name FROM spool_migrations ORDER BY version")
        .all();
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      expect((await second.inspect.getRun(runId))?.workflowId).toBe("keep-me");
      await second.close();
    });

    it("upgrades a file written at schema version 1 in place: its runs are kept and take signal request ids", async () => {
      const path = freshPath();
      const old = new SqliteBackend({ path });
      const { runId } = await old.startWorkflow(startReq("from-v1"));
      await old.close();
      // What version 1 left on disk: no signal_requests table (nor version 3's columns), one
      // migration recorded.
      const raw = new Database(path);
      raw.exec(
        `${UNDO_V3} DROP TABLE signal_requests; DROP TABLE workers; DROP TABLE clock_anchor; DELETE FROM spool_migrations WHERE version > 1`,
      );
      raw.close();

      const upgraded = new SqliteBackend({ path });
      const versions = connectionOf(upgraded)
        .prepare("SELECT version FROM spool_migrations ORDER BY version")
        .all();
      expect(versions).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
      for (let i = 0; i < 2; i++) {
        await upgraded.signalWorkflow({ workflowId: "from-v1", body: bytes(7), requestId: "once" });
      }
      expect(await upgraded.getInbox(runId)).toHaveLength(1);
      await upgraded.close();
    });

    it("upgrades a file written at schema version 2 in place: its runs count as unknown input and unverified rows", async () => {
      const path = freshPath();
      const old = new SqliteBackend({ path });
      const { runId } = await old.startWorkflow({ ...startReq("from-v2"), inputHash: "00000000000000aa" });
      await old.close();
      const raw = new Database(path);
      raw.exec(
        `${UNDO_V3} DROP TABLE workers; DROP TABLE clock_anchor; DELETE FROM spool_migrations WHERE version > 2`,
      );
      raw.close();

      const upgraded = new SqliteBackend({ path });
      const db = connectionOf(upgraded);
      expect(db.prepare("SELECT version FROM spool_migrations ORDER BY version").all()).toEqual(
        MIGRATIONS.map((m) => ({ version: m.version })),
      );
      expect(db.prepare("SELECT input_hash, crc, buffered_signals FROM runs").get()).toEqual({
        input_hash: null,
        crc: null,
        buffered_signals: 0,
      });
      // No stored fingerprint: a start with any input attaches, as before the upgrade.
      const again = await upgraded.startWorkflow({ ...startReq("from-v2"), inputHash: "ffffffffffffffff" });
      expect(again).toMatchObject({ runId, created: false });
      expect((await upgraded.inspect.getRun(runId))?.status).toBe("running");
      await upgraded.signalWorkflow({ workflowId: "from-v2", body: bytes(7) });
      // Its next status change writes a checksum: from then on the row is verified.
      const task = await upgraded.claimWorkflowTask({ workerId: "w", workflowNames: ["wf"], leaseMs: 1000 });
      await upgraded.commitActivation(
        commitOf(runId, 1, {
          fence: task!.fence,
          consumedInbox: task!.inbox.map((e) => e.id),
          events: [
            { seq: 2, ts: T0, type: "SignalReceived", step: null, body: task!.inbox[0]!.body },
            { seq: 3, ts: T0, type: "WorkflowCompleted", step: null, body: bytes(9) },
          ],
          close: { status: "completed", result: bytes(9) },
        }),
      );
      expect(db.prepare("SELECT crc FROM runs").get()).not.toEqual({ crc: null });
      expect((await upgraded.inspect.getRun(runId))?.status).toBe("completed");
      await upgraded.close();
    });

    it("opens a file that is already migrated without waiting for the write lock", async () => {
      const path = freshPath();
      await new SqliteBackend({ path }).close();
      const writer = new Database(path);
      writer.exec("BEGIN IMMEDIATE"); // another process mid-transaction
      try {
        const opened = new SqliteBackend({ path, busyTimeoutMs: 100 });
        expect(await opened.inspect.getLatestRun("nobody")).toBeNull();
        await opened.close();
      } finally {
        writer.exec("ROLLBACK");
        writer.close();
      }
    });

    it("refuses a database migrated by a newer release", async () => {
      const path = freshPath();
      await new SqliteBackend({ path }).close();
      const raw = new Database(path);
      raw
        .prepare("INSERT INTO spool_migrations (version, name, applied_at) VALUES (?, 'from the future', 0)")
        .run(SCHEMA_VERSION + 1);
      raw.close();
      expect(() => new SqliteBackend({ path })).toThrow(ConfigurationError);
      expect(() => new SqliteBackend({ path })).toThrow(/newer Spool release/);
    });

    it("rejects every call after close(), and close() is idempotent", async () => {
      const { backend } = open();
      await backend.close();
      await backend.close();
      const err = await rejection(backend.startWorkflow(startReq("a")));
      expect(SpoolError.is(err)).toBe(true);
      expect((err as Error).message).toMatch(/closed/);
      expect(SpoolError.is(await rejection(backend.inspect.getRun("x")))).toBe(true);
    });
  });

  describe("integrity", () => {
    it("a -wal file deleted under a live database is reported as such, not as a full disk", async () => {
      const path = freshPath();
      const live = new SqliteBackend({ path });
      // Committed pages stay in the WAL until a checkpoint; the -shm index says where they are.
      for (let i = 0; i < 20; i++) await live.startWorkflow(startReq(`wal-${i}`));
      expect(existsSync(`${path}-wal`)).toBe(true);
      rmSync(`${path}-wal`);
      let err: unknown;
      try {
        new SqliteBackend({ path }).close();
      } catch (e) {
        err = e;
      }
      expect((err as { cause?: { code?: string } })?.cause?.code).toBe("SQLITE_IOERR_SHORT_READ");
      expect((err as Error).message).toMatch(/-wal file was deleted, truncated or replaced/);
      expect((err as Error).message).toMatch(/spool doctor/);
      expect((err as Error).message).not.toMatch(/free space/);
      await live.close();
    });

    it("detects a corrupt history body, a non-BLOB body and a missing event, only in the damaged run", async () => {
      const { backend } = open();
      const { runId } = await backend.startWorkflow(startReq("damaged"));
      const healthy = await backend.startWorkflow(startReq("healthy"));
      const task = (await backend.claimWorkflowTask({
        workerId: "w",
        workflowNames: ["wf"],
        leaseMs: 1000,
      }))!;
      expect(task.run.runId).toBe(runId);
      await backend.commitActivation(
        commitOf(runId, 1, {
          fence: task.fence,
          events: [
            { seq: 2, ts: T0, type: "SideEffect", step: 1, body: bytes(10, 20, 30) },
            { seq: 3, ts: T0, type: "SideEffect", step: 2, body: bytes(40) },
          ],
        }),
      );
      const db = connectionOf(backend);

      // One flipped byte in the body of event #2.
      db.prepare("UPDATE history SET body = ? WHERE run_id = ? AND seq = 2").run(bytes(10, 21, 30), runId);
      let err = await rejection(backend.getHistory(runId));
      expect(err).toBeInstanceOf(HistoryCorruptError);
      expect(err).toMatchObject({ runId, seq: 2 });
      expect(await rejection(backend.inspect.getHistory(runId))).toBeInstanceOf(HistoryCorruptError);
      expect(await backend.getHistory(healthy.runId)).toHaveLength(1);

      // The same bytes stored as TEXT instead of a BLOB.
      db.prepare("UPDATE history SET body = CAST(? AS TEXT) WHERE run_id = ? AND seq = 2").run(
        bytes(10, 20, 30),
        runId,
      );
      err = await rejection(backend.getHistory(runId));
      expect(err).toBeInstanceOf(HistoryCorruptError);
      expect((err as Error).message).toMatch(/body is not binary/);

      // A changed timestamp is corruption too: it is workflow time on replay.
      db.prepare("UPDATE history SET body = ? WHERE run_id = ? AND seq = 2").run(bytes(10, 20, 30), runId);
      expect(await backend.getHistory(runId)).toHaveLength(3);
      db.prepare("UPDATE history SET ts = ts + 1 WHERE run_id = ? AND seq = 3").run(runId);
      expect(await rejection(backend.getHistory(runId))).toMatchObject({ seq: 3 });
      db.prepare("UPDATE history SET ts = ts - 1 WHERE run_id = ? AND seq = 3").run(runId);

      // A deleted row leaves a gap.
      db.prepare("DELETE FROM history WHERE run_id = ? AND seq = 2").run(runId);
      err = await rejection(backend.getHistory(runId));
      expect(err).toMatchObject({ seq: 2 });
      expect((err as Error).message).toMatch(/missing/);
      await backend.close();
    });

    it("detects a corrupt inbox row without stalling the queue for other runs", async () => {
      const { backend } = open();
      const bad = await backend.startWorkflow(startReq("bad"));
      const good = await backend.startWorkflow(startReq("good"));
      await backend.signalWorkflow({ workflowId: "bad", body: bytes(1, 2) });
      connectionOf(backend).prepare("UPDATE inbox SET body = ? WHERE run_id = ?").run(bytes(9, 9), bad.runId);

      expect(await rejection(backend.getInbox(bad.runId))).toBeInstanceOf(HistoryCorruptError);
      const claim = () =>
        backend.claimWorkflowTask({ workerId: "w", workflowNames: ["wf"], leaseMs: 60_000 });
      // The claim hands the run over with the error, so the worker can park it; others keep flowing.
      const first = await claim();
      expect(first?.run.runId).toBe(bad.runId);
      expect(first?.inbox).toEqual([]);
      expect(first?.inboxError).toBeInstanceOf(HistoryCorruptError);
      expect((await claim())?.run.runId).toBe(good.runId);
      await backend.close();
    });
  });

  describe("group commit", () => {
    it("activations requested in one event-loop turn are batched; a failed guard rejects only its own", async () => {
      const { backend } = open({ path: freshPath() });
      const runs = [];
      for (const id of ["a", "b", "c"]) runs.push((await backend.startWorkflow(startReq(id))).runId);
      const event = (seq: number) => ({
        seq,
        ts: T0,
        type: "SideEffect" as const,
        step: 1,
        body: bytes(seq),
      });
      const outcomes = await Promise.allSettled([
        backend.commitActivation(commitOf(runs[0]!, 1, { events: [event(2)] })),
        backend.commitActivation(commitOf(runs[1]!, 5, { events: [event(6)] })), // stale guard
        backend.commitActivation(commitOf(runs[2]!, 1, { events: [event(2)] })),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
      expect((await backend.getHistory(runs[0]!)).map((e) => e.seq)).toEqual([1, 2]);
      expect((await backend.getHistory(runs[1]!)).map((e) => e.seq)).toEqual([1]);
      expect((await backend.getHistory(runs[2]!)).map((e) => e.seq)).toEqual([1, 2]);
      await backend.close();
    });
  });

  it("a write of a batch that fails after writing part of its rows leaves none of them; the others commit", async () => {
    const { backend } = open({ path: freshPath() });
    const runs = [];
    for (const id of ["p", "q", "r"]) runs.push((await backend.startWorkflow(startReq(id))).runId);
    const event = (seq: number) => ({ seq, ts: T0, type: "SideEffect" as const, step: 1, body: bytes(seq) });
    const outcomes = await Promise.allSettled([
      backend.commitActivation(commitOf(runs[0]!, 1, { events: [event(2)] })),
      // Its run row and event are written before the unknown inbox id is found: all undone.
      backend.commitActivation(
        commitOf(runs[1]!, 1, { events: [event(2), event(3)], consumedInbox: [987_654] }),
      ),
      backend.commitActivation(commitOf(runs[2]!, 1, { events: [event(2)] })),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(
      /inbox event 987654 is not in this run's inbox/,
    );
    expect((await backend.getHistory(runs[0]!)).map((e) => e.seq)).toEqual([1, 2]);
    expect((await backend.getHistory(runs[1]!)).map((e) => e.seq)).toEqual([1]);
    expect((await backend.inspect.getRun(runs[1]!))?.lastSeq).toBe(1);
    expect((await backend.getHistory(runs[2]!)).map((e) => e.seq)).toEqual([1, 2]);
    await backend.close();
  });

  it("a batch's queued history rows that cannot be inserted fail only their activation; the others commit whole", async () => {
    // Without savepoints, a batch's history rows go in multi-row INSERTs just before COMMIT. A row
    // planted behind the backend's back (not through it: the run row still says seq 1) makes that
    // insert fail; the batch must then run again write by write, so only q's activation fails.
    const path = freshPath();
    const { backend } = open({ path });
    const runs = [];
    for (const id of ["p", "q", "r"]) runs.push((await backend.startWorkflow(startReq(id))).runId);
    const planted = new Database(path);
    planted
      .prepare(
        "INSERT INTO history (run_id, seq, ts, type, step, body, crc) VALUES (?, 2, ?, 'SideEffect', 1, NULL, 0)",
      )
      .run(runs[1], T0);
    planted.close();
    const event = (seq: number) => ({ seq, ts: T0, type: "SideEffect" as const, step: 1, body: bytes(seq) });
    const outcomes = await Promise.allSettled(
      runs.map((runId) => backend.commitActivation(commitOf(runId, 1, { events: [event(2), event(3)] }))),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/UNIQUE|PRIMARY KEY|constraint/i);
    for (const i of [0, 2]) {
      const history = await backend.getHistory(runs[i]!);
      expect(history.map((e) => [e.seq, e.body?.[0]])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      expect((await backend.inspect.getRun(runs[i]!))?.lastSeq).toBe(3);
    }
    // q is untouched: its run row still at 1 (the planted row is the corruption it was given).
    expect((await backend.inspect.getRun(runs[1]!))?.lastSeq).toBe(1);
    await backend.close();
  });

  describe("lock waits", () => {
    it("a write waits while another connection holds the lock, without blocking the event loop", async () => {
      const path = freshPath();
      const backend = new SqliteBackend({ path, busyTimeoutMs: 5000 });
      const other = new Database(path);
      other.exec("BEGIN IMMEDIATE");
      // Released by a timer: only possible if the waiting write leaves the event loop free.
      setTimeout(() => other.exec("COMMIT"), 150);
      const { created } = await backend.startWorkflow(startReq("waited"));
      expect(created).toBe(true);
      other.close();
      await backend.close();
    });

    it("past the busy timeout the write fails with a typed error and nothing is written", async () => {
      const path = freshPath();
      const backend = new SqliteBackend({ path, busyTimeoutMs: 100 });
      const other = new Database(path);
      other.exec("BEGIN IMMEDIATE");
      const err = await rejection(backend.startWorkflow(startReq("never")));
      other.exec("ROLLBACK");
      other.close();
      expect(SpoolError.is(err)).toBe(true);
      expect((err as Error).message).toMatch(/stayed locked by another connection .* \(100 ms\)/);
      expect(await backend.inspect.getLatestRun("never")).toBeNull();
      await backend.close();
    });
  });

  describe("failure atomicity", () => {
    it("maps a full database to StorageFullError and writes nothing", async () => {
      const path = freshPath();
      const backend = new SqliteBackend({ path, clock: () => T0 });
      const { runId } = await backend.startWorkflow(startReq("big"));
      const task = (await backend.claimWorkflowTask({
        workerId: "w",
        workflowNames: ["wf"],
        leaseMs: 60_000,
      }))!;
      const db = connectionOf(backend);
      const pages = db.pragma("page_count", { simple: true }) as number;
      db.pragma(`max_page_count = ${pages + 2}`);

      const big = new Uint8Array(1 << 20).fill(7);
      const commit = commitOf(runId, 1, {
        fence: task.fence,
        events: [{ seq: 2, ts: T0, type: "SideEffect", step: 1, body: big }],
        activities: [
          { step: 2, name: "act", input: big, options: bytes(1), timeoutMs: 1000, heartbeatTimeoutMs: 0 },
        ],
      });
      const err = await rejection(backend.commitActivation(commit));
      expect(err).toBeInstanceOf(StorageFullError);
      expect((err as Error).message).toMatch(/free disk space or raise the limit/);
      expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(1);
      expect(await backend.getHistory(runId)).toHaveLength(1);
      expect(await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] })).toBeNull();

      db.pragma("max_page_count = 1073741823");
      expect((await backend.commitActivation(commit)).lastSeq).toBe(2);
      await backend.close();
    });

    it("rolls back an activation that fails half-way (duplicate activity step)", async () => {
      const { backend } = open();
      const { runId } = await backend.startWorkflow(startReq("dup"));
      const task = (await backend.claimWorkflowTask({
        workerId: "w",
        workflowNames: ["wf"],
        leaseMs: 60_000,
      }))!;
      const act = {
        step: 1,
        name: "act",
        input: bytes(1),
        options: bytes(1),
        timeoutMs: 1000,
        heartbeatTimeoutMs: 0,
      };
      const err = await rejection(
        backend.commitActivation(
          commitOf(runId, 1, {
            fence: task.fence,
            events: [{ seq: 2, ts: T0, type: "ActivityScheduled", step: 1, body: bytes(1) }],
            activities: [act, act],
          }),
        ),
      );
      expect(SpoolError.is(err)).toBe(true);
      expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(1);
      expect(await backend.getHistory(runId)).toHaveLength(1);
      expect(await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] })).toBeNull();
      await backend.close();
    });
  });

  describe("worker registry on one machine", () => {
    it("a worker process killed with SIGKILL is found dead at once by its process; its leases are released with new fences", async () => {
      const path = freshPath();
      const backend = new SqliteBackend({ path });
      const { runId } = await backend.startWorkflow(startReq("held"));
      const setup = (await backend.claimWorkflowTask({
        workerId: "setup",
        workflowNames: ["wf"],
        leaseMs: 1000,
      }))!;
      await backend.commitActivation(
        commitOf(runId, 1, {
          fence: setup.fence,
          events: [{ seq: 2, ts: backend.now(), type: "ActivityScheduled", step: 1, body: bytes(1) }],
          activities: [
            {
              step: 1,
              name: "act",
              input: bytes(1),
              options: bytes(1),
              timeoutMs: 300_000,
              heartbeatTimeoutMs: 0,
            },
          ],
        }),
      );
      await backend.signalWorkflow({ workflowId: "held", body: bytes(2) }); // the run's task is ready again
      const holder = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          fileURLToPath(new URL("../packages/sqlite/test/fixtures/lease-holder.ts", import.meta.url)),
          path,
          "holder",
        ],
        { cwd: fileURLToPath(new URL("..", import.meta.url)), stdio: ["ignore", "pipe", "inherit"] },
      );
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        holder.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(out.trim());
        });
        holder.once("exit", (code) => reject(new Error(`lease holder exited early (${code})`)));
      });
      const held = JSON.parse(line) as {
        workflowTasks: { runId: string; fence: number }[];
        activityTasks: { taskId: string; fence: number; attempt: number; leaseExpiresAt: number }[];
      };
      expect(held.workflowTasks.map((t) => t.runId)).toEqual([runId]);
      expect(held.activityTasks).toHaveLength(1);
      // Alive: nothing is released, though its heartbeat is never refreshed.
      expect((await backend.releaseDeadWorkers()).workers).toEqual([]);
      expect((await backend.inspect.workers()).find((w) => w.workerId === "holder")?.status).toBe("live");

      const exited = new Promise((r) => holder.once("exit", r));
      holder.kill("SIGKILL");
      await exited;
      // No clock moves: the leases (an hour for the workflow task, five minutes for the attempt) are
      // all still valid, yet the dead process is recognised at once.
      const swept = await backend.releaseDeadWorkers();
      expect(swept).toEqual({ workers: ["holder"], workflowTasks: 1, activityTasks: 1 });
      expect(await backend.releaseDeadWorkers(), "each death is released once").toEqual({
        workers: [],
        workflowTasks: 0,
        activityTasks: 0,
      });
      expect((await backend.inspect.workers()).find((w) => w.workerId === "holder")?.status).toBe("dead");
      const attempt = (await backend.claimActivityTask({ workerId: "me", activityNames: ["act"] }))!;
      expect(attempt.attempt).toBe(2);
      expect(attempt.fence).toBeGreaterThan(held.activityTasks[0]!.fence + 1);
      expect(backend.now()).toBeLessThan(held.activityTasks[0]!.leaseExpiresAt);
      const task = (await backend.claimWorkflowTask({
        workerId: "me",
        workflowNames: ["wf"],
        leaseMs: 1000,
      }))!;
      expect(task.run.runId).toBe(runId);
      expect(task.fence).toBeGreaterThan(held.workflowTasks[0]!.fence + 1);
      // The dead holder's fences are stale: had it only stalled, its late calls would be refused.
      expect(
        await rejection(
          backend.completeActivityTask(
            { taskId: held.activityTasks[0]!.taskId, fence: held.activityTasks[0]!.fence },
            { type: "ActivityCompleted", body: bytes(1) },
          ),
        ),
      ).toBeInstanceOf(ConflictError);
      await backend.close();
    }, 30_000);
  });

  describe("wall-clock steps (default clock)", () => {
    it("a step back or forward of an hour moves pending timers and leases by the step: a 5 s timer stays 5 s away, a lease is not stolen", async () => {
      const path = freshPath();
      const warnings: string[] = [];
      const backend = new SqliteBackend({ path, onWarning: (m) => warnings.push(m) });
      const { runId } = await backend.startWorkflow(startReq("sleeper"));
      const task = (await backend.claimWorkflowTask({
        workerId: "w",
        workflowNames: ["wf"],
        leaseMs: 60_000,
      }))!;
      await backend.commitActivation(
        commitOf(runId, 1, {
          fence: task.fence,
          events: [{ seq: 2, ts: backend.now(), type: "ActivityScheduled", step: 2, body: bytes(1) }],
          timers: [{ step: 1, dueAt: backend.now() + 5_000 }],
          activities: [
            {
              step: 2,
              name: "act",
              input: bytes(1),
              options: bytes(1),
              timeoutMs: 10_000,
              heartbeatTimeoutMs: 0,
            },
          ],
        }),
      );
      const attempt = (await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] }))!;
      const db = connectionOf(backend);
      const untilDue = async () =>
        (db.prepare("SELECT due_at FROM timers").get() as { due_at: number }).due_at - backend.now();
      const before = await untilDue();
      expect(before).toBeGreaterThan(4_000);

      const realNow = Date.now.bind(Date);
      for (const step of [-3_600_000, 3_600_000]) {
        const shift = vi.spyOn(Date, "now").mockImplementation(() => realNow() + step);
        try {
          backend.now(); // sees the step; the next write reconciles it
          await backend.signalWorkflow({ workflowId: "sleeper", body: bytes(3) });
          // Wall time moved by an hour; the timer is still about 5 s away and nothing is due.
          expect(Math.abs(backend.now() - Date.now())).toBeLessThan(1_000);
          const left = await untilDue();
          expect(left).toBeGreaterThan(before - 2_000);
          expect(left).toBeLessThanOrEqual(before);
          expect(await backend.fireDueTimers(10)).toBe(0);
          expect(await backend.claimActivityTask({ workerId: "thief", activityNames: ["act"] })).toBeNull();
        } finally {
          shift.mockRestore();
        }
        // Back to the real clock: a step the other way, reconciled the same way.
        backend.now();
        await backend.signalWorkflow({ workflowId: "sleeper", body: bytes(4) });
        expect(Math.abs(backend.now() - Date.now())).toBeLessThan(1_000);
        expect(await backend.fireDueTimers(10)).toBe(0);
      }
      expect(warnings.length).toBe(4);
      expect(warnings[0]).toMatch(/wall clock stepped by -\d+ ms.*moved 1 timer\(s\)/s);
      // An hour, give or take the milliseconds between the wall and monotonic clock reads (either side).
      const stepMs = Number(/stepped by (-\d+) ms/.exec(warnings[0]!)![1]);
      expect(Math.abs(stepMs + 3_600_000), `measured step ${stepMs} ms`).toBeLessThan(100);
      // The original holder's lease is intact: it can still heartbeat and complete.
      await backend.heartbeatActivityTask(attempt, 10_000);
      await backend.completeActivityTask(attempt, { type: "ActivityCompleted", body: bytes(5) });

      // Another backend on the file (another process, same machine) adopts the anchor, not the wall clock.
      const other = new SqliteBackend({ path });
      expect(Math.abs(other.now() - backend.now())).toBeLessThan(1_000);
      await other.close();
      await backend.close();
    });
  });

  describe("sharing one file", () => {
    it("two connections never hand out the same workflow task", async () => {
      const path = freshPath();
      let t = T0;
      const a = new SqliteBackend({ path, clock: () => t });
      const b = new SqliteBackend({ path, clock: () => t });
      for (let i = 0; i < 30; i++) await (i % 2 ? a : b).startWorkflow(startReq(`wf-${i}`));

      const claims = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 ? a : b).claimWorkflowTask({
            workerId: i % 2 ? "a" : "b",
            workflowNames: ["wf"],
            leaseMs: 1000,
          }),
        ),
      );
      const won = claims.filter((c) => c !== null).map((c) => c.run.runId);
      expect(won).toHaveLength(30);
      expect(new Set(won).size).toBe(30);

      // A lease taken through one connection is honoured by the other until it expires.
      t += 1000;
      const again = await a.claimWorkflowTask({ workerId: "a", workflowNames: ["wf"], leaseMs: 1000 });
      expect(again).not.toBeNull();
      const fenceSeenByB = (await b.claimWorkflowTask({
        workerId: "b",
        workflowNames: ["wf"],
        leaseMs: 1000,
      }))!;
      expect(fenceSeenByB.run.runId).not.toBe(again!.run.runId);
      await a.close();
      await b.close();
    });

    it("processes racing on one file start each id once and claim each task once", async () => {
      const path = freshPath();
      await new SqliteBackend({ path }).close(); // migrate once up front, as a deployment would
      const go = join(dir, `go-${fileCounter}`);
      const racer = fileURLToPath(
        new URL("../packages/sqlite/test/fixtures/claim-racer.ts", import.meta.url),
      );
      const root = fileURLToPath(new URL("..", import.meta.url));
      const ids = 300;
      const workers = ["p1", "p2", "p3"];
      const runs = workers.map((worker) =>
        promisify(execFile)(process.execPath, ["--import", "tsx", racer, path, go, worker, String(ids)], {
          cwd: root,
        }),
      );
      // Release all racers at once, only when every one of them has opened the file.
      while (!workers.every((w) => existsSync(`${go}.${w}.ready`)))
        await new Promise((r) => setTimeout(r, 5));
      writeFileSync(go, "");
      const results = (await Promise.all(runs)).map(
        (r) => JSON.parse(r.stdout) as { created: string[]; claimed: { runId: string }[] },
      );

      const created = results.flatMap((r) => r.created);
      expect(created).toHaveLength(ids);
      expect(new Set(created).size).toBe(ids);
      const claimed = results.flatMap((r) => r.claimed.map((c) => c.runId));
      expect(new Set(claimed).size).toBe(claimed.length);
      expect(new Set(claimed)).toEqual(new Set(created));
    }, 60_000);
  });
});
