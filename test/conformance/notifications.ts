// Guards notifications: announcements of work that was not committed, missing wake-ups, a throwing listener breaking the others.
/**
 * The conformance suite's part on in-process notifications (`subscribe`).
 */
import type { Backend } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness, type TestClock } from "./harness.ts";

/** Registers the conformance tests of "notifications" on the harness's store. */
export function notificationTests(harness: ConformanceHarness): void {
  const {
    start,
    claimOrFail,
    claimActivityOrFail,
    activate,
    activity,
    scheduled,
    rejection,
    recordNotifications,
  } = harness;
  let backend: Backend;
  let clock: TestClock;
  describe("notifications", () => {
    beforeEach(() => {
      ({ backend, clock } = harness.current());
    });

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
}
