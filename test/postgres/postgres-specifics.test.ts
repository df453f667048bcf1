// Guards the PostgreSQL backend's own failure modes: unsafe concurrent migrations, worker clocks leaking into leases, undetected corrupt rows, lost signals when a delivery races a close, double timer sweeps, unretried deadlocks, partial writes, and connection drops that crash or lose work.
import { randomBytes } from "node:crypto";
import {
  ConfigurationError,
  ConflictError,
  HistoryCorruptError,
  InvalidOptionsError,
  RunNotFoundError,
  SpoolError,
  StorageFullError,
  WorkflowAlreadyStartedError,
} from "@spool/core";
import { MIGRATIONS, PostgresBackend, SCHEMA_VERSION } from "@spool/postgres";
import pg from "pg";
import { Client, silentLogger, Worker } from "spool";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { ADVISORY_LOCK_CLASS, advisoryLockKey } from "../../packages/postgres/src/migrations.ts";
import { commitOf } from "../conformance/commits.ts";
import { scaleStep, tenSteps, tenStepsResult } from "./fixtures/workflows.ts";
import { adminPool, closeAdmin, dropSchema, freshSchema, openPg, PG_URL } from "./pg-harness.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const sql = async (text: string, values: unknown[] = []) => (await adminPool().query(text, values)).rows;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Backends and schemas made by a test, closed and dropped after it. */
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(closeAdmin);

/** A backend on a fresh (or given) schema, cleaned up after the test. */
function open(options: ConstructorParameters<typeof PostgresBackend>[0] = {}) {
  const h = openPg(options);
  cleanup.push(h.teardown);
  return h;
}

/** Another backend (its own pool and LISTEN connection: another process, in effect) on a schema. */
function sibling(schema: string, options: ConstructorParameters<typeof PostgresBackend>[0] = {}) {
  const b = new PostgresBackend({ connectionString: PG_URL, poolSize: 3, ...options, schema });
  cleanup.push(() => b.close());
  return b;
}

/** A connection string whose sessions can be found (and terminated) by application_name. */
function tagged(): { url: string; app: string } {
  const app = `spool_fault_${randomBytes(4).toString("hex")}`;
  return { url: `${PG_URL}${PG_URL.includes("?") ? "&" : "?"}application_name=${app}`, app };
}

async function terminate(app: string): Promise<number> {
  const rows = await sql(
    "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
    [app],
  );
  return rows.length;
}

