import {
  ActivityFailure,
  type Backend,
  Client,
  defineActivity,
  defineWorkflow,
  silentLogger,
  Worker,
} from "spool";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { closeAdmin } from "../postgres/pg-harness.ts";
import { storeCases, waitFor } from "./support.ts";

/** Attempts started, per workflow id; and the releases of the attempts still hanging. */
const started = new Map<string, number[]>();
const hanging: (() => void)[] = [];

/** Ignores its AbortSignal: the first attempt hangs until the test releases it; later ones return. */
const stubborn = defineActivity(
  {
    name: "int.stubborn",
    input: z.object({}),
    output: z.number(),
    timeout: "1s",
    retry: { maxAttempts: 1 },
  },
  async (_input, ctx) => {
    const list = started.get(ctx.info.workflowId) ?? [];
    list.push(ctx.attempt);
    started.set(ctx.info.workflowId, list);
    if (ctx.attempt === 1) await new Promise<void>((r) => hanging.push(r));
    return ctx.attempt;
  },
);

/** Returns the activity's result, or what its failure says (attempt, reason, cause). */
const flow = defineWorkflow(
  { name: "int.flow", input: z.object({ maxAttempts: z.number() }), output: z.string() },
  async function* ({ maxAttempts }) {
    try {
      return `ok attempt ${yield* stubborn({}, { retry: { maxAttempts } })}`;
    } catch (err) {
      if (!ActivityFailure.is(err)) throw err;
      const cause = err.cause as Error;
      return `failed attempt ${err.attempt} ${err.reason}: ${cause.name}: ${cause.message}`;
    }
  },
);

// A SQLite file and PostgreSQL: the two stores with separate processes in mind.
const backends = storeCases(["sqlite-file", "postgres"]);

const workers: Worker[] = [];
const newWorker = async (backend: Backend, opts: { shutdownGraceMs?: number } = {}) => {
  const w = new Worker({
    backend,
    workflows: [flow],
    activities: [stubborn],
    logger: silentLogger,
    pollIntervalMs: { min: 5, max: 50 },
    ...opts,
  });
  workers.push(w);
  await w.start();
  return w;
};

afterEach(async () => {
  for (const r of hanging.splice(0)) r();
  for (const w of workers.splice(0)) await w.shutdown();
});
afterAll(closeAdmin);

describe.each(backends)("an attempt that never reports counts against maxAttempts (%s)", (_name, open) => {
  it("maxAttempts 1: an attempt cut short by shutdown fails the step with the reason; it does not run again", async () => {
    const { backend, teardown } = await open();
    try {
      const id = `int-shutdown-${_name}`;
      const a = await newWorker(backend, { shutdownGraceMs: 50 });
      const handle = await new Client({ backend }).start(flow, { maxAttempts: 1 }, { id });
      await waitFor(() => (started.get(id)?.length ?? 0) === 1);
      await a.shutdown(); // the attempt ignores its AbortSignal: still running when the grace ends
      await newWorker(backend); // another worker takes over the run
      const result = await handle.result({ timeout: 20_000 });
      expect(result).toMatch(
        /^failed attempt 1 retries-exhausted: ActivityInterruptedError: activity "int\.stubborn" attempt 1 of 1 was interrupted by worker shutdown/,
      );
      expect(started.get(id)).toEqual([1]);
      const failed = (await handle.history()).filter((e) => e.type === "ActivityFailed");
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ attempt: 1, reason: "retries-exhausted" });
    } finally {
      await teardown();
    }
  });

  it("maxAttempts 2: the interrupted attempt is attempt 1 of 2, and attempt 2 runs elsewhere", async () => {
    const { backend, teardown } = await open();
    try {
      const id = `int-second-${_name}`;
      const a = await newWorker(backend, { shutdownGraceMs: 50 });
      const handle = await new Client({ backend }).start(flow, { maxAttempts: 2 }, { id });
      await waitFor(() => (started.get(id)?.length ?? 0) === 1);
      await a.shutdown();
      await newWorker(backend);
      expect(await handle.result({ timeout: 20_000 })).toBe("ok attempt 2");
      expect(started.get(id)).toEqual([1, 2]);
    } finally {
      await teardown();
    }
  });

  it("maxAttempts 1: an attempt whose worker vanished (its lease ran out) fails the step; it does not run again", async () => {
    const { backend, teardown } = await open();
    try {
      const id = `int-lost-${_name}`;
      // A worker with the workflow only schedules the step; a "worker" that then dies claims the
      // attempt and never reports, as a SIGKILLed process would.
      workers.push(
        new Worker({ backend, workflows: [flow], logger: silentLogger, pollIntervalMs: { min: 5, max: 50 } }),
      );
      await workers[workers.length - 1]!.start();
      const handle = await new Client({ backend }).start(flow, { maxAttempts: 1 }, { id });
      let claimed: Awaited<ReturnType<Backend["claimActivityTask"]>> = null;
      await waitFor(async () => {
        claimed = await backend.claimActivityTask({ workerId: "dead", activityNames: ["int.stubborn"] });
        return claimed !== null;
      });
      expect(claimed!.attempt).toBe(1);
      // A live worker with the activity finds the attempt once its lease (1 s timeout + grace) runs out.
      await newWorker(backend);
      const result = await handle.result({ timeout: 20_000 });
      expect(result).toMatch(
        /^failed attempt 1 retries-exhausted: ActivityInterruptedError: activity "int\.stubborn" attempt 1 of 1 never reported an outcome/,
      );
      expect(started.get(id)).toBeUndefined(); // the live worker did not run it a second time
    } finally {
      await teardown();
    }
  });

  it("an attempt claimed while the worker began draining, never started, is not counted", async () => {
    const { backend, teardown } = await open();
    try {
      const id = `int-drain-${_name}`;
      // Hold the first activation just before its commit (which claims the new activity task
      // for this worker, eagerly) until the worker has begun to drain.
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      let reached!: () => void;
      const atCommit = new Promise<void>((r) => {
        reached = r;
      });
      const a = new Worker({
        backend,
        workflows: [flow],
        activities: [stubborn],
        logger: silentLogger,
        pollIntervalMs: { min: 5, max: 50 },
        faultHook: async (point) => {
          if (point !== "workflow.before-commit") return;
          reached();
          await held;
        },
      });
      workers.push(a);
      await a.start();
      const handle = await new Client({ backend }).start(flow, { maxAttempts: 1 }, { id });
      await atCommit;
      const drained = a.shutdown();
      release();
      await drained;
      expect(started.get(id)).toBeUndefined(); // the draining worker did not run it
      await newWorker(backend);
      await waitFor(() => (started.get(id)?.length ?? 0) === 1, 20_000);
      expect(started.get(id)).toEqual([1]); // attempt 1: the hand-back cost no attempt
      for (const r of hanging.splice(0)) r();
      expect(await handle.result({ timeout: 20_000 })).toBe("ok attempt 1");
    } finally {
      await teardown();
    }
  });
});
