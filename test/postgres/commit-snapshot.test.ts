// Guards the one-statement commit against a stale snapshot: a delivery that commits while the commit waits for the run's lock must be seen (the close refused, the task woken), never lost.
import { ConflictError } from "@spool/core";
import { eventChecksum } from "@spool/sql-store";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { commitOf } from "../conformance/commits.ts";
import { adminPool, closeAdmin, openPg, PG_URL } from "./pg-harness.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const sql = async (text: string, values: unknown[] = []) => (await adminPool().query(text, values)).rows;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(closeAdmin);

/**
 * Starts and claims a run, then opens a delivery on a connection of its own that holds the run's
 * lock (as every delivery does) with a signal inserted but not committed; `commit` is called while
 * it is held, and the delivery commits once that commit is seen waiting for the lock.
 */
async function raceDelivery(
  commit: (b: ReturnType<typeof openPg>["backend"], runId: string, fence: number) => Promise<unknown>,
) {
  const h = openPg();
  cleanup.push(h.teardown);
  const { backend, schema } = h;
  const { runId } = await backend.startWorkflow({
    workflowId: "snap",
    workflowName: "wf",
    version: null,
    startedEventBody: bytes(1),
    onConflict: "attach",
  });
  const task = (await backend.claimWorkflowTask({ workerId: "w", workflowNames: ["wf"], leaseMs: 30_000 }))!;
  const delivery = new pg.Client({ connectionString: PG_URL });
  await delivery.connect();
  cleanup.push(() => delivery.end());
  const ts = backend.now();
  await delivery.query("BEGIN");
  await delivery.query(`UPDATE "${schema}".workflow_tasks SET visible_at = visible_at WHERE run_id = $1`, [
    runId,
  ]);
  await delivery.query(
    `INSERT INTO "${schema}".inbox (run_id, ts, type, step, body, crc) VALUES ($1, $2, 'SignalReceived', NULL, $3, $4)`,
    [runId, ts, bytes(7), eventChecksum(0, ts, "SignalReceived", null, bytes(7))],
  );
  const outcome = commit(backend, runId, task.fence).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  // The commit's statement has taken its snapshot and waits for the lock the delivery holds.
  for (let i = 0; ; i++) {
    const waiting = await sql(
      "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
      [`%"${schema}".runs SET last_seq%`],
    );
    if (waiting.length > 0) break;
    if (i > 2000) throw new Error("the commit never waited for the run's lock");
    await sleep(5);
  }
  await delivery.query("COMMIT");
  return { backend, schema, runId, result: await outcome };
}

describe("a delivery committed while a commit waits for the run's lock", () => {
  it("refuses to close the run over it, and the signal stays in the inbox", async () => {
    const { backend, runId, result } = await raceDelivery((b, runId, fence) =>
      b.commitActivation(
        commitOf(runId, 1, {
          fence,
          events: [{ seq: 2, ts: b.now(), type: "WorkflowCompleted", step: null, body: bytes(0) }],
          close: { status: "completed", result: bytes(0) },
        }),
      ),
    );
    expect(result.ok).toBe(false);
    expect(result.ok ? null : result.error).toBeInstanceOf(ConflictError);
    expect(String(result.ok ? "" : result.error)).toMatch(/new inbound events wait in its inbox/);
    expect((await backend.inspect.getRun(runId))?.status).toBe("running");
    expect((await backend.getHistory(runId)).map((e) => e.seq)).toEqual([1]);
    expect((await backend.getInbox(runId)).map((e) => Array.from(e.body!))).toEqual([[7]]);
  });

  it("wakes the task it settles, so the signal is claimed next", async () => {
    const { backend, schema, runId, result } = await raceDelivery((b, runId, fence) =>
      b.commitActivation(
        commitOf(runId, 1, {
          fence,
          events: [{ seq: 2, ts: b.now(), type: "TimerStarted", step: 1, body: bytes(0) }],
          timers: [{ step: 1, dueAt: b.now() + 60_000 }],
        }),
      ),
    );
    expect(result.ok).toBe(true);
    const [row] = await sql(
      `SELECT visible_at, lease_owner FROM "${schema}".workflow_tasks WHERE run_id = $1`,
      [runId],
    );
    expect(row.lease_owner).toBeNull();
    expect(row.visible_at).not.toBeNull();
    const next = await backend.claimWorkflowTask({ workerId: "w", workflowNames: ["wf"], leaseMs: 30_000 });
    expect(next?.run.runId).toBe(runId);
    expect(next?.inbox.map((e) => Array.from(e.body!))).toEqual([[7]]);
    expect((await backend.getHistory(runId)).map((e) => e.seq)).toEqual([1, 2]);
  });
});