const startReq = (workflowId: string, workflowName = "wf") => ({
  workflowId,
  workflowName,
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

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}

const claim = (backend: PostgresBackend, names = ["wf"], leaseMs = 60_000) =>
  backend.claimWorkflowTask({ workerId: "w", workflowNames: names, leaseMs });

describe("PostgresBackend (PostgreSQL specifics)", () => {
  describe("schema and migrations", () => {
    it("applies each migration once when several processes initialise a fresh schema at once", async () => {
      const schema = freshSchema("mig");
      cleanup.push(() => dropSchema(schema));
      const racers = Array.from({ length: 6 }, () => sibling(schema, { poolSize: 1 }));
      await Promise.all(racers.map((b) => b.init()));
      expect(await sql(`SELECT version, name FROM "${schema}".spool_migrations ORDER BY version`)).toEqual(
        MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
      );
      const tables = await sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
        [schema],
      );
      expect(tables.map((t) => t.table_name)).toEqual([
        "activity_tasks",
        "history",
        "inbox",
        "runs",
        "signal_requests",
        "spool_migrations",
        "timers",
        "workers",
        "workflow_tasks",
      ]);
      const { runId } = await racers[0]!.startWorkflow(startReq("keep-me"));
      expect((await racers[5]!.inspect.getRun(runId))?.workflowId).toBe("keep-me");
    });

    it("upgrades a schema written at version 2 in place: its runs count as unknown input and unverified rows", async () => {
      const { backend, schema } = open();
      const { runId } = await backend.startWorkflow({
        ...startReq("from-v2"),
        inputHash: "00000000000000aa",
      });
      await backend.close();
      // What version 2 left: none of version 3's columns, two migrations recorded.
      await sql(
        `ALTER TABLE "${schema}".runs DROP COLUMN input_hash, DROP COLUMN crc, DROP COLUMN buffered_signals;
         ALTER TABLE "${schema}".activity_tasks DROP COLUMN crc;
         DROP TABLE "${schema}".workers;
         DELETE FROM "${schema}".spool_migrations WHERE version > 2`,
      );
      const upgraded = sibling(schema);
      await upgraded.init();
      expect(await sql(`SELECT version FROM "${schema}".spool_migrations ORDER BY version`)).toEqual(
        MIGRATIONS.map((m) => ({ version: m.version })),
      );
      expect(await sql(`SELECT input_hash, crc, buffered_signals FROM "${schema}".runs`)).toEqual([
        { input_hash: null, crc: null, buffered_signals: 0 },
      ]);
      // No stored fingerprint: a start with any input attaches, as before the upgrade.
      expect(
        await upgraded.startWorkflow({ ...startReq("from-v2"), inputHash: "ffffffffffffffff" }),
      ).toMatchObject({
        runId,
        created: false,
      });
      expect((await upgraded.inspect.getRun(runId))?.status).toBe("running");
      await upgraded.signalWorkflow({ workflowId: "from-v2", body: bytes(7) });
      const task = await claim(upgraded);
      await upgraded.commitActivation({
        ...commitOf(runId, 1),
        fence: task!.fence,
        consumedInbox: task!.inbox.map((e) => e.id),
        events: [
          { seq: 2, ts: upgraded.now(), type: "SignalReceived", step: null, body: task!.inbox[0]!.body },
          { seq: 3, ts: upgraded.now(), type: "WorkflowCompleted", step: null, body: bytes(9) },
        ],
        close: { status: "completed", result: bytes(9) },
      });
      // Its status change wrote a checksum: from then on the row is verified.
      expect((await sql(`SELECT crc FROM "${schema}".runs`))[0]?.crc).not.toBeNull();
      expect((await upgraded.inspect.getRun(runId))?.status).toBe("completed");
    });

    it("refuses a schema migrated by a newer release", async () => {
      const { backend, schema } = open();
      await backend.init();
      await sql(`INSERT INTO "${schema}".spool_migrations (version, name) VALUES ($1, 'from the future')`, [
        SCHEMA_VERSION + 1,
      ]);
      const newer = sibling(schema);
      const err = await rejection(newer.init());
      expect(err).toBeInstanceOf(ConfigurationError);
      expect((err as Error).message).toMatch(/newer Spool release/);
    });

    it("rejects invalid options with InvalidOptionsError", () => {
      for (const schema of ["bad-name", "1abc", "x".repeat(49), 'a"b']) {
        expect(() => new PostgresBackend({ connectionString: PG_URL, schema })).toThrow(InvalidOptionsError);
      }
      expect(() => new PostgresBackend({ connectionString: PG_URL, poolSize: 0 })).toThrow(
        InvalidOptionsError,
      );
      expect(() => new PostgresBackend({ connectionString: PG_URL, workflowLeaseMs: -1 })).toThrow(
        InvalidOptionsError,
      );
    });

    it("works without prepared statements and without LISTEN (for transaction-mode poolers)", async () => {
      const { backend } = open({ preparedStatements: false, listen: false });
      expect(backend.notifiesAcrossProcesses).toBe(false);
      const seen: string[] = [];
      backend.subscribe((n) => seen.push(n.kind));
      const { runId } = await backend.startWorkflow(startReq("plain"));
      const task = (await claim(backend))!;
      await backend.commitActivation(
        commitOf(runId, 1, {
          fence: task.fence,
          events: [{ seq: 2, ts: backend.now(), type: "WorkflowCompleted", step: null, body: bytes(1) }],
          close: { status: "completed", result: bytes(1) },
        }),
      );
      expect((await backend.inspect.getRun(runId))?.status).toBe("completed");
      expect(seen).toEqual(["workflow-task", "run-closed"]); // this process's own commits still notify
      expect(backend.diagnostics.listenConnects).toBe(0);
    });

    it("rejects every call after close(); close() is idempotent and leaves a passed-in pool open", async () => {
      const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
      const { schema } = open();
      const backend = new PostgresBackend({ pool, schema });
      await backend.startWorkflow(startReq("a"));
      await backend.close();
      await backend.close();
      const err = await rejection(backend.startWorkflow(startReq("b")));
      expect(SpoolError.is(err)).toBe(true);
      expect((err as Error).message).toMatch(/closed/);
      expect(SpoolError.is(await rejection(backend.inspect.getRun("x")))).toBe(true);
      expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      await pool.end();
    });
  });

  describe("the database clock", () => {
    it("computes leases and due times on the database clock, not on a skewed worker clock", async () => {
      const { backend, schema } = open();
      await backend.init();
      const realNow = Date.now.bind(Date);
      // A worker whose clock is an hour behind: leases it computed itself would be long expired.
      const spy = vi.spyOn(Date, "now").mockImplementation(() => realNow() - 3_600_000);
      let skewed: PostgresBackend;
      try {
        skewed = sibling(schema);
        await skewed.init();
        const [{ db }] = await sql("SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS db");
        expect(Math.abs(skewed.now() - db)).toBeLessThan(1_000);

        await skewed.startWorkflow(startReq("order-1"));
        expect(await claim(skewed, ["wf"], 60_000)).not.toBeNull();
        const task = await skewed.startWorkflow(startReq("order-2"));
        const held = (await claim(skewed))!;
        expect(held.run.runId).toBe(task.runId);
        await skewed.commitActivation(
          commitOf(task.runId, 1, {
            fence: held.fence,
            events: [{ seq: 2, ts: skewed.now(), type: "TimerStarted", step: 1, body: bytes(1) }],
            timers: [{ step: 1, dueAt: skewed.now() + 60_000 }],
          }),
        );
      } finally {
        spy.mockRestore();
      }
      // Another worker with a correct clock sees a live lease and a timer not yet due.
      expect(await claim(backend)).toBeNull();
      expect(await backend.fireDueTimers(10)).toBe(0);
      // The estimate is taken against the monotonic clock: the skewed wall clock does not enter it.
      expect(Math.abs(skewed!.diagnostics.clockSkewMs - backend.diagnostics.clockSkewMs)).toBeLessThan(1_000);
    });

    it("a step of the worker's wall clock while it runs moves neither now() nor the leases it computes", async () => {
      const { backend, schema } = open();
      await backend.init();
      const worker = sibling(schema);
      await worker.init();
      const realNow = Date.now.bind(Date);
      for (const step of [3_600_000, -3_600_000]) {
        const spy = vi.spyOn(Date, "now").mockImplementation(() => realNow() + step);
        try {
          const [{ db }] = await sql("SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS db");
          expect(Math.abs(worker.now() - db), `after a step of ${step} ms`).toBeLessThan(1_000);
        } finally {
          spy.mockRestore();
        }
      }
    });
  });

  describe("worker registry", () => {
    it("a worker whose heartbeat is older than its timeout (database clock) is presumed dead: its leases are released now", async () => {
      const { schema, backend: first } = open();
      await first.init();
      // Two processes on one database clock (the test offset moves both).
      let offset = 0;
      const clock = { advance: (ms: number) => (offset += ms) };
      const backend = sibling(schema, { clock: { offsetMs: () => offset } });
      const other = sibling(schema, { clock: { offsetMs: () => offset } });
      await other.registerWorker({
        workerId: "quiet",
        incarnation: "q1",
        workflowNames: ["wf"],
        activityNames: ["act"],
        heartbeatIntervalMs: 1_000,
        deadAfterMs: 5_000,
      });
      const { runId } = await backend.startWorkflow(startReq("held"));
      const setup = (await claim(backend))!;
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
      const attempt = (await other.claimActivityTask({ workerId: "quiet", activityNames: ["act"] }))!;
      expect(attempt.attempt).toBe(1);
      // Heartbeats keep it alive, on the database clock.
      clock.advance(4_000);
      expect(await other.heartbeatWorker("quiet")).toBe(true);
      clock.advance(4_000);
      expect((await backend.releaseDeadWorkers()).workers).toEqual([]);
      // Silent for longer than its timeout: dead, though its attempt's lease has minutes left.
      clock.advance(2_000);
      const swept = await backend.releaseDeadWorkers();
      expect(swept).toEqual({ workers: ["quiet"], workflowTasks: 0, activityTasks: 1 });
      expect((await backend.inspect.workers()).map((w) => [w.workerId, w.status])).toEqual([
        ["quiet", "dead"],
      ]);
      expect(backend.now()).toBeLessThan(attempt.leaseExpiresAt);
      const again = (await backend.claimActivityTask({ workerId: "me", activityNames: ["act"] }))!;
      expect(again.attempt).toBe(2);
      // It was only stalled: its late completion is refused, and its next heartbeat tells it to rejoin.
      expect(
        await rejection(other.completeActivityTask(attempt, { type: "ActivityCompleted", body: bytes(1) })),
      ).toBeInstanceOf(ConflictError);
      expect(await other.heartbeatWorker("quiet")).toBe(false);
    });

    it("now() estimates the database clock without running ahead of it", async () => {
      const { backend } = open();
      await backend.init();
      for (let i = 0; i < 20; i++) {
        const estimate = backend.now();
        const [{ db }] = await sql(
          "SELECT floor(extract(epoch from clock_timestamp()) * 1000)::float8 AS db",
        );
        expect(estimate).toBeLessThanOrEqual(db);
        expect(db - estimate).toBeLessThan(1_000);
      }
    });
  });

  describe("integrity", () => {
    it("detects a corrupt history body, a changed timestamp and a missing event, only in the damaged run", async () => {
      const { backend, schema } = open();
      const { runId } = await backend.startWorkflow(startReq("damaged"));
      const healthy = await backend.startWorkflow(startReq("healthy"));
      const task = (await claim(backend))!;
      expect(task.run.runId).toBe(runId);
      const ts = backend.now();
      await backend.commitActivation(
        commitOf(runId, 1, {
          fence: task.fence,
          events: [
            { seq: 2, ts, type: "SideEffect", step: 1, body: bytes(10, 20, 30) },
            { seq: 3, ts, type: "SideEffect", step: 2, body: bytes(40) },
          ],
        }),
      );
      const S = `"${schema}"`;
      await sql(`UPDATE ${S}.history SET body = $1 WHERE run_id = $2 AND seq = 2`, [
        Buffer.from([10, 21, 30]),
        runId,
      ]);
      let err = await rejection(backend.getHistory(runId));
      expect(err).toBeInstanceOf(HistoryCorruptError);
      expect(err).toMatchObject({ runId, seq: 2 });
      expect(await rejection(backend.inspect.getHistory(runId))).toBeInstanceOf(HistoryCorruptError);
      expect(await backend.getHistory(healthy.runId)).toHaveLength(1);

      await sql(`UPDATE ${S}.history SET body = $1 WHERE run_id = $2 AND seq = 2`, [
        Buffer.from([10, 20, 30]),
        runId,
      ]);
      expect(await backend.getHistory(runId)).toHaveLength(3);
      await sql(`UPDATE ${S}.history SET ts = ts + 1 WHERE run_id = $1 AND seq = 3`, [runId]);
      expect(await rejection(backend.getHistory(runId))).toMatchObject({ seq: 3 });
      await sql(`UPDATE ${S}.history SET ts = ts - 1 WHERE run_id = $1 AND seq = 3`, [runId]);

      await sql(`DELETE FROM ${S}.history WHERE run_id = $1 AND seq = 2`, [runId]);
      err = await rejection(backend.getHistory(runId));
      expect(err).toMatchObject({ seq: 2 });
      expect((err as Error).message).toMatch(/missing/);
    });

    it("hands a run with a corrupt inbox row to the worker with the error, and keeps the queue moving", async () => {
      const { backend, schema } = open();
      const bad = await backend.startWorkflow(startReq("bad"));
      const good = await backend.startWorkflow(startReq("good"));
      await backend.signalWorkflow({ workflowId: "bad", body: bytes(1, 2) });
      await sql(`UPDATE "${schema}".inbox SET body = $1 WHERE run_id = $2`, [Buffer.from([9, 9]), bad.runId]);
      expect(await rejection(backend.getInbox(bad.runId))).toBeInstanceOf(HistoryCorruptError);
      const first = await claim(backend);
      expect(first?.run.runId).toBe(bad.runId);
      expect(first?.inbox).toEqual([]);
      expect(first?.inboxError).toBeInstanceOf(HistoryCorruptError);
      expect((await claim(backend))?.run.runId).toBe(good.runId);
    });
  });

  describe("failure atomicity and retries", () => {
    /** Makes inserts into history fail with `code`, `times` times (a sequence survives rollbacks). */
    async function injectHistoryFault(schema: string, code: string, times: number) {
      const S = `"${schema}"`;
      await sql(`CREATE SEQUENCE ${S}.fault_seq`);
      await sql(
        `CREATE FUNCTION ${S}.fault() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('${S}.fault_seq') <= ${times} THEN
             RAISE EXCEPTION 'injected fault' USING ERRCODE = '${code}';
           END IF;
           RETURN NEW;
         END $$`,
      );
      await sql(
        `CREATE TRIGGER fault BEFORE INSERT ON ${S}.history FOR EACH ROW EXECUTE FUNCTION ${S}.fault()`,
      );
      return async () => Number((await sql(`SELECT last_value FROM ${S}.fault_seq`))[0].last_value);
    }

    async function claimedRun(backend: PostgresBackend, id: string) {
      const { runId } = await backend.startWorkflow(startReq(id));
      await backend.init();
      const task = (await claim(backend))!;
      expect(task.run.runId).toBe(runId);
      return { runId, task };
    }

    const oneStep = (runId: string, fence: number, ts: number) =>
      commitOf(runId, 1, {
        fence,
        events: [{ seq: 2, ts, type: "ActivityScheduled", step: 1, body: bytes(1) }],
        activities: [
          {
            step: 1,
            name: "act",
            input: bytes(1),
            options: bytes(1),
            timeoutMs: 1000,
            heartbeatTimeoutMs: 0,
          },
        ],
      });

    for (const [code, what] of [
      ["40001", "a serialization failure"],
      ["40P01", "a deadlock"],
    ] as const) {
      it(`re-runs a transaction PostgreSQL aborted with ${what} (${code}), committing it once`, async () => {
        const { backend, schema } = open();
        const { runId, task } = await claimedRun(backend, "retry-me");
        const faults = await injectHistoryFault(schema, code, 2);
        expect((await backend.commitActivation(oneStep(runId, task.fence, backend.now()))).lastSeq).toBe(2);
        expect(await faults()).toBe(3); // two aborted attempts, then the one that committed
        expect((await backend.getHistory(runId)).map((e) => e.type)).toEqual([
          "WorkflowStarted",
          "ActivityScheduled",
        ]);
        expect(await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] })).not.toBeNull();
        expect(await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] })).toBeNull();
      });
    }

    it("gives up after a few attempts with a SpoolError and writes nothing", async () => {
      const { backend, schema } = open();
      const { runId, task } = await claimedRun(backend, "doomed");
      await injectHistoryFault(schema, "40001", 1_000);
      const err = await rejection(backend.commitActivation(oneStep(runId, task.fence, backend.now())));
      expect(SpoolError.is(err)).toBe(true);
      expect(ConflictError.is(err)).toBe(false);
      expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(1);
      expect(await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] })).toBeNull();
    });

    it("maps a full disk (53100) to StorageFullError and writes nothing", async () => {
      const { backend, schema } = open();
      const { runId, task } = await claimedRun(backend, "full");
      await injectHistoryFault(schema, "53100", 1);
      const err = await rejection(backend.commitActivation(oneStep(runId, task.fence, backend.now())));
      expect(err).toBeInstanceOf(StorageFullError);
      expect((err as Error).message).toMatch(/free disk space/);
      expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(1);
      expect(await backend.getHistory(runId)).toHaveLength(1);
      expect(await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] })).toBeNull();
      // Space is back: the same activation commits.
      expect((await backend.commitActivation(oneStep(runId, task.fence, backend.now()))).lastSeq).toBe(2);
    });

    it("rolls back an activation that fails half-way (duplicate activity step)", async () => {
      const { backend } = open();
      const { runId, task } = await claimedRun(backend, "dup");
      const req = oneStep(runId, task.fence, backend.now());
      const err = await rejection(
        backend.commitActivation({ ...req, activities: [req.activities[0]!, req.activities[0]!] }),
      );
      expect(SpoolError.is(err)).toBe(true);
      expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(1);
      expect(await backend.getHistory(runId)).toHaveLength(1);
      expect(await backend.claimActivityTask({ workerId: "w", activityNames: ["act"] })).toBeNull();
    });
  });

  describe("closing", () => {
    it("a closing activation whose child id was taken leaves no inbox row behind", async () => {
      const { backend, schema } = open();
      await backend.startWorkflow(startReq("taken", "child-wf"));
      const { runId } = await backend.startWorkflow(startReq("parent"));
      const task = (await claim(backend, ["wf"]))!;
      const res = await backend.commitActivation(
        commitOf(runId, 1, {
          fence: task.fence,
          events: [
            { seq: 2, ts: backend.now(), type: "ChildStarted", step: 1, body: bytes(1) },
            { seq: 3, ts: backend.now(), type: "WorkflowCompleted", step: null, body: bytes(2) },
          ],
          children: [
            {
              step: 1,
              workflowId: "taken",
              workflowName: "child-wf",
              version: null,
              startedEventBody: bytes(3),
            },
          ],
          close: { status: "completed", result: bytes(2) },
        }),
      );
      expect(res.createdRuns).toEqual([]);
      expect((await backend.inspect.getRun(runId))?.status).toBe("completed");
      expect(await sql(`SELECT id FROM "${schema}".inbox`)).toEqual([]);
    });
  });

  describe("concurrency across connections", () => {
    it("a signal racing a closing commit is either recorded or rejected, never acknowledged and lost", async () => {
      const { backend: a, schema } = open();
      await a.init();
      const b = sibling(schema);
      let recorded = 0;
      let rejected = 0;
      for (let i = 0; i < 40; i++) {
        const name = `race-${i}`;
        const { runId } = await a.startWorkflow(startReq(name, name));
        const task = (await claim(a, [name]))!;
        const [signal, close] = await Promise.allSettled([
          sleep(Math.random() * 2).then(() => b.signalWorkflow({ workflowId: name, body: bytes(i) })),
          a.commitActivation(
            commitOf(runId, 1, {
              fence: task.fence,
              events: [{ seq: 2, ts: a.now(), type: "WorkflowCompleted", step: null, body: bytes(0) }],
              close: { status: "completed", result: bytes(0) },
            }),
          ),
        ]);
        if (signal.status === "fulfilled") {
          // The signal was acknowledged: the close must have been refused, the signal waiting.
          expect(close.status).toBe("rejected");
          expect((close as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
          expect((await a.getInbox(runId)).map((e) => Array.from(e.body!))).toEqual([[i]]);
          expect((await a.inspect.getRun(runId))?.status).toBe("running");
          recorded++;
        } else {
          expect(signal.reason).toBeInstanceOf(RunNotFoundError);
          expect(close.status).toBe("fulfilled");
          rejected++;
        }
      }
      expect(recorded + rejected).toBe(40);
    });

    it("backends on separate connections never hand out the same workflow or activity task", async () => {
      const { backend, schema } = open();
      const others = [sibling(schema), sibling(schema)];
      const all = [backend, ...others];
      for (let i = 0; i < 40; i++) await backend.startWorkflow(startReq(`wf-${i}`));
      const claims = await Promise.all(Array.from({ length: 60 }, (_, i) => claim(all[i % 3]!)));
      const won = claims.filter((c) => c !== null);
      expect(won).toHaveLength(40);
      expect(new Set(won.map((c) => c.run.runId)).size).toBe(40);

      // Each claimed run schedules two activities; racing claims hand each out once.
      await Promise.all(
        won.map((t, i) =>
          all[i % 3]!.commitActivation(
            commitOf(t.run.runId, 1, {
              fence: t.fence,
              events: [1, 2].map((step) => ({
                seq: 1 + step,
                ts: backend.now(),
                type: "ActivityScheduled" as const,
                step,
                body: bytes(step),
              })),
              activities: [1, 2].map((step) => ({
                step,
                name: "act",
                input: bytes(step),
                options: bytes(0),
                timeoutMs: 60_000,
                heartbeatTimeoutMs: 0,
              })),
            }),
          ),
        ),
      );
      const attempts = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          all[i % 3]!.claimActivityTask({ workerId: `w${i % 3}`, activityNames: ["act"] }),
        ),
      );
      const got = attempts.filter((a) => a !== null);
      expect(got).toHaveLength(80);
      expect(new Set(got.map((a) => a.taskId)).size).toBe(80);
    });

    it("concurrent starts of one id from several backends create exactly one run", async () => {
      const { backend, schema } = open();
      const all = [backend, sibling(schema), sibling(schema)];
      const outcomes = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          all[i % 3]!.startWorkflow({ ...startReq(`id-${i % 5}`), onConflict: "fail" }),
        ),
      );
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(5);
      for (const o of outcomes) {
        if (o.status === "rejected") expect(o.reason).toBeInstanceOf(WorkflowAlreadyStartedError);
      }
      const attached = await Promise.all(
        Array.from({ length: 12 }, (_, i) => all[i % 3]!.startWorkflow(startReq("shared"))),
      );
      expect(attached.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(attached.map((r) => r.runId)).size).toBe(1);
    });

    it("only one worker sweeps timers at a time (advisory lock), and each timer fires once", async () => {
      const { backend, schema } = open();
      const runIds: string[] = [];
      for (let i = 0; i < 20; i++) {
        const { runId } = await backend.startWorkflow(startReq(`t-${i}`));
        const task = (await claim(backend))!;
        const now = backend.now();
        await backend.commitActivation(
          commitOf(runId, 1, {
            fence: task.fence,
            events: [1, 2, 3, 4, 5].map((step) => ({
              seq: 1 + step,
              ts: now,
              type: "TimerStarted" as const,
              step,
              body: null,
            })),
            timers: [1, 2, 3, 4, 5].map((step) => ({ step, dueAt: now - step })),
          }),
        );
        runIds.push(runId);
      }
      // While another session holds the sweeping lock, a sweep does nothing.
      const holder = await adminPool().connect();
      try {
        await holder.query("SELECT pg_advisory_lock($1::int, $2::int)", [
          ADVISORY_LOCK_CLASS,
          advisoryLockKey(schema, "timers"),
        ]);
        expect(await backend.fireDueTimers(500)).toBe(0);
        await holder.query("SELECT pg_advisory_unlock($1::int, $2::int)", [
          ADVISORY_LOCK_CLASS,
          advisoryLockKey(schema, "timers"),
        ]);
      } finally {
        holder.release();
      }
      // Four workers sweeping at once, a few timers per sweep: every timer fires exactly once.
      const sweepers = [backend, sibling(schema), sibling(schema), sibling(schema)];
      let fired = 0;
      for (let round = 0; round < 50 && fired < 100; round++) {
        const counts = await Promise.all(sweepers.map((s) => s.fireDueTimers(7)));
        fired += counts.reduce((x, y) => x + y, 0);
      }
      expect(fired).toBe(100);
      for (const runId of runIds) {
        expect((await backend.getInbox(runId)).map((e) => [e.type, e.step])).toEqual(
          [5, 4, 3, 2, 1].map((step) => ["TimerFired", step]),
        );
      }
    });
  });

  describe("notifications across processes", () => {
    it("a commit in one process wakes listeners in another within milliseconds; each hears its own once", async () => {
      const { backend: a, schema } = open();
      await a.init();
      const b = sibling(schema);
      await b.init();
      const seenA: string[] = [];
      const seenB: string[] = [];
      a.subscribe((n) => seenA.push(n.kind === "run-closed" ? `closed:${n.workflowId}` : n.kind));
      b.subscribe((n) => seenB.push(n.kind === "run-closed" ? `closed:${n.workflowId}` : n.kind));
      await waitFor(() => a.diagnostics.listening && b.diagnostics.listening);

      const sentAt = Date.now();
      const { runId } = await a.startWorkflow(startReq("order-1"));
      await waitFor(() => seenB.includes("workflow-task"));
      const latency = Date.now() - sentAt;
      expect(latency).toBeLessThan(5_000); // generous: a wake-up, not a poll interval
      const task = (await claim(b))!;
      await b.commitActivation(
        commitOf(runId, 1, {
          fence: task.fence,
          events: [{ seq: 2, ts: b.now(), type: "WorkflowCompleted", step: null, body: bytes(1) }],
          close: { status: "completed", result: bytes(1) },
        }),
      );
      await waitFor(() => seenA.includes("closed:order-1"));
      await sleep(50);
      // A heard its own start once (locally, not again through LISTEN) and B's close through LISTEN.
      expect(seenA.filter((k) => k === "workflow-task")).toHaveLength(1);
      expect(seenB.filter((k) => k === "closed:order-1")).toHaveLength(1);
    });

    it("re-opens a dropped LISTEN connection and tells listeners to look for work", async () => {
      const { url, app } = tagged();
      const errors: Error[] = [];
      const { backend: a, schema } = open({
        connectionString: url,
        onConnectionError: (e) => errors.push(e),
      });
      await a.init();
      const b = sibling(schema);
      const seen: string[] = [];
      a.subscribe((n) => seen.push(n.kind));
      await waitFor(() => a.diagnostics.listening);
      expect(await terminate(app)).toBeGreaterThan(0);
      await waitFor(() => a.diagnostics.listenConnects >= 2);
      expect(errors.length).toBeGreaterThan(0);
      expect(seen).toEqual(expect.arrayContaining(["workflow-task", "activity-task", "timer"]));
      seen.length = 0;
      await b.startWorkflow(startReq("after-drop"));
      await waitFor(() => seen.includes("workflow-task"));
    });
  });

  describe("connection faults", () => {
    it("a dropped connection fails the call in flight with a transient error, writes nothing, and the next call works", async () => {
      const { url, app } = tagged();
      const { backend, schema } = open({ connectionString: url });
      const { runId } = await backend.startWorkflow(startReq("order-1"));
      // Hold the run's lock so the signal waits inside its transaction, then cut the connection.
      const holder = await adminPool().connect();
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM "${schema}".workflow_tasks WHERE run_id = $1 FOR UPDATE`, [runId]);
      const pending = backend.signalWorkflow({ workflowId: "order-1", body: bytes(7) });
      await waitFor(async () => {
        const rows = await sql(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [app],
        );
        return rows.length > 0;
      });
      await terminate(app);
      const err = await rejection(pending);
      expect(SpoolError.is(err)).toBe(true);
      expect((err as Error).message).toMatch(/lost the connection/);
      await holder.query("ROLLBACK");
      holder.release();
      expect(await backend.getInbox(runId)).toEqual([]);
      await backend.signalWorkflow({ workflowId: "order-1", body: bytes(8) });
      expect((await backend.getInbox(runId)).map((e) => Array.from(e.body!))).toEqual([[8]]);
    });

    it("a worker rides out repeated connection drops: every run completes once, correctly", async () => {
      const { url, app } = tagged();
      const { backend, schema } = open({ connectionString: url });
      const worker = new Worker({
        backend,
        workflows: [tenSteps],
        activities: [scaleStep],
        logger: silentLogger,
        workflowTaskLeaseMs: 2_000,
        pollIntervalMs: { min: 5, max: 100 },
      });
      cleanup.push(() => worker.shutdown());
      await worker.start();
      const client = new Client({ backend });
      const handles = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client.start(tenSteps, { base: i }, { id: `drop-${i}` })),
      );
      let drops = 0;
      const dropping = (async () => {
        for (let i = 0; i < 5; i++) {
          await sleep(150);
          drops += await terminate(app);
        }
      })();
      // The client sees the drops too (as transient SpoolErrors): ask again, as an application would.
      const resultOf = async (h: (typeof handles)[number]): Promise<unknown> => {
        for (;;) {
          try {
            return await h.result({ timeout: 30_000 });
          } catch (err) {
            if (!(err instanceof Error && /lost the connection/.test(err.message))) return err;
          }
        }
      };
      const results = await Promise.all(handles.map(resultOf));
      await dropping;
      expect(drops).toBeGreaterThan(0);
      expect(results).toEqual(handles.map((_, i) => tenStepsResult(i)));
      const dupes = await sql(
        `SELECT run_id, type, step FROM "${schema}".history WHERE step IS NOT NULL
         GROUP BY run_id, type, step HAVING count(*) > 1`,
      );
      expect(dupes).toEqual([]);
    });
  });
});
