// Guards child runs: lost links to the parent, a child's outcome lost or delivered to the wrong run, cancellation reaching a stranger.
/**
 * The conformance suite's part on child runs: creation from a commit, start failures, the outcome
 * delivered to the parent, and cancellation of children.
 */
import type { Backend } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness } from "./harness.ts";

/** Registers the conformance tests of "child runs" on the harness's store. */
export function childRunTests(harness: ConformanceHarness): void {
  const { start, claim, claimOrFail, activate, commitUnfenced, complete } = harness;
  let backend: Backend;
  describe("child runs", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
        (await backend.getInbox(res.createdRuns[0]!.runId)).map((e) => [e.type, e.step, Array.from(e.body!)]),
      ).toEqual([["CancelRequested", null, [8]]]);
      expect(await backend.getInbox(stranger.runId)).toEqual([]);
    });
  });
}
