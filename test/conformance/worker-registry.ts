// Guards the worker registry: a restarted worker's leases held until they expire, late calls of a previous incarnation accepted.
/**
 * The conformance suite's part on the worker registry: registration, heartbeats, clean stops and
 * the release of a previous incarnation's leases.
 */
import { type Backend, ConflictError } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness } from "./harness.ts";

/** Registers the conformance tests of "worker registry" on the harness's store. */
export function workerRegistryTests(harness: ConformanceHarness): void {
  const { start, claimOrFail, claimActivity, claimActivityOrFail, activate, activity, scheduled, rejection } =
    harness;
  let backend: Backend;
  describe("worker registry", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

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
        await rejection(backend.completeActivityTask(attempt, { type: "ActivityCompleted", body: bytes(1) })),
      ).toBeInstanceOf(ConflictError);
      expect(await rejection(activate(wfLease))).toBeInstanceOf(ConflictError);
      // Re-registering the same incarnation (a worker presumed dead that rejoins) releases nothing.
      await backend.registerWorker(registration("worker-b", "inc-b"));
      await backend.registerWorker(registration("worker-b", "inc-b"));
      await backend.completeActivityTask(again!, { type: "ActivityCompleted", body: bytes(2) });
      await activate(wfAgain);
    });
  });
}
