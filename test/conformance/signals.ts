// Guards signal delivery: lost, reordered or duplicated signals, signals over the cap, and a run closed while signals wait unseen.
/**
 * The conformance suite's part on signals: the inbox, signalWithStart, request ids that
 * de-duplicate, the cap on unconsumed signals, and the refusal to close a run over unseen events.
 */
import { type Backend, ConflictError, RunNotFoundError, SignalBufferFullError } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { commitOf } from "./commits.ts";
import { bytes, type ConformanceHarness } from "./harness.ts";

/** Registers the conformance tests of "signals" on the harness's store. */
export function signalTests(harness: ConformanceHarness): void {
  const { start, claim, claimOrFail, orderStart, activate, startIdle, complete, rejection } = harness;
  let backend: Backend;
  describe("signals", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
      expect(await rejection(backend.signalWorkflow({ workflowId: "nope", body: bytes(1) }))).toBeInstanceOf(
        RunNotFoundError,
      );
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
}

/** Registers the conformance tests of "signal request ids" on the harness's store. */
export function signalRequestIdTests(harness: ConformanceHarness): void {
  const { start, claimOrFail, orderStart, activate, complete, rejection } = harness;
  let backend: Backend;
  describe("signal request ids", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
}

/** Registers the conformance tests of "unconsumed signal cap" on the harness's store. */
export function signalCapTests(harness: ConformanceHarness): void {
  const { orderStart, rejection, makeBackend } = harness;
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
        expect((err as Error).message).toMatch(/3 signals already wait unconsumed by its code, the cap is 3/);
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
}

/** Registers the conformance tests of "closing with unseen inbox events" on the harness's store. */
export function unseenInboxTests(harness: ConformanceHarness): void {
  const { commitUnfenced, startIdle, complete, rejection } = harness;
  let backend: Backend;
  describe("closing with unseen inbox events", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
      expect(history.map((e) => e.type)).toEqual(["WorkflowStarted", "SignalReceived", "WorkflowCompleted"]);
    });
  });
}
