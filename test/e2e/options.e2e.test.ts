// Guards per-call activity options, heartbeats and their timeout, execution timeouts, versions and child id collisions end to end, on every store.

import {
  ActivityFailure,
  ChildWorkflowFailure,
  child,
  defineActivity,
  defineSignal,
  defineWorkflow,
  TimeoutError,
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

const attempts: number[] = [];
const sometimesSlow = defineActivity(
  {
    name: "opt.slow",
    input: z.object({ ms: z.number() }),
    output: z.number(),
    timeout: "5s",
    retry: { maxAttempts: 10, initialInterval: "10ms" },
  },
  (input, ctx) =>
    new Promise<number>((resolve) => {
      attempts.push(ctx.attempt);
      setTimeout(() => resolve(ctx.attempt), input.ms);
    }),
);
const beats: string[] = [];
const heartbeater = defineActivity(
  {
    name: "opt.heartbeater",
    input: z.object({ beats: z.number(), gapMs: z.number() }),
    output: z.number(),
    heartbeatTimeout: "150ms",
    retry: { maxAttempts: 1 },
  },
  async ({ beats: n, gapMs }, ctx) => {
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, gapMs));
      ctx.heartbeat({ i });
      beats.push(`${ctx.attempt}:${i}`);
    }
    return n;
  },
);

closeStoresAfterAll();

