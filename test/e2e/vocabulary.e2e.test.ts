// Guards the workflow vocabulary through a real worker on every store (SQLite file, SQLite in memory, PostgreSQL): signals, queries, cancellation with compensation, children, continue-as-new.

import {
  all,
  CancelledError,
  ChildWorkflowFailure,
  ConfigurationError,
  child,
  continueAsNew,
  defineActivity,
  defineQuery,
  defineSignal,
  defineWorkflow,
  RunNotFoundError,
  race,
  saga,
  sleep,
  ValidationError,
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

const approve = defineSignal("e2e.approve", z.object({ by: z.string() }));
const add = defineSignal("e2e.add", z.object({ n: z.number() }));
const total = defineQuery("e2e.total", z.object({ sum: z.number(), count: z.number() }));
const noop = defineActivity(
  { name: "e2e.noop", input: z.object({ tag: z.string() }), output: z.string() },
  async ({ tag }) => tag,
);

const aborts: string[] = [];
const slowActivity = defineActivity(
  { name: "e2e.slow", input: z.object({}), output: z.string(), timeout: "30s" },
  (_i, ctx) =>
    new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => resolve("finished"), 20_000);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(t);
        aborts.push(String((ctx.signal.reason as Error).name));
        reject(ctx.signal.reason);
      });
    }),
);
const compensations: string[] = [];
const release = defineActivity(
  { name: "e2e.release", input: z.object({ what: z.string() }), output: z.string() },
  async ({ what }) => {
    compensations.push(what);
    return what;
  },
);

const accumulator = defineWorkflow(
  {
    name: "e2e.accumulator",
    input: z.object({ until: z.number() }),
    output: z.number(),
    signals: [add, approve],
  },
  async function* ({ until }, ctx) {
    let sum = 0;
    let count = 0;
    ctx.onQuery(total, () => ({ sum, count }));
    while (sum < until) {
      const s = yield* add.wait();
      sum += s.n;
      count++;
    }
    return sum;
  },
);

closeStoresAfterAll();

