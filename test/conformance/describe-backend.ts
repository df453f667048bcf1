// Guards against backends that diverge from the Backend contract: lost or duplicated events, double claims, stale writers winning, wrong queue semantics.
/**
 * The backend conformance suite: one set of tests of the {@link Backend} contract that every
 * backend runs (SQLite now, PostgreSQL later). A backend's test file is setup, teardown and one
 * call to {@link describeBackend}.
 *
 * Time is driven through the backend's injected clock (`clock.advance`), never by sleeping, and the
 * tests compare times relative to `backend.now()` rather than asserting wall-clock values.
 */
import {
  type ActivationCommit,
  type ActivationResult,
  attemptLeaseMs,
  type Backend,
  type BackendNotification,
  type ClaimedActivityTask,
  type ClaimedWorkflowTask,
  ConflictError,
  type EventType,
  type IdConflictPolicy,
  type NewActivityTask,
  type RawEvent,
  RunNotFoundError,
  SignalBufferFullError,
  SpoolError,
  type StartWorkflowRequest,
  WorkflowAlreadyStartedError,
} from "@spool/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commitOf } from "./commits.ts";

/** A controllable clock driving the backend under test. */
export interface TestClock {
  /** Moves the backend's clock forward. */
  advance(ms: number): void;
  /** Sets the backend's clock (optional: not every harness can). */
  set?(ms: number): void;
  /**
   * How far the clock may move by itself between two calls, in ms (default 0: it only moves on
   * `advance`). A database clock (PostgreSQL's) keeps running during a test, so checks just before
   * a lease or due-time boundary stop this much short of it, and exact time comparisons allow this
   * much drift. Keep it below 150: the heartbeat test steps back from a 200 ms lease.
   */
  slackMs?: number;
}

/** What a backend harness provides for one test: a fresh, empty store. */
export interface BackendHarness {
  backend: Backend;
  clock: TestClock;
  teardown(): Promise<void>;
}

/** Backend options a conformance test may ask its harness for (each backend has them). */
export interface BackendHarnessOptions {
  maxBufferedSignals?: number;
}

const bytes = (...values: number[]) => new Uint8Array(values);

/** An event to append, before the helper gives it a position and time. */
interface Append {
  type: EventType;
  step: number | null;
  body: Uint8Array | null;
}

/**
 * Registers the conformance suite for one backend. `makeBackend` is called before every test and
 * must return an empty store whose clock only moves when `clock.advance` is called.
 *
 * @example
 * ```ts
 * describeBackend("SqliteBackend :memory:", async () => {
 *   let t = 1_700_000_000_000;
 *   const backend = new SqliteBackend({ path: ":memory:", clock: () => t });
 *   return { backend, clock: { advance: (ms) => { t += ms; } }, teardown: () => backend.close() };
 * });
 * ```
 */
