// Guards closing runs: outstanding work left behind a closed run, lost results, signals lost across continue-as-new.
/**
 * The conformance suite's part on closing runs: completion, failure and continue-as-new, with the
 * work each withdraws and the signals each carries over.
 */
import { type Backend, ConflictError } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness, type TestClock } from "./harness.ts";

/** Registers the conformance tests of "closing runs" on the harness's store. */
export function closingRunTests(harness: ConformanceHarness): void {
  const {
    start,
    claim,
    claimOrFail,
    claimActivity,
    claimActivityOrFail,
    activate,
    activity,
    scheduled,
    complete,
    rejection,
    recordNotifications,
  } = harness;
  let backend: Backend;
  let clock: TestClock;
  describe("closing runs", () => {
    beforeEach(() => {
      ({ backend, clock } = harness.current());
    });

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
        await rejection(backend.completeActivityTask(running, { type: "ActivityCompleted", body: bytes(1) })),
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
      expect(history.map((e) => [e.seq, e.type, Array.from(e.body!)])).toEqual([[1, "WorkflowStarted", [6]]]);
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
}
