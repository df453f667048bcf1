// Guards against bad input touching stored state: oversized and unserialisable payloads, schema failures, signals to unknown or closed runs, duplicate starts and a cancel during retry back-off each give their documented typed error (or outcome) and leave the store exactly as it was.
import Database from "better-sqlite3";
import {
  CancelledError,
  Client,
  defineActivity,
  defineSignal,
  defineWorkflow,
  PayloadTooLargeError,
  RunNotFoundError,
  ValidationError,
  WorkflowAlreadyStartedError,
  WorkflowFailedError,
} from "spool";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type E2E, e2e, waitFor } from "../e2e/support.ts";

let env: E2E | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const poke = defineSignal("bad2.poke", z.object({ v: z.any() }));
const strict = defineSignal("bad2.strict", z.object({ n: z.number().int() }));
const waits = defineWorkflow(
  { name: "bad2.waits", input: z.object({ label: z.string() }), output: z.string(), signals: [poke, strict] },
  async function* ({ label }) {
    const p = yield* poke.wait();
    return `${label}:${JSON.stringify(p.v)}`;
  },
);
const quick = defineWorkflow(
  { name: "bad2.quick", input: z.object({}), output: z.string() },
  async function* () {
    return "done";
  },
);
const bigResult = defineWorkflow(
  { name: "bad2.big-result", input: z.object({ size: z.number() }), output: z.string() },
  async function* ({ size }) {
    return "x".repeat(size);
  },
);
let failures = 0;
const alwaysFails = defineActivity(
  {
    name: "bad2.always-fails",
    input: z.object({}),
    output: z.string(),
    retry: { initialInterval: "20s", maxAttempts: 5 },
  },
  async () => {
    failures++;
    throw new Error(`flaky dependency (failure ${failures})`);
  },
);
const retrying = defineWorkflow(
  { name: "bad2.retrying", input: z.object({}), output: z.string() },
  async function* () {
    return yield* alwaysFails({});
  },
);

/** Every row of every table, so "nothing was written" can be checked exactly. */
function snapshot(path: string): string {
  const raw = new Database(path, { readonly: true });
  try {
    expect(raw.pragma("integrity_check", { simple: true })).toBe("ok");
    const tables = ["runs", "history", "inbox", "workflow_tasks", "activity_tasks", "timers"];
    return JSON.stringify(tables.map((t) => raw.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()));
  } finally {
    raw.close();
  }
}

/** Waits until the worker has nothing left to do (every workflow task idle), so snapshots are stable. */
async function settled(path: string): Promise<void> {
  await waitFor(() => {
    const raw = new Database(path, { readonly: true });
    try {
      const busy = raw
        .prepare("SELECT count(*) AS n FROM workflow_tasks WHERE visible_at IS NOT NULL")
        .get() as {
        n: number;
      };
      return busy.n === 0;
    } finally {
      raw.close();
    }
  });
}

async function rejected(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(r, "the call must fail").not.toBeNull();
  return r!;
}

