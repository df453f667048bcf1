// Guards timers: early, late, lost or twice-fired timers, and a wrong next wake-up time.
/**
 * The conformance suite's part on durable timers and `nextWakeAt`.
 */
import type { Backend } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness, type TestClock } from "./harness.ts";

/** Registers the conformance tests of "timers" on the harness's store. */
export function timerTests(harness: ConformanceHarness): void {
  const {
    slack,
    expectNear,
    start,
    claim,
    claimOrFail,
    claimActivityOrFail,
    activate,
    commitUnfenced,
    activity,
    scheduled,
  } = harness;
  let backend: Backend;
  let clock: TestClock;
  describe("timers", () => {
    beforeEach(() => {
      ({ backend, clock } = harness.current());
    });

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
}