export function describeBackend(
  name: string,
  makeBackend: (options?: BackendHarnessOptions) => Promise<BackendHarness>,
): void {
  describe(`Backend conformance: ${name}`, () => {
    let backend: Backend;
    let clock: TestClock;
    let teardown: () => Promise<void>;
    /** See TestClock.slackMs. */
    const slack = () => clock.slackMs ?? 0;
    const expectNear = (actual: number | null, expected: number) => {
      if (slack() === 0) expect(actual).toBe(expected);
      else expect(Math.abs((actual ?? Number.NaN) - expected)).toBeLessThanOrEqual(slack());
    };

    beforeEach(async () => {
      ({ backend, clock, teardown } = await makeBackend());
      await backend.init();
    });
    afterEach(async () => {
      await teardown();
    });

    // ── helpers ──────────────────────────────────────────────────────────────────────────

    const start = (
      workflowId: string,
      opts: { name?: string; onConflict?: IdConflictPolicy; version?: string } = {},
    ) =>
      backend.startWorkflow({
        workflowId,
        workflowName: opts.name ?? "wf",
        version: opts.version ?? null,
        startedEventBody: bytes(1, 2, 3),
        onConflict: opts.onConflict ?? "attach",
      });

    const claim = (names: string[] = ["wf"], opts: { leaseMs?: number; workerId?: string } = {}) =>
      backend.claimWorkflowTask({
        workerId: opts.workerId ?? "worker-a",
        workflowNames: names,
        leaseMs: opts.leaseMs ?? 10_000,
      });

    const claimOrFail = async (
      names: string[] = ["wf"],
      opts: { leaseMs?: number; workerId?: string } = {},
    ) => {
      const task = await claim(names, opts);
      if (task === null) throw new Error(`expected a claimable workflow task for ${names.join(", ")}`);
      return task;
    };

    const claimActivity = (names: string[] = ["act"], workerId = "worker-a") =>
      backend.claimActivityTask({ workerId, activityNames: names });

    const claimActivityOrFail = async (names: string[] = ["act"]) => {
      const task = await claimActivity(names);
      if (task === null) throw new Error(`expected a claimable activity task for ${names.join(", ")}`);
      return task;
    };

    /** The start request of the signalWithStart tests (which apply their own conflict policy). */
    const orderStart = {
      workflowId: "order-1",
      workflowName: "wf",
      version: null,
      startedEventBody: bytes(1),
      onConflict: "fail" as const,
    };

    const positioned = (afterSeq: number, list: Append[]): RawEvent[] =>
      list.map((e, i) => ({ seq: afterSeq + 1 + i, ts: backend.now(), ...e }));

    /**
     * Commits an activation of a claimed task, the way a worker does: the inbox events it read
     * become history (unless `consume` is false), followed by `append`.
     */
    const activate = (
      task: ClaimedWorkflowTask,
      extra: Partial<ActivationCommit> & { append?: Append[]; consume?: boolean } = {},
    ): Promise<ActivationResult> => {
      const { append = [], consume = true, ...rest } = extra;
      const consumed = consume ? task.inbox : [];
      const events = positioned(task.run.lastSeq, [
        ...consumed.map((e) => ({ type: e.type, step: e.step, body: e.body })),
        ...append,
      ]);
      return backend.commitActivation({
        ...commitOf(task.run.runId, task.run.lastSeq),
        fence: task.fence,
        events,
        consumedInbox: consumed.map((e) => e.id),
        ...rest,
      });
    };

    /** The eager path: a commit guarded by the sequence number only (no fence). */
    const commitUnfenced = async (
      runId: string,
      extra: Partial<ActivationCommit> & { append?: Append[] } = {},
    ) => {
      const run = await backend.inspect.getRun(runId);
      if (run === null) throw new Error(`no run ${runId}`);
      const { append = [], ...rest } = extra;
      return backend.commitActivation({
        ...commitOf(runId, run.lastSeq),
        events: positioned(run.lastSeq, append),
        ...rest,
      });
    };

    const activity = (step: number, over: Partial<NewActivityTask> = {}): NewActivityTask => ({
      step,
      name: "act",
      input: bytes(7, step),
      options: bytes(8),
      timeoutMs: 1_000,
      heartbeatTimeoutMs: 0,
      ...over,
    });

    const scheduled = (step: number): Append => ({ type: "ActivityScheduled", step, body: bytes(step) });

    /** Starts a run and commits its first activation, leaving it idle. */
    const startIdle = async (workflowId: string, name = "wf") => {
      const { runId } = await start(workflowId, { name });
      const task = await claimOrFail([name]);
      expect(task.run.runId).toBe(runId);
      await activate(task);
      return runId;
    };

    /** Completes an open, unleased run (eager path: seq guard only), consuming its inbox first. */
    const complete = async (runId: string) => {
      const inbox = await backend.getInbox(runId);
      return commitUnfenced(runId, {
        append: [
          ...inbox.map((e) => ({ type: e.type, step: e.step, body: e.body })),
          { type: "WorkflowCompleted", step: null, body: bytes(42) },
        ],
        consumedInbox: inbox.map((e) => e.id),
        close: { status: "completed", result: bytes(42) },
      });
    };

    const rejection = async (p: Promise<unknown>): Promise<unknown> => {
      try {
        await p;
      } catch (err) {
        return err;
      }
      throw new Error("expected the call to reject");
    };

    const recordNotifications = () => {
      const seen: BackendNotification[] = [];
      const unsubscribe = backend.subscribe((n) => seen.push(n));
      return { seen, unsubscribe };
    };

    // ── starting runs ────────────────────────────────────────────────────────────────────

    describe("startWorkflow", () => {
      it("creates a running run whose history is WorkflowStarted at seq 1, with a ready workflow task", async () => {
        const res = await start("order-1", { version: "v1" });
        expect(res).toMatchObject({ created: true, workflowName: "wf" });

        const run = await backend.inspect.getRun(res.runId);
        expect(run).toMatchObject({
          runId: res.runId,
          workflowId: "order-1",
          workflowName: "wf",
          status: "running",
          version: "v1",
          lastSeq: 1,
          closedAt: null,
          parentRunId: null,
          continuedFromRunId: null,
          continuedToRunId: null,
          result: null,
          error: null,
          blockedReason: null,
        });

        const history = await backend.getHistory(res.runId);
        expect(history).toHaveLength(1);
        expect(history[0]).toMatchObject({ seq: 1, type: "WorkflowStarted", step: null });
        expect(Array.from(history[0]!.body!)).toEqual([1, 2, 3]);

        const task = await claimOrFail();
        expect(task.run.runId).toBe(res.runId);
        expect(task.inbox).toEqual([]);
      });

      it("attach returns the open run, and the latest closed run once it has finished", async () => {
        const first = await start("order-1");
        const again = await start("order-1", { name: "something-else" });
        expect(again).toEqual({ runId: first.runId, created: false, workflowName: "wf" });

        await complete(first.runId);
        const afterClose = await start("order-1");
        expect(afterClose).toEqual({ runId: first.runId, created: false, workflowName: "wf" });
        expect((await backend.inspect.listRuns({ workflowId: "order-1" })).runs).toHaveLength(1);
      });

      it("fail rejects an id that has an open or a closed run", async () => {
        const first = await start("order-1", { onConflict: "fail" });
        const err = await rejection(start("order-1", { onConflict: "fail" }));
        expect(err).toBeInstanceOf(WorkflowAlreadyStartedError);
        expect((err as WorkflowAlreadyStartedError).runId).toBe(first.runId);

        await complete(first.runId);
        expect(await rejection(start("order-1", { onConflict: "fail" }))).toBeInstanceOf(
          WorkflowAlreadyStartedError,
        );
      });

      it("startNewIfClosed attaches to an open run and starts a new one after it closed", async () => {
        const first = await start("order-1", { onConflict: "startNewIfClosed" });
        expect(await start("order-1", { onConflict: "startNewIfClosed" })).toMatchObject({
          runId: first.runId,
          created: false,
        });
        await complete(first.runId);
        const second = await start("order-1", { onConflict: "startNewIfClosed" });
        expect(second.created).toBe(true);
        expect(second.runId).not.toBe(first.runId);
        expect((await backend.inspect.getLatestRun("order-1"))?.runId).toBe(second.runId);
      });

      it("concurrent starts of one id create exactly one run", async () => {
        const attached = await Promise.all(Array.from({ length: 20 }, () => start("order-1")));
        expect(attached.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(attached.map((r) => r.runId)).size).toBe(1);

        const failing = await Promise.allSettled(
          Array.from({ length: 10 }, () => start("order-2", { onConflict: "fail" })),
        );
        expect(failing.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        for (const r of failing) {
          if (r.status === "rejected") expect(r.reason).toBeInstanceOf(WorkflowAlreadyStartedError);
        }
        expect((await backend.inspect.listRuns({ workflowIdPrefix: "order-" })).runs).toHaveLength(2);
      });
    });

    // ── signals ──────────────────────────────────────────────────────────────────────────

    describe("signals", () => {
      it("buffers signals in arrival order and hands them to the claim", async () => {
        const { runId } = await start("order-1");
        for (const b of [1, 2, 3]) {
          expect(await backend.signalWorkflow({ workflowId: "order-1", body: bytes(b) })).toEqual({ runId });
        }
        const inbox = await backend.getInbox(runId);
        expect(inbox.map((e) => [e.type, e.step, Array.from(e.body!)])).toEqual([
          ["SignalReceived", null, [1]],
          ["SignalReceived", null, [2]],
          ["SignalReceived", null, [3]],
        ]);
        expect(inbox.map((e) => e.id)).toEqual([...inbox.map((e) => e.id)].sort((a, b) => a - b));

        const task = await claimOrFail();
        expect(task.inbox).toEqual(inbox);
      });

      it("wakes an idle run, and an activation with an empty inbox leaves nothing to claim", async () => {
        const runId = await startIdle("order-1");
        expect(await claim()).toBeNull();

        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(9) });
        const task = await claimOrFail();
        expect(task.run.runId).toBe(runId);
        expect(task.inbox.map((e) => e.type)).toEqual(["SignalReceived"]);
      });

      it("targets a specific run by runId", async () => {
        const { runId } = await start("order-1");
        expect(await backend.signalWorkflow({ workflowId: "order-1", runId, body: bytes(1) })).toEqual({
          runId,
        });
        expect(await backend.getInbox(runId)).toHaveLength(1);
      });

      it("rejects unknown ids, closed runs and mismatched run ids with RunNotFoundError", async () => {
        expect(
          await rejection(backend.signalWorkflow({ workflowId: "nope", body: bytes(1) })),
        ).toBeInstanceOf(RunNotFoundError);
        const { runId } = await start("order-1");
        const other = await start("order-2");
        expect(
          await rejection(
            backend.signalWorkflow({ workflowId: "order-1", runId: other.runId, body: bytes(1) }),
          ),
        ).toBeInstanceOf(RunNotFoundError);

        await complete(runId);
        expect(
          await rejection(backend.signalWorkflow({ workflowId: "order-1", body: bytes(1) })),
        ).toBeInstanceOf(RunNotFoundError);
        expect(
          await rejection(backend.signalWorkflow({ workflowId: "order-1", runId, body: bytes(1) })),
        ).toBeInstanceOf(RunNotFoundError);
      });

      it("does not disturb a live lease: the signal waits for the holder, then the task is ready again", async () => {
        const { runId } = await start("order-1");
        const held = await claimOrFail(["wf"], { workerId: "a" });
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(5) });
        expect(await claim(["wf"], { workerId: "b" })).toBeNull();

        await activate(held); // consumed nothing: the signal arrived after the claim
        const next = await claimOrFail(["wf"], { workerId: "b" });
        expect(next.run.runId).toBe(runId);
        expect(next.inbox.map((e) => Array.from(e.body!))).toEqual([[5]]);
      });

      it("an activation consumes exactly the inbox events it read", async () => {
        const { runId } = await start("order-1");
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(1) });
        const task = await claimOrFail();
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(2) });
        await activate(task);

        const history = await backend.getHistory(runId);
        expect(history.map((e) => [e.seq, e.type])).toEqual([
          [1, "WorkflowStarted"],
          [2, "SignalReceived"],
        ]);
        const next = await claimOrFail();
        expect(next.inbox.map((e) => Array.from(e.body!))).toEqual([[2]]);
      });

      it("signalWithStart starts a run with the signal in its inbox, or signals the open run", async () => {
        const first = await backend.signalWithStart(orderStart, bytes(10));
        expect(first).toMatchObject({ created: true, workflowName: "wf" });
        const second = await backend.signalWithStart(orderStart, bytes(11));
        expect(second).toEqual({ runId: first.runId, created: false, workflowName: "wf" });
        expect((await backend.getInbox(first.runId)).map((e) => Array.from(e.body!))).toEqual([[10], [11]]);
        expect(await backend.getHistory(first.runId)).toHaveLength(1);

        await complete(first.runId);
        const third = await backend.signalWithStart(orderStart, bytes(12));
        expect(third.created).toBe(true);
        expect(third.runId).not.toBe(first.runId);
        expect((await backend.getInbox(third.runId)).map((e) => Array.from(e.body!))).toEqual([[12]]);
      });
    });

    describe("signal request ids", () => {
      it("a signal repeated with the same request id is delivered once, even after it was consumed", async () => {
        const { runId } = await start("order-1");
        const send = (requestId: string, b: number) =>
          backend.signalWorkflow({ workflowId: "order-1", body: bytes(b), requestId });
        expect(await send("approve-1", 1)).toEqual({ runId });
        expect(await send("approve-1", 1)).toEqual({ runId });
        expect(await send("approve-2", 2)).toEqual({ runId });
        expect((await backend.getInbox(runId)).map((e) => Array.from(e.body!))).toEqual([[1], [2]]);

        // Consumed into history: a late retry still does not deliver it again.
        await activate(await claimOrFail());
        expect(await send("approve-1", 1)).toEqual({ runId });
        expect(await backend.getInbox(runId)).toEqual([]);
        // Without an id, signals are not de-duplicated.
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(3) });
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(3) });
        expect(await backend.getInbox(runId)).toHaveLength(2);
      });

      it("keys belong to one run: a new run of the workflow id accepts them again", async () => {
        const first = await start("order-1");
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(1), requestId: "k" });
        await complete(first.runId);
        expect(
          await rejection(backend.signalWorkflow({ workflowId: "order-1", body: bytes(1), requestId: "k" })),
        ).toBeInstanceOf(RunNotFoundError);
        const second = await start("order-1", { onConflict: "startNewIfClosed" });
        expect(second.runId).not.toBe(first.runId);
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(2), requestId: "k" });
        expect((await backend.getInbox(second.runId)).map((e) => Array.from(e.body!))).toEqual([[2]]);
      });

      it("signalWithStart with a request id starts once and signals once", async () => {
        const first = await backend.signalWithStart(orderStart, bytes(10), { requestId: "go" });
        const again = await backend.signalWithStart(orderStart, bytes(10), { requestId: "go" });
        expect(again).toEqual({ runId: first.runId, created: false, workflowName: "wf" });
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(10), requestId: "go" });
        expect((await backend.getInbox(first.runId)).map((e) => Array.from(e.body!))).toEqual([[10]]);
      });
    });

    describe("input fingerprints", () => {
      const startWith = (inputHash: string | null | undefined, onConflict: IdConflictPolicy = "attach") =>
        backend.startWorkflow({
          workflowId: "order-1",
          workflowName: "wf",
          version: null,
          startedEventBody: bytes(1),
          onConflict,
          ...(inputHash !== undefined ? { inputHash } : {}),
        });

      it("a start with the same input attaches; with a different one it is WorkflowAlreadyStartedError naming the run", async () => {
        const first = await startWith("aaaa");
        expect(await startWith("aaaa")).toEqual({ runId: first.runId, created: false, workflowName: "wf" });
        const err = await rejection(startWith("bbbb"));
        expect(err).toBeInstanceOf(WorkflowAlreadyStartedError);
        expect((err as WorkflowAlreadyStartedError).runId).toBe(first.runId);
        expect((err as Error).message).toMatch(
          new RegExp(
            `"order-1" already has run ${first.runId} \\(status running\\), started with a different input`,
          ),
        );
        expect((err as Error).message).toMatch(/onConflict: "useExisting"/);
        // The caller's policy decides: attach whatever the input, or refuse any existing run.
        expect((await startWith("bbbb", "useExisting")).runId).toBe(first.runId);
        expect(await rejection(startWith("aaaa", "fail"))).toBeInstanceOf(WorkflowAlreadyStartedError);
        // Unknown on either side (a run from before fingerprints, a caller without one): attach.
        expect((await startWith(undefined)).runId).toBe(first.runId);
        expect((await backend.inspect.listRuns({ workflowId: "order-1" })).runs).toHaveLength(1);
      });

      it("a completed run conflicts too; startNewIfClosed starts a new run with the new input", async () => {
        const first = await startWith("aaaa");
        await complete(first.runId);
        const err = await rejection(startWith("bbbb"));
        expect(err).toBeInstanceOf(WorkflowAlreadyStartedError);
        expect((err as Error).message).toMatch(/\(status completed\)/);
        expect((await startWith("aaaa")).runId).toBe(first.runId);
        const second = await startWith("bbbb", "startNewIfClosed");
        expect(second.created).toBe(true);
        // ...which is now the run the id's starts compare with.
        expect((await startWith("bbbb")).runId).toBe(second.runId);
        expect(await rejection(startWith("aaaa", "startNewIfClosed"))).toBeInstanceOf(
          WorkflowAlreadyStartedError,
        );
      });

      it("a run stored without a fingerprint attaches any input", async () => {
        const first = await startWith(null);
        expect((await startWith("bbbb")).runId).toBe(first.runId);
        expect((await startWith("cccc")).runId).toBe(first.runId);
      });

      it("signalWithStart to an open run with a different input delivers nothing, unless useExisting", async () => {
        const req = (inputHash: string, onConflict: IdConflictPolicy): StartWorkflowRequest => ({
          ...orderStart,
          onConflict,
          inputHash,
        });
        const first = await backend.signalWithStart(req("aaaa", "startNewIfClosed"), bytes(1));
        const err = await rejection(backend.signalWithStart(req("bbbb", "startNewIfClosed"), bytes(2)));
        expect(err).toBeInstanceOf(WorkflowAlreadyStartedError);
        expect((await backend.getInbox(first.runId)).map((e) => Array.from(e.body!))).toEqual([[1]]);
        const attached = await backend.signalWithStart(req("bbbb", "useExisting"), bytes(3));
        expect(attached).toEqual({ runId: first.runId, created: false, workflowName: "wf" });
        expect((await backend.getInbox(first.runId)).map((e) => Array.from(e.body!))).toEqual([[1], [3]]);
      });

      it("child runs store their fingerprint", async () => {
        const runId = await startIdle("parent");
        const task = await (async () => {
          await backend.signalWorkflow({ workflowId: "parent", body: bytes(1) });
          return claimOrFail();
        })();
        await activate(task, {
          append: [{ type: "ChildStarted", step: 1, body: bytes(1) }],
          children: [
            {
              step: 1,
              workflowId: "kid",
              workflowName: "wf",
              version: null,
              startedEventBody: bytes(5),
              inputHash: "aaaa",
            },
          ],
        });
        const kid = await backend.inspect.getLatestRun("kid");
        expect(kid?.parentRunId).toBe(runId);
        const err = await rejection(
          backend.startWorkflow({
            ...orderStart,
            workflowId: "kid",
            onConflict: "attach",
            inputHash: "bbbb",
          }),
        );
        expect(err).toBeInstanceOf(WorkflowAlreadyStartedError);
      });
    });

    describe("unconsumed signal cap", () => {
      /** A second store of the same kind with a small cap (the suite's own store keeps the default). */
      const capped = async (cap: number) => {
        const h = await makeBackend({ maxBufferedSignals: cap });
        await h.backend.init();
        return h;
      };

      it("refuses the signal over the cap with SignalBufferFullError; consumed signals make room", async () => {
        const h = await capped(3);
        try {
          const b = h.backend;
          const { runId } = await b.startWorkflow({ ...orderStart, onConflict: "attach" });
          const send = (v: number, requestId?: string) =>
            b.signalWorkflow({ workflowId: "order-1", body: bytes(v), ...(requestId ? { requestId } : {}) });
          for (const v of [1, 2, 3]) await send(v, `r${v}`);
          const err = await rejection(send(4));
          expect(err).toBeInstanceOf(SignalBufferFullError);
          expect(err).toMatchObject({ workflowId: "order-1", runId, waiting: 3, limit: 3 });
          expect((err as Error).message).toMatch(
            /3 signals already wait unconsumed by its code, the cap is 3/,
          );
          // A retry of a signal already accepted is still a harmless no-op.
          expect(await send(1, "r1")).toEqual({ runId });
          expect(
            await rejection(b.signalWithStart({ ...orderStart, onConflict: "startNewIfClosed" }, bytes(5))),
          ).toBeInstanceOf(SignalBufferFullError);
          expect(await b.getInbox(runId)).toHaveLength(3);

          // Recorded into history but still buffered by the code: still full.
          const task = await b.claimWorkflowTask({ workerId: "w", workflowNames: ["wf"], leaseMs: 10_000 });
          await b.commitActivation({
            ...commitOf(runId, task!.run.lastSeq),
            fence: task!.fence,
            events: task!.inbox.map((e, i) => ({
              seq: task!.run.lastSeq + 1 + i,
              ts: b.now(),
              type: e.type,
              step: e.step,
              body: e.body,
            })),
            consumedInbox: task!.inbox.map((e) => e.id),
            bufferedSignals: 3,
          });
          expect(await rejection(send(6))).toBeInstanceOf(SignalBufferFullError);
          // The code took two with wait(): two more fit.
          await b.commitActivation({ ...commitOf(runId, task!.run.lastSeq + 3), bufferedSignals: 1 });
          await send(7);
          await send(8);
          expect(await rejection(send(9))).toMatchObject({ waiting: 3 });
        } finally {
          await h.teardown();
        }
      });

      it("concurrent senders cannot overshoot the cap", async () => {
        const h = await capped(4);
        try {
          const b = h.backend;
          const { runId } = await b.startWorkflow({ ...orderStart, onConflict: "attach" });
          const results = await Promise.allSettled(
            Array.from({ length: 12 }, (_, i) => b.signalWorkflow({ workflowId: "order-1", body: bytes(i) })),
          );
          expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(4);
          for (const r of results) {
            if (r.status === "rejected") expect(r.reason).toBeInstanceOf(SignalBufferFullError);
          }
          expect(await b.getInbox(runId)).toHaveLength(4);
        } finally {
          await h.teardown();
        }
      });
    });

    describe("closing with unseen inbox events", () => {
      it("refuses to end a run while inbound events it has not consumed wait (an acknowledged signal is never lost)", async () => {
        const runId = await startIdle("order-1");
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(5) });
        const err = await rejection(
          commitUnfenced(runId, {
            append: [{ type: "WorkflowCompleted", step: null, body: bytes(42) }],
            close: { status: "completed", result: bytes(42) },
          }),
        );
        expect(ConflictError.is(err)).toBe(true);
        expect((await backend.inspect.getRun(runId))?.status).toBe("running");
        expect(await backend.getInbox(runId)).toHaveLength(1);
        await complete(runId);
        const history = await backend.getHistory(runId);
        expect(history.map((e) => e.type)).toEqual([
          "WorkflowStarted",
          "SignalReceived",
          "WorkflowCompleted",
        ]);
      });
    });

    // ── cancellation requests ────────────────────────────────────────────────────────────

    describe("requestCancel", () => {
      it("puts CancelRequested in an open run's inbox", async () => {
        const runId = await startIdle("order-1");
        expect(await backend.requestCancel({ workflowId: "order-1", body: bytes(3) })).toEqual({
          outcome: "requested",
          runId,
          status: "running",
        });
        const task = await claimOrFail();
        expect(task.inbox.map((e) => [e.type, e.step, Array.from(e.body!)])).toEqual([
          ["CancelRequested", null, [3]],
        ]);
      });

      it("is a no-op that says so for a closed run, and RunNotFoundError for an unknown one", async () => {
        const { runId } = await start("order-1");
        await complete(runId);
        expect(await backend.requestCancel({ workflowId: "order-1", body: bytes(3) })).toEqual({
          outcome: "alreadyClosed",
          runId,
          status: "completed",
        });
        expect(await backend.requestCancel({ workflowId: "order-1", runId, body: bytes(3) })).toMatchObject({
          outcome: "alreadyClosed",
        });
        expect(await backend.getInbox(runId)).toEqual([]);
        expect(await claim()).toBeNull();
        expect(await rejection(backend.requestCancel({ workflowId: "nope", body: bytes(1) }))).toBeInstanceOf(
          RunNotFoundError,
        );
      });
    });

    // ── workflow task claims, leases and fencing ─────────────────────────────────────────

    describe("workflow task leases", () => {
      it("claims only tasks of the requested workflow names", async () => {
        await start("order-1", { name: "orders" });
        expect(await claim([])).toBeNull();
        expect(await claim(["payments"])).toBeNull();
        expect((await claimOrFail(["payments", "orders"])).run.workflowName).toBe("orders");
      });

      it("hands out the oldest ready task first", async () => {
        const a = await start("a");
        clock.advance(1);
        const b = await start("b");
        expect((await claimOrFail()).run.runId).toBe(a.runId);
        expect((await claimOrFail()).run.runId).toBe(b.runId);
        expect(await claim()).toBeNull();
      });

      it("hides a leased task until its lease expires, then re-leases it with a newer fence", async () => {
        const { runId } = await start("order-1");
        const first = await claimOrFail(["wf"], { leaseMs: 1_000 });
        expect(await claim()).toBeNull();
        clock.advance(999 - slack());
        expect(await claim()).toBeNull();
        clock.advance(1 + slack());
        const second = await claimOrFail(["wf"], { workerId: "worker-b" });
        expect(second.run.runId).toBe(runId);
        expect(second.fence).toBeGreaterThan(first.fence);
      });

      it("rejects a stale fence with ConflictError and writes nothing", async () => {
        const { runId } = await start("order-1");
        const stale = await claimOrFail(["wf"], { leaseMs: 1_000 });
        clock.advance(1_000);
        const current = await claimOrFail(["wf"], { workerId: "worker-b" });

        const err = await rejection(activate(stale, { append: [scheduled(1)], activities: [activity(1)] }));
        expect(err).toBeInstanceOf(ConflictError);
        expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(1);
        expect(await backend.getHistory(runId)).toHaveLength(1);
        expect(await claimActivity()).toBeNull();

        expect((await activate(current, { append: [scheduled(1)] })).lastSeq).toBe(2);
      });

      it("accepts a commit under an expired lease that nobody re-claimed", async () => {
        await start("order-1");
        const task = await claimOrFail(["wf"], { leaseMs: 1_000 });
        clock.advance(5_000);
        expect((await activate(task, { append: [scheduled(1)] })).lastSeq).toBe(2);
      });

      it("releaseWorkflowTask returns the task at retryAt; a stale fence is rejected", async () => {
        await start("order-1");
        const first = await claimOrFail();
        await backend.releaseWorkflowTask({
          runId: first.run.runId,
          fence: first.fence,
          retryAt: backend.now() + 500,
        });
        expect(await claim()).toBeNull();
        clock.advance(500);
        const second = await claimOrFail();
        expect(second.fence).toBeGreaterThan(first.fence);

        expect(
          await rejection(backend.releaseWorkflowTask({ runId: first.run.runId, fence: first.fence })),
        ).toBeInstanceOf(ConflictError);
        expect(await claim()).toBeNull(); // the stale release did not free the live lease

        await backend.releaseWorkflowTask({ runId: second.run.runId, fence: second.fence });
        expect((await claimOrFail()).run.runId).toBe(first.run.runId);
      });
    });

    // ── activation commits ───────────────────────────────────────────────────────────────

    describe("commitActivation", () => {
      it("appends events verbatim and getHistory returns them after afterSeq", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        const res = await activate(task, {
          append: [
            { type: "SideEffect", step: 1, body: bytes(1) },
            { type: "TimerStarted", step: 2, body: new Uint8Array(0) },
            { type: "PatchMarker", step: null, body: bytes(255, 0, 128) },
          ],
        });
        expect(res).toEqual({ lastSeq: 4, claimedActivities: [], createdRuns: [] });
        const tail = await backend.getHistory(runId, 2);
        expect(tail.map((e) => [e.seq, e.type, e.step, Array.from(e.body ?? [])])).toEqual([
          [3, "TimerStarted", 2, []],
          [4, "PatchMarker", null, [255, 0, 128]],
        ]);
        expect(tail[0]!.body).not.toBeNull(); // an empty body is not a missing body
        expect(await backend.inspect.getHistory(runId)).toEqual(await backend.getHistory(runId));
        expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(4);
      });

      it("of two commits from the same expectedLastSeq exactly one wins", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        const sideEffect = (b: number): ActivationCommit => ({
          ...commitOf(runId, 1),
          events: positioned(1, [{ type: "SideEffect", step: 1, body: bytes(b) }]),
        });
        // Two holders of the same claim and one eager (unfenced) commit, all from seq 1.
        const outcomes = await Promise.allSettled([
          backend.commitActivation({ ...sideEffect(1), fence: task.fence }),
          backend.commitActivation({ ...sideEffect(2), fence: task.fence }),
          backend.commitActivation(sideEffect(3)),
        ]);
        const won = outcomes.filter((o) => o.status === "fulfilled");
        expect(won).toHaveLength(1);
        for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toBeInstanceOf(ConflictError);
        const history = await backend.getHistory(runId);
        expect(history).toHaveLength(2);
        const winner = outcomes.findIndex((o) => o.status === "fulfilled");
        expect(Array.from(history[1]!.body!)).toEqual([winner + 1]);
      });

      it("a loser that read the same seq cannot overwrite the winner's history", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        await activate(task, { append: [{ type: "SideEffect", step: 1, body: bytes(1) }] });
        const err = await rejection(
          activate(task, { append: [{ type: "SideEffect", step: 1, body: bytes(2) }] }),
        );
        expect(err).toBeInstanceOf(ConflictError);
        expect((err as Error).message).toMatch(/seq/);
        expect(Array.from((await backend.getHistory(runId))[1]!.body!)).toEqual([1]);
      });

      it("rejects events that are not contiguous after expectedLastSeq, writing nothing", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        const err = await rejection(
          backend.commitActivation({
            ...commitOf(runId, 1),
            fence: task.fence,
            events: [{ seq: 3, ts: backend.now(), type: "SideEffect", step: 1, body: bytes(1) }],
          }),
        );
        expect(SpoolError.is(err)).toBe(true);
        expect(await backend.getHistory(runId)).toHaveLength(1);
      });

      it("rejects inbox ids that are not in the run's inbox, writing nothing", async () => {
        const { runId } = await start("order-1");
        const other = await start("order-2");
        await backend.signalWorkflow({ workflowId: "order-2", body: bytes(1) });
        const [foreign] = await backend.getInbox(other.runId);
        const task = await claimOrFail();
        expect(task.run.runId).toBe(runId);
        for (const id of [foreign!.id, 987_654_321]) {
          const err = await rejection(
            activate(task, {
              append: [{ type: "SignalReceived", step: null, body: bytes(1) }],
              consumedInbox: [id],
            }),
          );
          expect(err).toBeInstanceOf(ConflictError);
        }
        expect(await backend.getHistory(runId)).toHaveLength(1);
        expect(await backend.getInbox(other.runId)).toHaveLength(1);
      });

      it("rejects a commit to a closed run", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        await activate(task, { close: { status: "failed", error: bytes(6) } });
        expect(await rejection(commitUnfenced(runId, { append: [scheduled(1)] }))).toBeInstanceOf(
          ConflictError,
        );
        expect(await rejection(activate(task, { append: [scheduled(1)] }))).toBeInstanceOf(ConflictError);
      });
    });

    // ── activity tasks ───────────────────────────────────────────────────────────────────

    describe("activity tasks", () => {
      const schedule = async (workflowId: string, tasks: NewActivityTask[]) => {
        const { runId } = await start(workflowId);
        const task = await claimOrFail();
        await activate(task, { append: tasks.map((t) => scheduled(t.step)), activities: tasks });
        return runId;
      };

      it("schedules, claims (attempt 1) and completes into the run's inbox", async () => {
        const runId = await schedule("order-1", [activity(1, { name: "payments.charge" })]);
        expect(await claimActivity(["other"])).toBeNull();
        const attempt = await claimActivityOrFail(["payments.charge"]);
        expect(attempt).toMatchObject({
          runId,
          workflowId: "order-1",
          step: 1,
          name: "payments.charge",
          attempt: 1,
          timeoutMs: 1_000,
          heartbeatTimeoutMs: 0,
        });
        expect(Array.from(attempt.input)).toEqual([7, 1]);
        expect(Array.from(attempt.options)).toEqual([8]);
        expect(attempt.leaseExpiresAt).toBeGreaterThan(backend.now());
        expect(await claimActivity(["payments.charge"])).toBeNull();

        await backend.completeActivityTask(attempt, { type: "ActivityCompleted", body: bytes(9) });
        expect(await claimActivity(["payments.charge"])).toBeNull();
        const task = await claimOrFail();
        expect(task.inbox.map((e) => [e.type, e.step, Array.from(e.body!)])).toEqual([
          ["ActivityCompleted", 1, [9]],
        ]);
      });

      it("re-offers an attempt whose lease (timeout plus grace) expired and rejects the stale attempt's calls", async () => {
        const runId = await schedule("order-1", [activity(1, { timeoutMs: 1_000 })]);
        const first = await claimActivityOrFail();
        // The lease outlasts the timeout by a grace, so the owner reports its own timeout first.
        const lease = attemptLeaseMs(1_000, 0, 300_000);
        expect(lease).toBe(1_500);
        clock.advance(lease - 1 - slack());
        expect(await claimActivity()).toBeNull();
        clock.advance(1 + slack());
        const second = await claimActivityOrFail();
        expect(second.attempt).toBe(2);
        expect(second.taskId).toBe(first.taskId);
        expect(second.fence).toBeGreaterThan(first.fence);

        expect(await rejection(backend.heartbeatActivityTask(first, 1_000))).toBeInstanceOf(ConflictError);
        expect(
          await rejection(backend.completeActivityTask(first, { type: "ActivityCompleted", body: bytes(1) })),
        ).toBeInstanceOf(ConflictError);
        expect(await rejection(backend.retryActivityTask(first, backend.now(), bytes(1)))).toBeInstanceOf(
          ConflictError,
        );
        expect(await backend.getInbox(runId)).toEqual([]);

        await backend.completeActivityTask(second, { type: "ActivityCompleted", body: bytes(2) });
        expect((await backend.getInbox(runId)).map((e) => Array.from(e.body!))).toEqual([[2]]);
      });

      it("leases by heartbeat timeout when set, and a heartbeat extends the lease", async () => {
        await schedule("order-1", [activity(1, { timeoutMs: 60_000, heartbeatTimeoutMs: 100 })]);
        const attempt = await claimActivityOrFail();
        // Lease 100 ms + 100 ms grace; a heartbeat at 180 ms renews it to 200 ms from then.
        clock.advance(180);
        const { leaseExpiresAt } = await backend.heartbeatActivityTask(
          attempt,
          attemptLeaseMs(60_000, 100, 0),
        );
        expect(leaseExpiresAt).toBeGreaterThan(attempt.leaseExpiresAt);
        clock.advance(180 - slack());
        expect(await claimActivity()).toBeNull();
        clock.advance(21 + slack());
        expect((await claimActivityOrFail()).attempt).toBe(2);
      });

      it("retryActivityTask re-offers the task at retryAt with the next attempt", async () => {
        await schedule("order-1", [activity(1)]);
        const first = await claimActivityOrFail();
        await backend.retryActivityTask(first, backend.now() + 500, bytes(4));
        expect(await claimActivity()).toBeNull();
        expect(await rejection(backend.heartbeatActivityTask(first, 1_000))).toBeInstanceOf(ConflictError);
        clock.advance(500);
        const second = await claimActivityOrFail();
        expect(second.attempt).toBe(2);
        expect(
          await rejection(backend.completeActivityTask(first, { type: "ActivityCompleted", body: bytes(1) })),
        ).toBeInstanceOf(ConflictError);
      });

      it("releaseActivityTask gives back an attempt that never started: ready now, not counted", async () => {
        await schedule("order-1", [activity(1)]);
        const first = await claimActivityOrFail();
        expect(first.attempt).toBe(1);
        await backend.releaseActivityTask(first);
        expect(await rejection(backend.releaseActivityTask(first))).toBeInstanceOf(ConflictError);
        expect(await rejection(backend.heartbeatActivityTask(first, 1_000))).toBeInstanceOf(ConflictError);
        const again = await claimActivityOrFail();
        expect(again.attempt).toBe(1);
        expect(again.fence).toBeGreaterThan(first.fence);
      });

      it("cancelActivities withdraws a task and tells the running attempt", async () => {
        const runId = await schedule("order-1", [activity(1), activity(2)]);
        const running = await claimActivityOrFail();
        const { seen, unsubscribe } = recordNotifications();
        await commitUnfenced(runId, {
          append: [{ type: "ActivityCancelled", step: running.step, body: null }],
          cancelActivities: [1, 2],
        });
        unsubscribe();
        expect(seen).toContainEqual({ kind: "activity-cancelled", taskId: running.taskId });
        expect(seen.filter((n) => n.kind === "activity-cancelled")).toHaveLength(1); // the other was never leased
        expect(await rejection(backend.heartbeatActivityTask(running, 1_000))).toBeInstanceOf(ConflictError);
        expect(
          await rejection(
            backend.completeActivityTask(running, { type: "ActivityCompleted", body: bytes(1) }),
          ),
        ).toBeInstanceOf(ConflictError);
        expect(await claimActivity()).toBeNull();
        expect(await backend.getInbox(runId)).toEqual([]);
      });

      it("eagerActivities claims up to maxTasks of the new tasks it can run, in the commit", async () => {
        await start("order-1");
        const task = await claimOrFail();
        const res = await activate(task, {
          append: [scheduled(1), scheduled(2), scheduled(3), scheduled(4)],
          activities: [activity(1), activity(2, { name: "other" }), activity(3), activity(4)],
          eagerActivities: { workerId: "worker-a", maxTasks: 2, activityNames: ["act"] },
        });
        // Step 2 is of a name this worker does not run: it stays in the queue for a worker that does.
        expect(res.claimedActivities.map((a) => [a.step, a.attempt, a.workflowId])).toEqual([
          [1, 1, "order-1"],
          [3, 1, "order-1"],
        ]);
        expect(res.claimedActivities[0]!.leaseExpiresAt).toBeGreaterThan(backend.now());
        expect((await claimActivityOrFail()).step).toBe(4);
        expect(await claimActivity()).toBeNull();
        expect((await backend.claimActivityTask({ workerId: "w2", activityNames: ["other"] }))?.step).toBe(2);
        await backend.completeActivityTask(res.claimedActivities[0]!, {
          type: "ActivityCompleted",
          body: bytes(1),
        });
        await backend.heartbeatActivityTask(res.claimedActivities[1]!, 1_000);
      });

      it("completedActivity removes the task in the commit, and a stale fence rejects the whole commit", async () => {
        await start("order-1");
        const task = await claimOrFail();
        const res = await activate(task, {
          append: [scheduled(1)],
          activities: [activity(1, { timeoutMs: 1_000 })],
          eagerActivities: { workerId: "worker-a", maxTasks: 1, activityNames: ["act"] },
        });
        const eager = res.claimedActivities[0]!;
        clock.advance(attemptLeaseMs(1_000, 0, 300_000));
        const reclaimed = await claimActivityOrFail();
        const runId = task.run.runId;

        const completion: Append = { type: "ActivityCompleted", step: 1, body: bytes(1) };
        const err = await rejection(
          commitUnfenced(runId, {
            append: [completion],
            completedActivity: { taskId: eager.taskId, fence: eager.fence },
          }),
        );
        expect(err).toBeInstanceOf(ConflictError);
        expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(2);

        await commitUnfenced(runId, {
          append: [completion],
          completedActivity: { taskId: reclaimed.taskId, fence: reclaimed.fence },
        });
        expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(3);
        expect(
          await rejection(
            backend.completeActivityTask(reclaimed, { type: "ActivityCompleted", body: bytes(1) }),
          ),
        ).toBeInstanceOf(ConflictError);
        clock.advance(10_000);
        expect(await claimActivity()).toBeNull();
        expect(await claim()).toBeNull();
      });
    });

    // ── timers ───────────────────────────────────────────────────────────────────────────

    describe("timers", () => {
      const withTimers = async (workflowId: string, offsets: { step: number; in: number }[]) => {
        const { runId } = await start(workflowId);
        const task = await claimOrFail();
        const now = backend.now();
        await activate(task, {
          append: offsets.map((o) => ({ type: "TimerStarted" as const, step: o.step, body: bytes(o.step) })),
          timers: offsets.map((o) => ({ step: o.step, dueAt: now + o.in })),
        });
        return runId;
      };

      it("fire only when due, exactly once, as TimerFired with the timer's step", async () => {
        const runId = await withTimers("order-1", [{ step: 1, in: 1_000 }]);
        expect(await backend.fireDueTimers(10)).toBe(0);
        clock.advance(999 - slack());
        expect(await backend.fireDueTimers(10)).toBe(0);
        expect(await claim()).toBeNull();
        clock.advance(1 + slack());
        expect(await backend.fireDueTimers(10)).toBe(1);
        expect(await backend.fireDueTimers(10)).toBe(0);
        const task = await claimOrFail();
        expect(task.run.runId).toBe(runId);
        expect(task.inbox.map((e) => [e.type, e.step, e.body])).toEqual([["TimerFired", 1, null]]);
      });

      it("cancelTimers removes a pending timer", async () => {
        const runId = await withTimers("order-1", [{ step: 1, in: 1_000 }]);
        await commitUnfenced(runId, {
          append: [{ type: "TimerCancelled", step: 1, body: null }],
          cancelTimers: [1],
        });
        clock.advance(5_000);
        expect(await backend.fireDueTimers(10)).toBe(0);
        expect(await backend.getInbox(runId)).toEqual([]);
      });

      it("fire at most `limit` per call, in due-time order", async () => {
        const runId = await withTimers("order-1", [
          { step: 1, in: 300 },
          { step: 2, in: 100 },
          { step: 3, in: 200 },
        ]);
        clock.advance(1_000);
        expect(await backend.fireDueTimers(2)).toBe(2);
        expect(await backend.fireDueTimers(2)).toBe(1);
        expect((await backend.getInbox(runId)).map((e) => e.step)).toEqual([2, 3, 1]);
      });

      it("nextWakeAt reports the earliest timer, retry or lease expiry, and null when idle", async () => {
        expect(await backend.nextWakeAt()).toBeNull();
        const runId = await withTimers("order-1", [{ step: 1, in: 1_000 }]);
        const timerDue = backend.now() + 1_000;
        expectNear(await backend.nextWakeAt(), timerDue);

        await commitUnfenced(runId, {
          append: [scheduled(2)],
          activities: [activity(2, { timeoutMs: 400 })],
        });
        expect(await backend.nextWakeAt()).toBeLessThanOrEqual(backend.now()); // a ready activity task
        const attempt = await claimActivityOrFail();
        expect(await backend.nextWakeAt()).toBe(attempt.leaseExpiresAt);
        await backend.retryActivityTask(attempt, backend.now() + 200, bytes(1));
        expectNear(await backend.nextWakeAt(), backend.now() + 200);
      });
    });

    // ── child runs ───────────────────────────────────────────────────────────────────────

    describe("child runs", () => {
      const child = (step: number, workflowId: string) => ({
        step,
        workflowId,
        workflowName: "child-wf",
        version: null,
        startedEventBody: bytes(50 + step),
      });

      it("creates child runs linked to the parent, each with its own history and ready task", async () => {
        const { runId } = await start("parent");
        const task = await claimOrFail();
        const res = await activate(task, {
          append: [{ type: "ChildStarted", step: 1, body: bytes(1) }],
          children: [child(1, "parent/child-1")],
        });
        expect(res.createdRuns).toHaveLength(1);
        const created = res.createdRuns[0]!;
        expect(created).toMatchObject({ step: 1, workflowId: "parent/child-1" });

        expect(await backend.inspect.getRun(created.runId)).toMatchObject({
          workflowId: "parent/child-1",
          workflowName: "child-wf",
          status: "running",
          lastSeq: 1,
          parentRunId: runId,
          parentWorkflowId: "parent",
          parentStep: 1,
        });
        expect(Array.from((await backend.getHistory(created.runId))[0]!.body!)).toEqual([51]);
        expect((await claimOrFail(["child-wf"])).run.runId).toBe(created.runId);
        expect((await backend.inspect.listRuns({ parentRunId: runId })).runs.map((r) => r.runId)).toEqual([
          created.runId,
        ]);
      });

      it("reports ChildStartFailed to the parent when the child id has an open run", async () => {
        const taken = await start("taken", { name: "child-wf" });
        const { runId } = await start("parent");
        const task = await claimOrFail(["wf"]);
        const res = await activate(task, {
          append: [
            { type: "ChildStarted", step: 1, body: bytes(1) },
            { type: "ChildStarted", step: 2, body: bytes(2) },
          ],
          children: [child(1, "taken"), child(2, "fresh")],
        });
        expect(res.createdRuns.map((r) => [r.step, r.workflowId])).toEqual([[2, "fresh"]]);
        expect((await backend.inspect.getRun(taken.runId))?.parentRunId).toBeNull();

        const next = await claimOrFail(["wf"]);
        expect(next.run.runId).toBe(runId);
        expect(next.inbox.map((e) => [e.type, e.step, e.body])).toEqual([["ChildStartFailed", 1, null]]);
      });

      it("starts a child whose id only has closed runs", async () => {
        const old = await start("reused", { name: "child-wf" });
        await complete(old.runId);
        await start("parent");
        const res = await activate(await claimOrFail(["wf"]), {
          append: [{ type: "ChildStarted", step: 1, body: bytes(1) }],
          children: [child(1, "reused")],
        });
        expect(res.createdRuns).toHaveLength(1);
        expect(res.createdRuns[0]!.runId).not.toBe(old.runId);
      });

      it("a closing child puts its parentEvent in the open parent's inbox at the parent's step", async () => {
        const { runId: parentRunId } = await start("parent");
        const res = await activate(await claimOrFail(["wf"]), {
          append: [{ type: "ChildStarted", step: 4, body: bytes(1) }],
          children: [child(4, "parent/child")],
        });
        const childTask = await claimOrFail(["child-wf"]);
        expect(await claim(["wf"])).toBeNull();
        await activate(childTask, {
          append: [{ type: "WorkflowCompleted", step: null, body: bytes(5) }],
          close: {
            status: "completed",
            result: bytes(5),
            parentEvent: { type: "ChildCompleted", body: bytes(5) },
          },
        });
        expect((await backend.inspect.getRun(res.createdRuns[0]!.runId))?.status).toBe("completed");
        const parentTask = await claimOrFail(["wf"]);
        expect(parentTask.run.runId).toBe(parentRunId);
        expect(parentTask.inbox.map((e) => [e.type, e.step, Array.from(e.body!)])).toEqual([
          ["ChildCompleted", 4, [5]],
        ]);
      });

      it("a child closing after its parent closed is accepted and notifies nobody", async () => {
        const { runId: parentRunId } = await start("parent");
        await activate(await claimOrFail(["wf"]), {
          append: [{ type: "ChildStarted", step: 1, body: bytes(1) }],
          children: [child(1, "parent/child")],
        });
        await complete(parentRunId);
        const childTask = await claimOrFail(["child-wf"]);
        await activate(childTask, {
          close: { status: "failed", error: bytes(1), parentEvent: { type: "ChildFailed", body: bytes(1) } },
        });
        expect(await backend.getInbox(parentRunId)).toEqual([]);
      });

      it("cancelChildren delivers CancelRequested to the child's open run only", async () => {
        const { runId } = await start("parent");
        const res = await activate(await claimOrFail(["wf"]), {
          append: [{ type: "ChildStarted", step: 1, body: bytes(1) }],
          children: [child(1, "parent/child")],
        });
        const stranger = await start("not-my-child", { name: "child-wf" });
        await commitUnfenced(runId, {
          append: [
            { type: "ChildCancelled", step: 1, body: null },
            { type: "ChildCancelled", step: 2, body: null },
          ],
          cancelChildren: [
            { step: 1, workflowId: "parent/child", body: bytes(8) },
            { step: 2, workflowId: "not-my-child", body: bytes(8) },
          ],
        });
        expect(
          (await backend.getInbox(res.createdRuns[0]!.runId)).map((e) => [
            e.type,
            e.step,
            Array.from(e.body!),
          ]),
        ).toEqual([["CancelRequested", null, [8]]]);
        expect(await backend.getInbox(stranger.runId)).toEqual([]);
      });
    });

    // ── closing and continuing ───────────────────────────────────────────────────────────

    describe("closing runs", () => {
      it("records the outcome, withdraws outstanding work and notifies run-closed", async () => {
        const { runId } = await start("order-1");
        const now = backend.now();
        await activate(await claimOrFail(), {
          append: [scheduled(1), { type: "TimerStarted", step: 2, body: bytes(2) }],
          activities: [activity(1)],
          timers: [{ step: 2, dueAt: now + 1_000 }],
        });
        const running = await claimActivityOrFail();
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(1) });
        const task = await claimOrFail();

        const { seen, unsubscribe } = recordNotifications();
        await activate(task, {
          append: [{ type: "WorkflowFailed", step: null, body: bytes(6) }],
          close: { status: "failed", error: bytes(6) },
        });
        unsubscribe();
        expect(seen).toContainEqual({ kind: "run-closed", runId, workflowId: "order-1" });
        expect(seen).toContainEqual({ kind: "activity-cancelled", taskId: running.taskId });

        const run = await backend.inspect.getRun(runId);
        expect(run).toMatchObject({ status: "failed", result: null, lastSeq: 5 });
        expect(Array.from(run!.error!)).toEqual([6]);
        expect(run!.closedAt).not.toBeNull();

        clock.advance(60_000);
        expect(await backend.fireDueTimers(10)).toBe(0);
        expect(await claimActivity()).toBeNull();
        expect(await claim()).toBeNull();
        expect(
          await rejection(
            backend.completeActivityTask(running, { type: "ActivityCompleted", body: bytes(1) }),
          ),
        ).toBeInstanceOf(ConflictError);
        expect(await backend.nextWakeAt()).toBeNull();
      });

      it("stores the result of a completed run", async () => {
        const { runId } = await start("order-1");
        await complete(runId);
        const run = await backend.inspect.getRun(runId);
        expect(run?.status).toBe("completed");
        expect(Array.from(run!.result!)).toEqual([42]);
      });

      it("continue-as-new closes the run and starts the next one with the same workflow id", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        const res = await activate(task, {
          append: [{ type: "WorkflowContinued", step: null, body: bytes(6) }],
          close: {
            status: "continued",
            continueAsNew: { workflowName: "wf", version: "v2", startedEventBody: bytes(6) },
          },
        });
        expect(res.createdRuns).toHaveLength(1);
        const next = res.createdRuns[0]!;
        expect(next).toMatchObject({ step: null, workflowId: "order-1" });

        expect(await backend.inspect.getRun(runId)).toMatchObject({
          status: "continued",
          continuedToRunId: next.runId,
        });
        expect(await backend.inspect.getRun(next.runId)).toMatchObject({
          status: "running",
          workflowId: "order-1",
          version: "v2",
          lastSeq: 1,
          continuedFromRunId: runId,
        });
        const history = await backend.getHistory(next.runId);
        expect(history.map((e) => [e.seq, e.type, Array.from(e.body!)])).toEqual([
          [1, "WorkflowStarted", [6]],
        ]);
        expect((await backend.inspect.getLatestRun("order-1"))?.runId).toBe(next.runId);
        expect((await claimOrFail()).run.runId).toBe(next.runId);
      });

      it("continue-as-new hands signals that arrived during the activation to the next run", async () => {
        await start("order-1");
        const task = await claimOrFail();
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(77) });
        const res = await activate(task, {
          close: {
            status: "continued",
            continueAsNew: { workflowName: "wf", version: null, startedEventBody: bytes(1) },
          },
        });
        const next = await claimOrFail();
        expect(next.run.runId).toBe(res.createdRuns[0]!.runId);
        expect(next.inbox.map((e) => [e.type, Array.from(e.body!)])).toEqual([["SignalReceived", [77]]]);
      });

      it("continue-as-new carries received-but-unconsumed signals first, then the unseen ones", async () => {
        await start("order-1");
        const task = await claimOrFail();
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(77) });
        await activate(task, {
          close: {
            status: "continued",
            continueAsNew: {
              workflowName: "wf",
              version: null,
              startedEventBody: bytes(1),
              carriedSignals: [bytes(10), bytes(11)],
            },
          },
        });
        const next = await claimOrFail();
        expect(next.inbox.map((e) => [e.type, Array.from(e.body!)])).toEqual([
          ["SignalReceived", [10]],
          ["SignalReceived", [11]],
          ["SignalReceived", [77]],
        ]);
      });
    });

    // ── blocked runs ─────────────────────────────────────────────────────────────────────

    describe("blocked runs", () => {
      it("blockRun parks the run without touching history until retryAt; an activation unblocks it", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        await backend.blockRun({
          runId,
          fence: task.fence,
          reason: "non-determinism at step 1",
          error: bytes(13),
          retryAt: backend.now() + 1_000,
        });
        const blocked = await backend.inspect.getRun(runId);
        expect(blocked).toMatchObject({
          status: "blocked",
          blockedReason: "non-determinism at step 1",
          lastSeq: 1,
        });
        expect(Array.from(blocked!.error!)).toEqual([13]);
        expect(await backend.getHistory(runId)).toHaveLength(1);

        // Still open: it takes signals and holds its workflow id.
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(1) });
        expect(await rejection(start("order-1", { onConflict: "fail" }))).toBeInstanceOf(
          WorkflowAlreadyStartedError,
        );
        expect(await claim()).toBeNull();

        clock.advance(1_000);
        const retry = await claimOrFail();
        expect(retry.run.status).toBe("blocked");
        expect(retry.inbox).toHaveLength(1);
        await activate(retry);
        expect(await backend.inspect.getRun(runId)).toMatchObject({
          status: "running",
          error: null,
          blockedReason: null,
          lastSeq: 2,
        });
      });

      it("blockRun with a stale fence is rejected and changes nothing", async () => {
        const { runId } = await start("order-1");
        const stale = await claimOrFail(["wf"], { leaseMs: 100 });
        clock.advance(100);
        await claimOrFail();
        const err = await rejection(
          backend.blockRun({
            runId,
            fence: stale.fence,
            reason: "x",
            error: bytes(1),
            retryAt: backend.now(),
          }),
        );
        expect(err).toBeInstanceOf(ConflictError);
        expect((await backend.inspect.getRun(runId))?.status).toBe("running");
      });

      it("retryBlockedRuns makes blocked runs of the given workflows ready now", async () => {
        const { runId } = await start("order-1");
        const task = await claimOrFail();
        await backend.blockRun({
          runId,
          fence: task.fence,
          reason: "x",
          error: bytes(1),
          retryAt: backend.now() + 3_600_000,
        });
        expect(await backend.retryBlockedRuns(["other"])).toBe(0);
        expect(await backend.retryBlockedRuns([])).toBe(0);
        expect(await claim()).toBeNull();
        expect(await backend.retryBlockedRuns(["wf", "other"])).toBe(1);
        expect((await claimOrFail()).run.runId).toBe(runId);
      });
    });

    // ── inspection ───────────────────────────────────────────────────────────────────────

    describe("worker registry", () => {
      const registration = (workerId: string, incarnation: string) => ({
        workerId,
        incarnation,
        workflowNames: ["wf"],
        activityNames: ["act"],
        heartbeatIntervalMs: 1_000,
        deadAfterMs: 5_000,
      });

      it("lists a registered worker as live with the names it hosts; a clean stop lists it as stopped", async () => {
        await backend.registerWorker(registration("worker-a", "inc-1"));
        expect(await backend.heartbeatWorker("worker-a")).toBe(true);
        const [listed] = await backend.inspect.workers();
        expect(listed).toMatchObject({
          workerId: "worker-a",
          workflowNames: ["wf"],
          activityNames: ["act"],
          pid: process.pid,
          status: "live",
        });
        // This process is alive and heartbeating: nobody to release.
        expect(await backend.releaseDeadWorkers()).toEqual({
          workers: [],
          workflowTasks: 0,
          activityTasks: 0,
        });

        await backend.unregisterWorker("worker-a");
        expect((await backend.inspect.workers()).map((w) => w.status)).toEqual(["stopped"]);
        expect(await backend.heartbeatWorker("worker-a"), "a stopped worker must register again").toBe(false);
        expect(await backend.heartbeatWorker("nobody")).toBe(false);
      });

      it("a new incarnation of a worker id releases the leases the previous one held; its late calls are rejected", async () => {
        await backend.registerWorker(registration("worker-a", "inc-1"));
        const { runId } = await start("order-1");
        const first = await claimOrFail(["wf"], { leaseMs: 60_000 });
        await activate(first, { append: [scheduled(1)], activities: [activity(1, { timeoutMs: 300_000 })] });
        const held = await claimOrFail(["wf"], { leaseMs: 60_000 }).catch(() => null);
        expect(held, "the run is idle after its activation").toBeNull();
        await backend.signalWorkflow({ workflowId: "order-1", body: bytes(5) });
        const wfLease = await claimOrFail(["wf"], { leaseMs: 60_000 });
        const attempt = await claimActivityOrFail();
        expect(attempt.attempt).toBe(1);

        // The same id registers again from a new process (a restart): the old leases are released now,
        // though the activity's lease would last five minutes more.
        await backend.registerWorker(registration("worker-a", "inc-2"));
        const again = await claimActivity(["act"], "worker-b");
        expect(again?.attempt, "claimable at once, as the next attempt").toBe(2);
        expect(again!.fence).toBeGreaterThan(attempt.fence);
        const wfAgain = await claimOrFail(["wf"], { workerId: "worker-b" });
        expect(wfAgain.run.runId).toBe(runId);
        expect(wfAgain.fence).toBeGreaterThan(wfLease.fence);

        // The previous incarnation's late calls are fenced off.
        expect(
          await rejection(
            backend.completeActivityTask(attempt, { type: "ActivityCompleted", body: bytes(1) }),
          ),
        ).toBeInstanceOf(ConflictError);
        expect(await rejection(activate(wfLease))).toBeInstanceOf(ConflictError);
        // Re-registering the same incarnation (a worker presumed dead that rejoins) releases nothing.
        await backend.registerWorker(registration("worker-b", "inc-b"));
        await backend.registerWorker(registration("worker-b", "inc-b"));
        await backend.completeActivityTask(again!, { type: "ActivityCompleted", body: bytes(2) });
        await activate(wfAgain);
      });
    });

    describe("inspect", () => {
      it("listRuns filters and pages newest first without gaps or duplicates", async () => {
        const ids: string[] = [];
        for (const id of ["a-1", "a-2", "a%3", "b-1", "a-4", "b-2", "a-5"]) {
          ids.push((await start(id, { name: id.startsWith("a") ? "alpha" : "beta" })).runId);
          clock.advance(10);
        }
        const newestFirst = [...ids].reverse();
        const t0 = (await backend.inspect.getRun(ids[0]!))!.createdAt;
        await complete(ids[1]!);

        expect((await backend.inspect.listRuns()).runs.map((r) => r.runId)).toEqual(newestFirst);
        expect(
          (await backend.inspect.listRuns({ workflowName: "beta" })).runs.map((r) => r.workflowId),
        ).toEqual(["b-2", "b-1"]);
        expect(
          (await backend.inspect.listRuns({ workflowIdPrefix: "a-" })).runs.map((r) => r.workflowId),
        ).toEqual(["a-5", "a-4", "a-2", "a-1"]);
        expect(
          (await backend.inspect.listRuns({ workflowIdPrefix: "a%" })).runs.map((r) => r.workflowId),
        ).toEqual(["a%3"]);
        expect((await backend.inspect.listRuns({ workflowId: "b-1" })).runs.map((r) => r.runId)).toEqual([
          ids[3],
        ]);
        expect((await backend.inspect.listRuns({ status: "completed" })).runs.map((r) => r.runId)).toEqual([
          ids[1],
        ]);
        expect((await backend.inspect.listRuns({ status: ["completed", "running"] })).runs).toHaveLength(7);
        expect(
          (
            await backend.inspect.listRuns({ status: "running", workflowName: "alpha", createdAfter: t0 })
          ).runs.map((r) => r.workflowId),
        ).toEqual(["a-5", "a-4", "a%3"]);
        const t2 = (await backend.inspect.getRun(ids[2]!))!.createdAt;
        expect((await backend.inspect.listRuns({ createdBefore: t2 })).runs.map((r) => r.workflowId)).toEqual(
          ["a-2", "a-1"],
        );

        const paged: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await backend.inspect.listRuns({}, { limit: 3, cursor });
          expect(page.runs.length).toBeLessThanOrEqual(3);
          paged.push(...page.runs.map((r) => r.runId));
          cursor = page.nextCursor;
          pages++;
          // A run created between pages must not shift or duplicate later pages.
          if (pages === 1) await start("late");
        } while (cursor !== null);
        expect(pages).toBe(3);
        expect(paged).toEqual(newestFirst);
      });

      it("getRun, getLatestRun and getHistory of unknown runs are empty", async () => {
        expect(await backend.inspect.getRun("no-such-run")).toBeNull();
        expect(await backend.inspect.getLatestRun("no-such-id")).toBeNull();
        expect(await backend.inspect.getHistory("no-such-run")).toEqual([]);
        expect(await backend.getInbox("no-such-run")).toEqual([]);
      });

      it("getLatestRun prefers the open run", async () => {
        const first = await start("order-1");
        await complete(first.runId);
        expect((await backend.inspect.getLatestRun("order-1"))?.runId).toBe(first.runId);
        const second = await start("order-1", { onConflict: "startNewIfClosed" });
        expect((await backend.inspect.getLatestRun("order-1"))?.runId).toBe(second.runId);
      });

      it("stats counts runs by status and the queues", async () => {
        const done = await start("done");
        await complete(done.runId);
        const { runId } = await start("busy");
        const now = backend.now();
        await activate(await claimOrFail(), {
          append: [scheduled(1), scheduled(2), { type: "TimerStarted", step: 3, body: null }],
          activities: [activity(1), activity(2)],
          timers: [{ step: 3, dueAt: now + 1_000 }],
        });
        await claimActivityOrFail();
        await start("waiting");

        const stats = await backend.inspect.stats();
        expect(stats.runsByStatus).toMatchObject({ completed: 1, running: 2 });
        expect(stats.runsByStatus.failed ?? 0).toBe(0);
        expect(stats.readyWorkflowTasks).toBe(1);
        expect(stats.readyActivityTasks).toBe(1);
        expect(stats.runningActivityTasks).toBe(1);
        expect(stats.pendingTimers).toBe(1);
        expect(stats.backoffActivityTasks).toBe(0);
        expect(runId).toBeTruthy();
      });

      it("pendingActivities shows each unfinished step's attempt, state, last error and next attempt; stats counts back-off", async () => {
        const { runId } = await start("stuck");
        const other = await start("other");
        const now = backend.now();
        await activate(await claimOrFail(), {
          append: [scheduled(1), scheduled(2), scheduled(3)],
          activities: [
            activity(1, { name: "payments.charge" }),
            activity(2, { name: "payments.charge" }),
            activity(3, { name: "nobody.has.it" }),
          ],
        });
        expect(await backend.inspect.pendingActivities([])).toEqual([]);
        const first = await claimActivityOrFail(["payments.charge"]);
        await backend.retryActivityTask(first, now + 60_000, bytes(4, 2));
        const second = await claimActivityOrFail(["payments.charge"]);
        expect(second.step).not.toBe(first.step);

        const pending = await backend.inspect.pendingActivities([runId, other.runId]);
        expect(pending.map((p) => [p.runId, p.step, p.name, p.state, p.attempt])).toEqual([
          [runId, 1, "payments.charge", first.step === 1 ? "backoff" : "running", 1],
          [runId, 2, "payments.charge", first.step === 2 ? "backoff" : "running", 1],
          [runId, 3, "nobody.has.it", "waiting", 0],
        ]);
        const backoff = pending.find((p) => p.step === first.step)!;
        expect(Array.from(backoff.lastError!)).toEqual([4, 2]);
        expect(backoff.nextAttemptAt).toBe(now + 60_000);
        expect(backoff.leaseExpiresAt).toBeNull();
        const running = pending.find((p) => p.step === second.step)!;
        expect(running.lastError).toBeNull();
        expect(running.nextAttemptAt).toBeNull();
        expect(running.leaseExpiresAt).toBe(second.leaseExpiresAt);
        const waiting = pending.find((p) => p.step === 3)!;
        expect(waiting.nextAttemptAt).toBeLessThanOrEqual(backend.now());
        expect(waiting.scheduledAt).toBeGreaterThan(0);

        // perRun: the steps with the most attempts, still in step order.
        const top = await backend.inspect.pendingActivities([runId], { perRun: 2 });
        expect(top.map((p) => p.step)).toEqual([1, 2]);
        const one = await backend.inspect.pendingActivities([runId, other.runId], { perRun: 1 });
        expect(one.map((p) => [p.runId, p.step])).toEqual([[runId, Math.min(first.step, second.step)]]);

        const stats = await backend.inspect.stats();
        expect(stats.backoffActivityTasks).toBe(1);
        expect(stats.runningActivityTasks).toBe(1);
        expect(stats.readyActivityTasks).toBe(1);
      });
    });

    // ── notifications ────────────────────────────────────────────────────────────────────

    describe("notifications", () => {
      it("notifies listeners after commits, survives a throwing listener, and unsubscribes", async () => {
        const throwing = backend.subscribe(() => {
          throw new Error("listener bug");
        });
        const { seen, unsubscribe } = recordNotifications();
        const { runId } = await start("order-1");
        expect(seen).toContainEqual({ kind: "workflow-task" });

        seen.length = 0;
        const now = backend.now();
        await activate(await claimOrFail(), {
          append: [scheduled(1), { type: "TimerStarted", step: 2, body: null }],
          activities: [activity(1)],
          timers: [{ step: 2, dueAt: now + 10 }],
        });
        expect(seen).toContainEqual({ kind: "activity-task" });
        expect(seen).toContainEqual({ kind: "timer" });

        seen.length = 0;
        await rejection(backend.signalWorkflow({ workflowId: "nope", body: bytes(1) }));
        expect(seen).toEqual([]); // nothing committed, nothing announced

        unsubscribe();
        throwing();
        await backend.signalWorkflow({ workflowId: "order-1", runId, body: bytes(1) });
        expect(seen).toEqual([]);
        expect(typeof backend.notifiesAcrossProcesses).toBe("boolean");
        expect(typeof backend.now()).toBe("number");
      });

      it("fireDueTimers and completeActivityTask announce a ready workflow task", async () => {
        await start("order-1");
        const now = backend.now();
        await activate(await claimOrFail(), {
          append: [scheduled(1), { type: "TimerStarted", step: 2, body: null }],
          activities: [activity(1)],
          timers: [{ step: 2, dueAt: now + 10 }],
        });
        const attempt = await claimActivityOrFail();
        const { seen, unsubscribe } = recordNotifications();
        await backend.completeActivityTask(attempt, { type: "ActivityCompleted", body: bytes(1) });
        expect(seen).toEqual([{ kind: "workflow-task" }]);
        seen.length = 0;
        clock.advance(10);
        await backend.fireDueTimers(10);
        expect(seen).toEqual([{ kind: "workflow-task" }]);
        unsubscribe();
      });
    });
  });
}

/** Re-exported for backend test files that build their own fixtures. */
export type { ClaimedActivityTask, ClaimedWorkflowTask };