describe("bad input leaves the store intact", () => {
  it("signals: oversized, unserialisable, failing the schema, to unknown and to closed runs", async () => {
    env = await e2e({ workflows: [waits, quick] });
    const h = await env.client.start(waits, { label: "a" }, { id: "waiter" });
    const done = await env.client.start(quick, {}, { id: "closed" });
    await done.result({ timeout: 10_000 });
    await settled(env.path);
    const small = new Client({ backend: env.backend, maxPayloadBytes: 512, workflows: [waits] });
    const before = snapshot(env.path);

    const big = await rejected(small.getHandle<typeof waits>("waiter").signal(poke, { v: "x".repeat(1000) }));
    expect(PayloadTooLargeError.is(big)).toBe(true);
    expect(big.message).toContain("maxPayloadBytes");
    const fn = await rejected(h.signal(poke, { v: { nested: [() => 1] } }));
    expect(ValidationError.is(fn)).toBe(true);
    expect(fn.message).toMatch(/v\.nested\[0\]/);
    const schema = await rejected(h.signal(strict, { n: 1.5 }));
    expect(ValidationError.is(schema)).toBe(true);
    const unknown = await rejected(env.client.getHandle("no-such-id").signal(poke, { v: 1 }));
    expect(RunNotFoundError.is(unknown)).toBe(true);
    const closed = await rejected(env.client.getHandle("closed").signal(poke, { v: 1 }));
    expect(RunNotFoundError.is(closed)).toBe(true);
    expect(snapshot(env.path), "nothing was written").toBe(before);

    // The run is unharmed: a good signal still completes it.
    await h.signal(poke, { v: 42 });
    expect(await h.result({ timeout: 10_000 })).toBe("a:42");
  });

  it("starts: schema failures, oversized input, duplicate ids and an id owned by another workflow", async () => {
    env = await e2e({ workflows: [waits, quick] });
    const first = await env.client.start(waits, { label: "one" }, { id: "dup" });
    await settled(env.path);
    const small = new Client({ backend: env.backend, maxPayloadBytes: 512 });
    const before = snapshot(env.path);

    // biome-ignore lint/suspicious/noExplicitAny: a wrong input type on purpose
    const schema = await rejected(env.client.start(waits, { label: 7 } as any, { id: "schema" }));
    expect(ValidationError.is(schema)).toBe(true);
    expect(schema.message).toMatch(/label/);
    const big = await rejected(small.start(waits, { label: "x".repeat(1000) }, { id: "big" }));
    expect(PayloadTooLargeError.is(big)).toBe(true);
    const again = await env.client.start(waits, { label: "one" }, { id: "dup" });
    expect(again.runId, "a duplicate start attaches to the run").toBe(first.runId);
    const differs = await rejected(env.client.start(waits, { label: "two" }, { id: "dup" }));
    expect(WorkflowAlreadyStartedError.is(differs), "a different input is refused").toBe(true);
    expect(differs.message).toMatch(/started with a different input/);
    const anyway = await env.client.start(waits, { label: "two" }, { id: "dup", onConflict: "useExisting" });
    expect(anyway.runId).toBe(first.runId);
    const fail = await rejected(env.client.start(waits, { label: "two" }, { id: "dup", onConflict: "fail" }));
    expect(WorkflowAlreadyStartedError.is(fail)).toBe(true);
    const other = await rejected(env.client.start(quick, {}, { id: "dup" }));
    expect(WorkflowAlreadyStartedError.is(other)).toBe(true);
    expect(other.message).toMatch(/belongs to a run of "bad2\.waits"/);
    expect(snapshot(env.path), "nothing was written").toBe(before);
  });

  it("a workflow result over the size limit parks only that run with a typed error", async () => {
    env = await e2e({ workflows: [bigResult, quick], maxPayloadBytes: 1024 });
    const bad = await env.client.start(bigResult, { size: 5000 }, { id: "big-result" });
    const ok = await env.client.start(quick, {}, { id: "fine" });
    expect(await ok.result({ timeout: 10_000 })).toBe("done");
    await waitFor(async () => (await bad.describe()).status === "blocked");
    const d = await bad.describe();
    expect(PayloadTooLargeError.is(d.error)).toBe(true);
    expect(
      (await bad.history()).map((e) => e.type),
      "nothing recorded for it",
    ).toEqual(["WorkflowStarted"]);
  });

  it("cancellation during an activity's retry back-off ends the run at once; the activity never runs again", async () => {
    failures = 0;
    env = await e2e({ workflows: [retrying], activities: [alwaysFails] });
    const h = await env.client.start(retrying, {}, { id: "backing-off" });
    // Attempt 1 failed; attempt 2 is 20 s away.
    await waitFor(() => failures === 1);
    const taskRow = () => {
      const raw = new Database(env!.path, { readonly: true });
      try {
        return raw.prepare("SELECT visible_at, lease_owner FROM activity_tasks").get() as {
          visible_at: number;
          lease_owner: string | null;
        };
      } finally {
        raw.close();
      }
    };
    await waitFor(() => taskRow().lease_owner === null); // the worker recorded the retry
    const task = taskRow();
    expect(task.lease_owner, "waiting out its back-off, unleased").toBeNull();
    expect(task.visible_at).toBeGreaterThan(Date.now() + 10_000);

    expect(await h.cancel("no longer needed")).toEqual({ outcome: "requested", status: "running" });
    const err = await rejected(h.result({ timeout: 5_000 }));
    expect(WorkflowFailedError.is(err)).toBe(true);
    expect((err as WorkflowFailedError).status).toBe("cancelled");
    expect(CancelledError.is(err.cause)).toBe(true);
    const after = new Database(env.path, { readonly: true });
    const left = after.prepare("SELECT count(*) AS n FROM activity_tasks").get() as { n: number };
    const integrity = after.pragma("integrity_check", { simple: true });
    after.close();
    expect(left.n, "the retry was withdrawn").toBe(0);
    expect(integrity).toBe("ok");
    expect(failures, "no attempt after the cancel").toBe(1);
    const types = (await h.history()).map((e) => e.type);
    expect(types).toContain("CancelRequested");
    expect(types.at(-1)).toBe("WorkflowCancelled");
    expect(await h.cancel(), "cancelling again is a no-op that says so").toEqual({
      outcome: "alreadyClosed",
      status: "cancelled",
    });
  });
});
