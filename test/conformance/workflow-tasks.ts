// Guards workflow-task claims: double claims, stale fences that still write, leases that never expire, blocked runs that never retry.
/**
 * The conformance suite's part on workflow tasks: claims by name and age, leases and fences,
 * release, and parking a run with `blockRun` until it is retried.
 */
import { type Backend, ConflictError, WorkflowAlreadyStartedError } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness, type TestClock } from "./harness.ts";

/** Registers the conformance tests of "workflow task leases" on the harness's store. */
export function workflowTaskLeaseTests(harness: ConformanceHarness): void {
  const { slack, start, claim, claimOrFail, claimActivity, activate, activity, scheduled, rejection } =
    harness;
  let backend: Backend;
  let clock: TestClock;
  describe("workflow task leases", () => {
    beforeEach(() => {
      ({ backend, clock } = harness.current());
    });

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
}

/** Registers the conformance tests of "blocked runs" on the harness's store. */
export function blockedRunTests(harness: ConformanceHarness): void {
  const { start, claim, claimOrFail, activate, rejection } = harness;
  let backend: Backend;
  let clock: TestClock;
  describe("blocked runs", () => {
    beforeEach(() => {
      ({ backend, clock } = harness.current());
    });

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
}
