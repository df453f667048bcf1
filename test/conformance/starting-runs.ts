// Guards starts of a workflow id: one run per id under concurrent starts, each conflict policy, and input fingerprints that refuse a start with a different input.
/**
 * The conformance suite's part on starting runs: `startWorkflow` under each id-conflict policy, and
 * the input fingerprints that tell an attach from a start with a different input.
 */
import {
  type Backend,
  type IdConflictPolicy,
  type StartWorkflowRequest,
  WorkflowAlreadyStartedError,
} from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness } from "./harness.ts";

/** Registers the conformance tests of "startWorkflow" on the harness's store. */
export function startWorkflowTests(harness: ConformanceHarness): void {
  const { start, claimOrFail, complete, rejection } = harness;
  let backend: Backend;
  describe("startWorkflow", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
}

/** Registers the conformance tests of "input fingerprints" on the harness's store. */
export function inputFingerprintTests(harness: ConformanceHarness): void {
  const { claimOrFail, orderStart, activate, startIdle, complete, rejection } = harness;
  let backend: Backend;
  describe("input fingerprints", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
}
