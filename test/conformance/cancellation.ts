// Guards cancellation requests: delivered to an open run's inbox, a no-op that says so for a closed one.
/**
 * The conformance suite's part on `requestCancel`.
 */
import { type Backend, RunNotFoundError } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness } from "./harness.ts";

/** Registers the conformance tests of "requestCancel" on the harness's store. */
export function requestCancelTests(harness: ConformanceHarness): void {
  const { start, claim, claimOrFail, startIdle, complete, rejection } = harness;
  let backend: Backend;
  describe("requestCancel", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
}