// The whole suite runs on every store: a SQLite file, SQLite in memory, and PostgreSQL.
describe.each(STORES)("on %s", (store) => {
  describe("activity options", () => {
    it("per-call options override the definition's: a 50 ms timeout with 2 attempts fails with TimeoutError", async () => {
      const wf = defineWorkflow(
        { name: "opt.override", input: z.object({}), output: z.number() },
        async function* () {
          return yield* sometimesSlow(
            { ms: 300 },
            { timeout: "50ms", retry: { maxAttempts: 2, initialInterval: "10ms" } },
          );
        },
      );
      env = await e2eOn(store, { workflows: [wf], activities: [sometimesSlow] });
      attempts.length = 0;
      const err = await (await env.client.start(wf, {}, { id: "override" }))
        .result({ timeout: 10_000 })
        .catch((e) => e);
      expect(WorkflowFailedError.is(err)).toBe(true);
      expect(ActivityFailure.is(err.cause)).toBe(true);
      expect(err.cause.reason).toBe("timeout");
      expect(err.cause.attempt).toBe(2);
      expect(TimeoutError.is(err.cause.cause)).toBe(true);
      expect(attempts).toEqual([1, 2]);
    });

    it("an activity that first reads ctx.signal after its timeout sees it aborted, with the TimeoutError", async () => {
      // The worker makes an attempt's AbortController only when the activity reads ctx.signal: a
      // signal read after the abort must still say it was aborted, and why.
      const seen: { aborted: boolean; reason: unknown; listenerCalled: boolean }[] = [];
      const lateReader = defineActivity(
        {
          name: "opt.lateReader",
          input: z.object({}),
          output: z.number(),
          timeout: "40ms",
          retry: { maxAttempts: 1 },
        },
        async (_input, ctx) => {
          await new Promise((r) => setTimeout(r, 200));
          let listenerCalled = false;
          ctx.signal.addEventListener("abort", () => {
            listenerCalled = true;
          });
          seen.push({ aborted: ctx.signal.aborted, reason: ctx.signal.reason, listenerCalled });
          return 1;
        },
      );
      const wf = defineWorkflow(
        { name: "opt.lateReaderWf", input: z.object({}), output: z.number() },
        async function* () {
          return yield* lateReader({});
        },
      );
      env = await e2eOn(store, { workflows: [wf], activities: [lateReader] });
      const err = await (await env.client.start(wf, {}, { id: "late-reader" }))
        .result({ timeout: 10_000 })
        .catch((e) => e);
      expect(WorkflowFailedError.is(err)).toBe(true);
      expect(err.cause.reason).toBe("timeout");
      await waitFor(() => seen.length === 1);
      const [late] = seen;
      expect(late!.aborted).toBe(true);
      expect(TimeoutError.is(late!.reason)).toBe(true);
      expect((late!.reason as Error).message).toContain("exceeded its 40 ms timeout");
      // Already aborted when read: a listener added afterwards is not called (as with any AbortSignal).
      expect(late!.listenerCalled).toBe(false);
    });

    it("heartbeats keep a long attempt alive; a silent one fails by heartbeat timeout", async () => {
      const wf = defineWorkflow(
        { name: "opt.hb", input: z.object({ gapMs: z.number() }), output: z.number() },
        async function* ({ gapMs }) {
          return yield* heartbeater({ beats: 5, gapMs });
        },
      );
      env = await e2eOn(store, { workflows: [wf], activities: [heartbeater] });
      beats.length = 0;
      expect(
        await (await env.client.start(wf, { gapMs: 60 }, { id: "hb-ok" })).result({ timeout: 10_000 }),
      ).toBe(5);
      expect(beats).toHaveLength(5);
      const err = await (await env.client.start(wf, { gapMs: 400 }, { id: "hb-silent" }))
        .result({ timeout: 10_000 })
        .catch((e) => e);
      expect(err.cause.reason).toBe("timeout");
      expect(err.cause.cause.message).toMatch(/sent no heartbeat for 150 ms/);
    });
  });

  describe("workflow options", () => {
    const never = defineSignal("opt.never", z.object({}));
    it("the execution timeout fails a run that runs too long", async () => {
      const wf = defineWorkflow(
        { name: "opt.timeout", input: z.object({}), output: z.string(), executionTimeout: "150ms" },
        async function* () {
          yield* never.wait();
          return "x";
        },
      );
      env = await e2eOn(store, { workflows: [wf] });
      const err = await (await env.client.start(wf, {}, { id: "exec-timeout" }))
        .result({ timeout: 10_000 })
        .catch((e) => e);
      expect(WorkflowFailedError.is(err)).toBe(true);
      expect(TimeoutError.is(err.cause)).toBe(true);
      expect(err.cause.message).toMatch(/exceeded its execution timeout of 150 ms/);
    });

    it("a run past the worker's history limit fails with a message that says to continue as new", async () => {
      const looper = defineWorkflow(
        { name: "opt.looper", input: z.object({}), output: z.string() },
        async function* () {
          for (;;) yield* sometimesSlow({ ms: 0 });
        },
      );
      env = await e2eOn(store, {
        workflows: [looper],
        activities: [sometimesSlow],
        historyLimits: { historyLimit: 30 },
      });
      const err = await (await env.client.start(looper, {}, { id: "looper" }))
        .result({ timeout: 10_000 })
        .catch((e) => e);
      expect(WorkflowFailedError.is(err)).toBe(true);
      expect(err.cause.message).toMatch(/reached the history limit of 30 events.*continueAsNew/s);
    });

    it("the workflow version is recorded at start and shown by describe()", async () => {
      const wf = defineWorkflow(
        { name: "opt.versioned", input: z.object({}), output: z.string(), version: "2024-06-01" },
        async function* (_i, ctx) {
          return ctx.info.version ?? "none";
        },
      );
      env = await e2eOn(store, { workflows: [wf] });
      const h = await env.client.start(wf, {}, { id: "versioned" });
      expect(await h.result({ timeout: 10_000 })).toBe("2024-06-01");
      expect((await h.describe()).version).toBe("2024-06-01");
    });

    it("a child id colliding with a running workflow is a clear, typed error in the parent", async () => {
      const sleeper = defineWorkflow(
        { name: "opt.sleeper", input: z.object({}), output: z.string() },
        async function* () {
          yield* never.wait();
          return "x";
        },
      );
      const parent = defineWorkflow(
        { name: "opt.parent", input: z.object({}), output: z.string() },
        async function* () {
          try {
            yield* child(sleeper, {}, { id: "taken" });
            return "started";
          } catch (err) {
            if (ChildWorkflowFailure.is(err) && WorkflowAlreadyStartedError.is(err.cause))
              return err.cause.message;
            throw err;
          }
        },
      );
      env = await e2eOn(store, { workflows: [parent, sleeper] });
      const squatter = await env.client.start(sleeper, {}, { id: "taken" });
      await waitFor(async () => (await squatter.describe()).status === "running");
      const r = await (await env.client.start(parent, {}, { id: "parent" })).result({ timeout: 10_000 });
      expect(r).toMatch(
        /child workflow id "taken" is already used by a running workflow; give child\(\) a unique \{ id \}/,
      );
    });
  });
});
