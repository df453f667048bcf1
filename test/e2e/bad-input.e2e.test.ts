// Guards against bad input and bad state corrupting anything: schema failures, oversized and unserialisable payloads, unknown names and corrupt rows each give a typed error that affects only their run.
import Database from "better-sqlite3";
import {
  ActivityFailure,
  Client,
  defineActivity,
  defineSignal,
  defineWorkflow,
  type Logger,
  PayloadTooLargeError,
  ValidationError,
  WorkflowFailedError,
} from "spool";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type E2E, e2e, waitFor } from "./support.ts";

let env: E2E | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const go = defineSignal("bad.go", z.object({}));
const echo = defineActivity(
  { name: "bad.echo", input: z.object({ v: z.any() }), output: z.any() },
  async ({ v }) => v,
);
const returnsFunction = defineActivity(
  { name: "bad.fn", input: z.object({}), output: z.any() },
  async () => ({ callback: () => 1 }),
);
const simple = defineWorkflow(
  { name: "bad.simple", input: z.object({ v: z.any() }), output: z.any() },
  async function* ({ v }) {
    return yield* echo({ v });
  },
);
const waiter = defineWorkflow(
  { name: "bad.waiter", input: z.object({}), output: z.string() },
  async function* () {
    yield* echo({ v: 1 });
    yield* go.wait();
    return "done";
  },
);
const unserialisableResult = defineWorkflow(
  { name: "bad.unser", input: z.object({}), output: z.any() },
  async function* () {
    return yield* returnsFunction({});
  },
);
const hugeActivityInput = defineWorkflow(
  { name: "bad.huge", input: z.object({}), output: z.any() },
  async function* () {
    return yield* echo({ v: "x".repeat(4096) });
  },
);

/** An error whose stack and fields alone are far over a 1 KiB payload limit. */
function bulkyError(message: string): Error {
  const err = Object.assign(new Error(message), { code: "E_UPSTREAM", dump: "d".repeat(4000) });
  err.name = "UpstreamError";
  err.stack = `UpstreamError: ${message}\n${"    at handler (/srv/app/node_modules/some/deep/path.js:1:1)\n".repeat(80)}`;
  return err;
}
const bulkyFailure = defineActivity(
  { name: "bad.bulky", input: z.object({}), output: z.any(), retry: { maxAttempts: 1 } },
  async () => {
    throw bulkyError("upstream said no");
  },
);
const catchesBulky = defineWorkflow(
  { name: "bad.catches-bulky", input: z.object({}), output: z.any() },
  async function* () {
    try {
      yield* bulkyFailure({});
      return "unexpected";
    } catch (err) {
      const cause = (err as { cause?: Error & { code?: string; dump?: string } }).cause;
      return { name: cause?.name, message: cause?.message, code: cause?.code, dump: cause?.dump };
    }
  },
);
const failsBulky = defineWorkflow(
  { name: "bad.fails-bulky", input: z.object({}), output: z.any() },
  async function* () {
    yield* echo({ v: 1 });
    throw bulkyError("the workflow gave up");
  },
);

function capture(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const noop = () => undefined;
  return { warnings, logger: { debug: noop, info: noop, error: noop, warn: (m) => warnings.push(m) } };
}

