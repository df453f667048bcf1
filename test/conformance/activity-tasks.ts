// Guards activity tasks: double attempts, leases that never expire, stale attempts that still complete, eager claims beyond their limit.
/**
 * The conformance suite's part on activity tasks: claims, attempts and leases, heartbeats, retries,
 * release, cancellation and the eager claims of a commit.
 */
import { attemptLeaseMs, type Backend, ConflictError, type NewActivityTask } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { type Append, bytes, type ConformanceHarness, type TestClock } from "./harness.ts";

/** Registers the conformance tests of "activity tasks" on the harness's store. */
export function activityTaskTests(harness: ConformanceHarness): void {
  const {
    slack,
    start,
    claim,
    claimOrFail,
    claimActivity,
    claimActivityOrFail,
    activate,
    commitUnfenced,
    activity,
    scheduled,
    rejection,
    recordNotifications,
  } = harness;
  let backend: Backend;
  let clock: TestClock;
  describe("activity tasks", () => {
    beforeEach(() => {
      ({ backend, clock } = harness.current());
    });

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
      const { leaseExpiresAt } = await backend.heartbeatActivityTask(attempt, attemptLeaseMs(60_000, 100, 0));
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
        await rejection(backend.completeActivityTask(running, { type: "ActivityCompleted", body: bytes(1) })),
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
}
