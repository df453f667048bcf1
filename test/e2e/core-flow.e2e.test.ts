// Guards the durable core end to end on every store (SQLite file, SQLite in memory, PostgreSQL): results, retries, history integrity, idempotent starts, bad input.

import {
  ActivityFailure,
  defineActivity,
  defineWorkflow,
  NonRetryableError,
  RunNotFoundError,
  sleep,
  ValidationError,
  WorkflowAlreadyStartedError,
  WorkflowFailedError,
} from "spool";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type AnyE2E, closeStoresAfterAll, e2eOn, STORES, waitFor } from "./support.ts";

let env: AnyE2E | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const executions: string[] = [];
const flaky = defineActivity(
  {
    name: "e2e.flaky",
    input: z.object({ failTimes: z.number() }),
    output: z.object({ attempt: z.number() }),
    retry: { maxAttempts: 5, initialInterval: "10ms" },
  },
  async ({ failTimes }, ctx) => {
    executions.push(`flaky#${ctx.attempt}:${ctx.idempotencyKey}`);
    if (ctx.attempt <= failTimes) throw new Error(`transient ${ctx.attempt}`);
    return { attempt: ctx.attempt };
  },
);
const declined = defineActivity(
  { name: "e2e.declined", input: z.object({}), output: z.string() },
  async () => {
    throw new NonRetryableError("card declined", { details: { code: "insufficient_funds" } });
  },
);
const echo = defineActivity(
  { name: "e2e.echo", input: z.object({ v: z.string() }), output: z.string() },
  async ({ v }) => v,
);

const threeSteps = defineWorkflow(
  { name: "e2e.three", input: z.object({ failTimes: z.number() }), output: z.string() },
  async function* ({ failTimes }) {
    const a = yield* echo({ v: "a" });
    const { attempt } = yield* flaky({ failTimes });
    yield* sleep(20);
    const c = yield* echo({ v: "c" });
    return `${a}-${attempt}-${c}`;
  },
);
const failing = defineWorkflow(
  { name: "e2e.failing", input: z.object({}), output: z.string() },
  async function* () {
    return yield* declined({});
  },
);

closeStoresAfterAll();

// The whole suite runs on every store: a SQLite file, SQLite in memory, and PostgreSQL.
describe.each(STORES)("on %s", (store) => {
  describe("end to end", () => {
    it("runs a workflow with a retried activity and a timer to its typed result", async () => {
      env = await e2eOn(store, { workflows: [threeSteps], activities: [flaky, echo] });
      executions.length = 0;
      const h = await env.client.start(threeSteps, { failTimes: 2 }, { id: "three-1" });
      expect(await h.result({ timeout: 10_000 })).toBe("a-3-c");
      // Every attempt of the step shares one idempotency key: workflow id + step number.
      expect(executions).toEqual(["flaky#1:three-1/2", "flaky#2:three-1/2", "flaky#3:three-1/2"]);
      const d = await h.describe();
      expect(d.status).toBe("completed");
      const history = await h.history();
      expect(history.map((e) => e.seq)).toEqual(history.map((_, i) => i + 1));
      const steps = history
        .filter((e) => e.type === "ActivityCompleted")
        .map((e) => (e as { step: number }).step);
      expect(new Set(steps).size).toBe(steps.length);
      expect(history.find((e) => e.type === "ActivityCompleted" && e.step === 2)).toMatchObject({
        attempt: 3,
      });
    });

    it("a non-retryable failure fails the run; result() throws WorkflowFailedError with the cause chain", async () => {
      env = await e2eOn(store, { workflows: [failing], activities: [declined] });
      const h = await env.client.start(failing, {}, { id: "fail-1" });
      const err = await h.result({ timeout: 10_000 }).catch((e) => e);
      expect(WorkflowFailedError.is(err)).toBe(true);
      expect(err.status).toBe("failed");
      expect(ActivityFailure.is(err.cause)).toBe(true);
      expect(err.cause.attempt).toBe(1);
      expect(NonRetryableError.is(err.cause.cause)).toBe(true);
      expect(err.cause.cause.details).toEqual({ code: "insufficient_funds" });
      expect((await h.describe()).status).toBe("failed");
    });

    it("start is idempotent by id and honours the conflict policies", async () => {
      env = await e2eOn(store, { workflows: [threeSteps], activities: [flaky, echo] });
      const h1 = await env.client.start(threeSteps, { failTimes: 0 }, { id: "idem" });
      const h2 = await env.client.start(threeSteps, { failTimes: 0 }, { id: "idem" });
      expect(h2.runId).toBe(h1.runId);
      await expect(
        env.client.start(threeSteps, { failTimes: 0 }, { id: "idem", onConflict: "fail" }),
      ).rejects.toThrow(WorkflowAlreadyStartedError);
      await h1.result({ timeout: 10_000 });
      const h3 = await env.client.start(
        threeSteps,
        { failTimes: 0 },
        { id: "idem", onConflict: "startNewIfClosed" },
      );
      expect(h3.runId).not.toBe(h1.runId);
      await h3.result({ timeout: 10_000 });
      const { runs } = await env.client.list({ workflowId: "idem" });
      expect(runs.map((r) => r.runId).sort()).toEqual([h1.runId, h3.runId].sort());
      // An id used by another workflow is refused.
      await expect(env.client.start(failing, {}, { id: "idem" })).rejects.toThrow(
        /belongs to a run of "e2e.three"/,
      );
    });

    it("input that fails its schema is rejected with ValidationError naming the field, and nothing is written", async () => {
      env = await e2eOn(store, { workflows: [threeSteps], activities: [flaky, echo] });
      const err = await env.client
        .start(threeSteps, { failTimes: "x" } as never, { id: "bad" })
        .catch((e) => e);
      expect(ValidationError.is(err)).toBe(true);
      expect(err.issues[0].path).toEqual(["failTimes"]);
      expect(err.message).toContain("failTimes");
      expect((await env.client.list()).runs).toEqual([]);
      await expect(env.client.getHandle("bad").describe()).rejects.toThrow(RunNotFoundError);
    });

    it("a run survives a worker restart between steps (replay from history, same result)", async () => {
      const slow = defineWorkflow(
        { name: "e2e.slow", input: z.object({}), output: z.string() },
        async function* () {
          const a = yield* echo({ v: "x" });
          yield* sleep(200);
          return `${a}${yield* echo({ v: "y" })}`;
        },
      );
      env = await e2eOn(store, { workflows: [slow], activities: [echo], maxCachedRuns: 0 });
      const h = await env.client.start(slow, {}, { id: "restart-1" });
      await waitFor(async () => (await h.history()).some((e) => e.type === "TimerStarted"));
      await env.restartWorker();
      expect(await h.result({ timeout: 10_000 })).toBe("xy");
    });

    it("a timer that fell due while no worker ran fires when one starts", async () => {
      const sleeper = defineWorkflow(
        { name: "e2e.sleeper", input: z.object({}), output: z.string() },
        async function* () {
          yield* sleep(100);
          return "woke";
        },
      );
      env = await e2eOn(store, { workflows: [sleeper] });
      const h = await env.client.start(sleeper, {}, { id: "sleeper" });
      await waitFor(async () => (await h.history()).some((e) => e.type === "TimerStarted"));
      await env.worker.shutdown();
      await new Promise((r) => setTimeout(r, 250));
      expect((await h.describe()).status).toBe("running");
      await env.restartWorker();
      expect(await h.result({ timeout: 10_000 })).toBe("woke");
    });
  });
});