describe("bad input and bad state", () => {
  it("an unserialisable start input is a ValidationError naming the path; nothing is written", async () => {
    env = await e2e({ workflows: [simple], activities: [echo] });
    const err = await env.client
      .start(simple, { v: { nested: [1, () => 2] } }, { id: "fn-input" })
      .catch((e) => e);
    expect(ValidationError.is(err)).toBe(true);
    expect(err.message).toMatch(/input\.v\.nested\[1\]/);
    expect((await env.client.list()).runs).toEqual([]);
  });

  it("an oversized start input is a PayloadTooLargeError; nothing is written", async () => {
    env = await e2e({ workflows: [simple], activities: [echo] });
    const small = new Client({ backend: env.backend, maxPayloadBytes: 1024 });
    const err = await small.start(simple, { v: "x".repeat(2000) }, { id: "too-big" }).catch((e) => e);
    expect(PayloadTooLargeError.is(err)).toBe(true);
    expect(err.limit).toBe(1024);
    expect(err.message).toContain("maxPayloadBytes");
    expect((await env.client.list()).runs).toEqual([]);
  });

  it("an activity result that cannot be stored fails that step for good with the reason", async () => {
    env = await e2e({ workflows: [unserialisableResult, simple], activities: [returnsFunction, echo] });
    const bad = await env.client.start(unserialisableResult, {}, { id: "unser" });
    const ok = await env.client.start(simple, { v: 7 }, { id: "fine" });
    const err = await bad.result({ timeout: 10_000 }).catch((e) => e);
    expect(WorkflowFailedError.is(err)).toBe(true);
    expect(ActivityFailure.is(err.cause)).toBe(true);
    expect(err.cause.reason).toBe("validation");
    expect(err.cause.cause.message).toMatch(/callback/);
    expect(await ok.result({ timeout: 10_000 })).toBe(7);
  });

  it("a workflow that produces an oversized activity input is parked as blocked; other runs go on", async () => {
    env = await e2e({ workflows: [hugeActivityInput, simple], activities: [echo], maxPayloadBytes: 1024 });
    const bad = await env.client.start(hugeActivityInput, {}, { id: "huge" });
    const ok = await env.client.start(simple, { v: "small" }, { id: "small" });
    expect(await ok.result({ timeout: 10_000 })).toBe("small");
    await waitFor(async () => (await bad.describe()).status === "blocked");
    const d = await bad.describe();
    expect(d.blockedReason).toMatch(/PayloadTooLargeError/);
    expect(PayloadTooLargeError.is(d.error)).toBe(true);
    expect((await bad.history()).map((e) => e.type)).toEqual(["WorkflowStarted"]);
  });

  it.each([
    ["cached (eager completion)", undefined],
    ["evicted (claimed workflow task)", 0],
  ])("errors over the payload limit are recorded smaller, never lost: %s", async (_, maxCachedRuns) => {
    env = await e2e({
      workflows: [catchesBulky, failsBulky],
      activities: [bulkyFailure, echo],
      maxPayloadBytes: 1024,
      ...(maxCachedRuns === undefined ? {} : { maxCachedRuns }),
    });
    const caught = await env.client.start(catchesBulky, {}, { id: "catches" });
    // The workflow saw the error as stored: name, message and short fields kept, the 4 KB field dropped.
    expect(await caught.result({ timeout: 10_000 })).toStrictEqual({
      name: "UpstreamError",
      message: "upstream said no",
      code: "E_UPSTREAM",
      dump: undefined,
    });
    const failing = await env.client.start(failsBulky, {}, { id: "fails" });
    const err = await failing.result({ timeout: 10_000 }).catch((e) => e);
    expect(WorkflowFailedError.is(err)).toBe(true);
    expect(err.cause.name).toBe("UpstreamError");
    expect(err.cause.message).toBe("the workflow gave up");
    expect(err.cause.stack).toBeUndefined();
    expect((await failing.history()).map((e) => e.type)).toEqual([
      "WorkflowStarted",
      "ActivityScheduled",
      "ActivityCompleted",
      "WorkflowFailed",
    ]);
  });

  it("a corrupt history row parks that run with the position and reason; other runs complete", async () => {
    env = await e2e({ workflows: [waiter, simple], activities: [echo], maxCachedRuns: 0 });
    const victim = await env.client.start(waiter, {}, { id: "victim" });
    await waitFor(async () => (await victim.history()).some((e) => e.type === "ActivityCompleted"));
    const raw = new Database(env.path);
    raw
      .prepare("UPDATE history SET body = ? WHERE run_id = ? AND seq = 2")
      .run(Buffer.from([1, 2, 3]), victim.runId);
    raw.close();
    await victim.signal(go, {});
    const other = await env.client.start(simple, { v: 1 }, { id: "bystander" });
    expect(await other.result({ timeout: 10_000 })).toBe(1);
    await waitFor(async () => (await victim.describe()).status === "blocked");
    const d = await victim.describe();
    expect(d.blockedReason).toMatch(/HistoryCorruptError: history of run \w+ is corrupt at event #2/);
    expect(d.blockedReason).toMatch(/terminate/);
    // The way out: terminate ends it without replaying its (unreadable) history.
    await victim.terminate("corrupt row");
    const ended = await victim.describe();
    expect(ended.status).toBe("cancelled");
    expect(ended.error?.message).toBe("cancelled: terminated: corrupt row");
    await expect(victim.terminate()).rejects.toThrow(/no open run/);
  });

  it("a corrupt activity options row fails the step for good only if the attempt fails; a success needs no options", async () => {
    // The options row holds the retry policy, read only when an attempt fails (timeouts come with
    // the task). Unreadable then, there is no policy to follow: the step fails, saying why.
    const flaky = defineActivity(
      { name: "bad.flaky", input: z.object({ fail: z.boolean() }), output: z.number() },
      async ({ fail }) => {
        if (fail) throw new Error("boom");
        return 1;
      },
    );
    const calls = defineWorkflow(
      { name: "bad.calls", input: z.object({ fail: z.boolean() }), output: z.number() },
      async function* ({ fail }) {
        return yield* flaky({ fail });
      },
    );
    // No worker runs the activity yet, so its tasks wait in the queue to be damaged.
    env = await e2e({ workflows: [calls] });
    const failing = await env.client.start(calls, { fail: true }, { id: "opts-fail" });
    const passing = await env.client.start(calls, { fail: false }, { id: "opts-pass" });
    await waitFor(async () => {
      const raw = new Database(env!.path, { readonly: true });
      try {
        return (raw.prepare("SELECT count(*) AS n FROM activity_tasks").get() as { n: number }).n === 2;
      } finally {
        raw.close();
      }
    });
    const raw = new Database(env.path);
    raw.prepare("UPDATE activity_tasks SET options = ?").run(Buffer.from([0xc1, 0xc1]));
    raw.close();
    await env.restartWorker({ activities: [flaky] });
    expect(await passing.result({ timeout: 10_000 })).toBe(1);
    const err = await failing.result({ timeout: 10_000 }).catch((e) => e);
    expect(WorkflowFailedError.is(err)).toBe(true);
    expect(ActivityFailure.is(err.cause)).toBe(true);
    expect(err.cause.reason).toBe("validation");
    expect(err.cause.attempt).toBe(1);
    expect(err.cause.cause.message).toMatch(/payload could not be decoded/);
  });

  it("work whose workflow or activity no worker runs is reported with the fix; other runs are unaffected", async () => {
    const unknownWf = defineWorkflow(
      { name: "bad.nobody-runs-me", input: z.object({}), output: z.string() },
      async function* () {
        return "x";
      },
    );
    const unknownAct = defineActivity(
      { name: "bad.nobody-has-me", input: z.object({}), output: z.string() },
      async () => "x",
    );
    const callsUnknown = defineWorkflow(
      { name: "bad.calls-unknown", input: z.object({}), output: z.string() },
      async function* () {
        return yield* unknownAct({});
      },
    );
    const { logger, warnings } = capture();
    env = await e2e({
      workflows: [simple, callsUnknown],
      activities: [echo],
      logger,
      unknownWorkCheck: { intervalMs: 60_000, minAgeMs: 0 },
    });
    await env.client.start(unknownWf, {}, { id: "orphan" });
    const stuck = await env.client.start(callsUnknown, {}, { id: "stuck" });
    const ok = await env.client.start(simple, { v: 2 }, { id: "fine" });
    expect(await ok.result({ timeout: 10_000 })).toBe(2);
    await waitFor(async () => (await stuck.history()).some((e) => e.type === "ActivityScheduled"));
    const reported = await env.worker.reportUnknownWork();
    expect(reported).toEqual(
      expect.arrayContaining([
        { kind: "workflow", name: "bad.nobody-runs-me", count: 1 },
        { kind: "activity", name: "bad.nobody-has-me", count: 1 },
      ]),
    );
    expect(warnings.join("\n")).toMatch(
      /no live worker hosts workflow "bad.nobody-runs-me". Register its definition/,
    );
    expect(warnings.join("\n")).toMatch(/no live worker hosts activity "bad.nobody-has-me"/);
  });
});