// The whole suite runs on every store: a SQLite file, SQLite in memory, and PostgreSQL.
describe.each(STORES)("on %s", (store) => {
  describe("signals and queries", () => {
    it("delivers signals sent before the run waits, in order, none dropped or doubled; queries read live state", async () => {
      env = await e2eOn(store, { workflows: [accumulator] });
      const h = await env.client.start(accumulator, { until: 100 }, { id: "acc" });
      for (const n of [1, 2, 3, 4]) await h.signal(add, { n });
      // Queries read the inbox too, so they see the four signals at once; wait until the worker has
      // recorded them, so the history below is not moving when the query runs.
      expect(await h.query(total)).toEqual({ sum: 10, count: 4 });
      await waitFor(async () => (await h.history()).filter((e) => e.type === "SignalReceived").length === 4);
      expect(await h.query(total)).toEqual({ sum: 10, count: 4 });
      const historyBefore = (await h.history()).length;
      await h.query(total);
      expect((await h.history()).length).toBe(historyBefore);
      await h.signal(add, { n: 90 });
      expect(await h.result({ timeout: 10_000 })).toBe(100);
      const received = (await h.history())
        .filter((e) => e.type === "SignalReceived")
        .map((e) => (e as { payload: { n: number } }).payload.n);
      expect(received).toEqual([1, 2, 3, 4, 90]);
    });

    it("rejects a bad payload with ValidationError and records nothing; unknown runs give RunNotFoundError", async () => {
      env = await e2eOn(store, { workflows: [accumulator] });
      const h = await env.client.start(accumulator, { until: 1 }, { id: "acc2" });
      const err = await h.signal(add, { n: "x" } as never).catch((e) => e);
      expect(ValidationError.is(err)).toBe(true);
      await expect(env.client.getHandle("nobody").signal(add, { n: 1 })).rejects.toThrow(RunNotFoundError);
      const undeclared = defineSignal("e2e.other", z.object({}));
      await expect(h.signal(undeclared, {})).rejects.toThrow(ConfigurationError);
      await h.signal(add, { n: 1 });
      await h.result({ timeout: 10_000 });
      // A finished run takes no more signals.
      await expect(h.signal(add, { n: 1 })).rejects.toThrow(RunNotFoundError);
      expect((await h.history()).filter((e) => e.type === "SignalReceived")).toHaveLength(1);
    });

    it("signalWithStart starts once and delivers the signal", async () => {
      env = await e2eOn(store, { workflows: [accumulator] });
      const h1 = await env.client.signalWithStart(
        accumulator,
        { until: 5 },
        { id: "sws", signal: add, payload: { n: 2 } },
      );
      const h2 = await env.client.signalWithStart(
        accumulator,
        { until: 5 },
        { id: "sws", signal: add, payload: { n: 3 } },
      );
      expect(h2.runId).toBe(h1.runId);
      expect(await h1.result({ timeout: 10_000 })).toBe(5);
    });

    it("a signal retried with its request id is delivered once, whether or not the run has consumed it", async () => {
      env = await e2eOn(store, { workflows: [accumulator] });
      const h = await env.client.start(accumulator, { until: 10 }, { id: "dedupe" });
      // A caller that lost the acknowledgement sends the same request again, before and after the
      // workflow has seen the first one.
      await h.signal(add, { n: 3 }, { requestId: "order-42/add-3" });
      await h.signal(add, { n: 3 }, { requestId: "order-42/add-3" });
      await waitFor(async () => (await h.query(total)).count === 1);
      await h.signal(add, { n: 3 }, { requestId: "order-42/add-3" });
      await h.signal(add, { n: 7 }, { requestId: "order-42/add-7" });
      expect(await h.result({ timeout: 10_000 })).toBe(10);
      const received = (await h.history()).filter((e) => e.type === "SignalReceived");
      expect(received.map((e) => (e as { payload: { n: number } }).payload.n)).toEqual([3, 7]);

      const again = await env.client.signalWithStart(
        accumulator,
        { until: 4 },
        { id: "dedupe-sws", signal: add, payload: { n: 2 }, signalRequestId: "start-2" },
      );
      await env.client.signalWithStart(
        accumulator,
        { until: 4 },
        { id: "dedupe-sws", signal: add, payload: { n: 2 }, signalRequestId: "start-2" },
      );
      await again.signal(add, { n: 2 }, { requestId: "start-2" });
      await waitFor(async () => (await again.query(total)).count === 1);
      await again.signal(add, { n: 2 });
      expect(await again.result({ timeout: 10_000 })).toBe(4);

      for (const bad of ["", "x".repeat(201), 42]) {
        const err = await h.signal(add, { n: 1 }, { requestId: bad as string }).catch((e) => e);
        expect(ConfigurationError.is(err)).toBe(true);
        expect(err.message).toMatch(/request id must be a string of 1 to 200 characters/);
      }
    });

    it("a query with no registered code is a clear error", async () => {
      env = await e2eOn(store, { workflows: [accumulator] });
      await env.client.start(accumulator, { until: 5 }, { id: "q-unknown" });
      const { Client } = await import("spool");
      const bare = new Client({ backend: env.backend });
      await expect(bare.getHandle("q-unknown").query(total)).rejects.toThrow(
        /is not registered in this process/,
      );
    });
  });

  describe("cancellation", () => {
    const order = defineWorkflow(
      { name: "e2e.cancel", input: z.object({}), output: z.string() },
      async function* () {
        return yield* saga(async function* (s) {
          yield* noop({ tag: "reserve" });
          s.compensate(() => release({ what: "stock" }));
          yield* noop({ tag: "charge" });
          s.compensate(() => release({ what: "payment" }));
          return yield* slowActivity({});
        });
      },
    );

    it("aborts the running activity, runs compensations in reverse order, ends cancelled", async () => {
      env = await e2eOn(store, { workflows: [order], activities: [noop, slowActivity, release] });
      aborts.length = 0;
      compensations.length = 0;
      const h = await env.client.start(order, {}, { id: "cancel-1" });
      await waitFor(() => env?.worker.stats().runningActivities === 1);
      await waitFor(
        async () => (await h.history()).filter((e) => e.type === "ActivityScheduled").length === 3,
      );
      expect(await h.cancel("customer changed their mind")).toEqual({
        outcome: "requested",
        status: "running",
      });
      const err = await h.result({ timeout: 10_000 }).catch((e) => e);
      expect(WorkflowFailedError.is(err)).toBe(true);
      expect(err.status).toBe("cancelled");
      expect(CancelledError.is(err.cause)).toBe(true);
      expect(compensations).toEqual(["payment", "stock"]);
      await waitFor(() => aborts.length === 1);
      expect(aborts).toEqual(["CancelledError"]);
      expect(await h.cancel()).toEqual({ outcome: "alreadyClosed", status: "cancelled" });
    });
  });

  describe("terminate", () => {
    it("ends a running child at once: its activity is aborted, no clean-up runs, the parent sees a child failure", async () => {
      const stuckChild = defineWorkflow(
        { name: "e2e.stuckChild", input: z.object({}), output: z.string() },
        async function* () {
          try {
            return yield* slowActivity({});
          } finally {
            yield* release({ what: "must-not-run" });
          }
        },
      );
      const parentOfStuck = defineWorkflow(
        { name: "e2e.parentOfStuck", input: z.object({}), output: z.string() },
        async function* () {
          try {
            return yield* child(stuckChild, {}, { id: "stuck-child" });
          } catch (err) {
            return ChildWorkflowFailure.is(err) ? `child ended: ${(err.cause as Error).message}` : "other";
          }
        },
      );
      env = await e2eOn(store, {
        workflows: [parentOfStuck, stuckChild],
        activities: [slowActivity, release],
      });
      aborts.length = 0;
      compensations.length = 0;
      const parentHandle = await env.client.start(parentOfStuck, {}, { id: "parent-of-stuck" });
      await waitFor(() => env?.worker.stats().runningActivities === 1);
      await env.client.getHandle("stuck-child").terminate("operator");
      expect(await parentHandle.result({ timeout: 10_000 })).toBe(
        "child ended: cancelled: terminated: operator",
      );
      await waitFor(() => aborts.length === 1);
      expect(compensations).toEqual([]);
      expect((await env.client.getHandle("stuck-child").describe()).status).toBe("cancelled");
    });
  });

  describe("children, races, continue-as-new", () => {
    const kid = defineWorkflow(
      { name: "e2e.kid", input: z.object({ n: z.number() }), output: z.number() },
      async function* ({ n }) {
        if (n < 0) throw new Error("negative kid");
        yield* sleep(5);
        return n * 10;
      },
    );
    const parent = defineWorkflow(
      { name: "e2e.parent", input: z.object({}), output: z.string() },
      async function* () {
        const [a, b] = yield* all([child(kid, { n: 1 }), child(kid, { n: 2 })]);
        let failure = "";
        try {
          yield* child(kid, { n: -1 }, { id: "kid-negative" });
        } catch (err) {
          if (ChildWorkflowFailure.is(err)) failure = (err.cause as Error).message;
        }
        const winner = yield* race([approve.wait(), sleep(30)]);
        return `${a + b} ${failure} ${winner ? "signal" : "timer"}`;
      },
    );

    it("runs children with typed results and failures, and a race against a timer", async () => {
      env = await e2eOn(store, { workflows: [parent, kid] });
      const h = await env.client.start(parent, {}, { id: "parent-1" });
      expect(await h.result({ timeout: 10_000 })).toBe("30 negative kid timer");
      const kids = await env.client.list({ parentRunId: h.runId! });
      expect(kids.runs).toHaveLength(3);
      expect((await env.client.getHandle("parent-1/e2e.kid#1").result()) as number).toBe(10);
    });

    it("continue-as-new starts fresh runs with the same id; result() follows the chain", async () => {
      const counter = defineWorkflow(
        { name: "e2e.counter", input: z.object({ i: z.number() }), output: z.number() },
        async function* ({ i }, ctx) {
          yield* sleep(1);
          if (i < 3) yield* continueAsNew({ i: i + 1 });
          return i * 100 + ctx.info.historyLength;
        },
      );
      env = await e2eOn(store, { workflows: [counter] });
      const h = await env.client.start(counter, { i: 0 }, { id: "counter" });
      const r = await h.result({ timeout: 10_000 });
      expect(r).toBe(300 + 3);
      const runs = (await env.client.list({ workflowId: "counter" })).runs;
      expect(runs.map((x) => x.status).sort()).toEqual(["completed", "continued", "continued", "continued"]);
    });
  });
});
