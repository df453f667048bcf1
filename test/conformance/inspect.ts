// Guards the read-only inspection API: wrong filters, pages with gaps or duplicates, wrong counts of runs and queues.
/**
 * The conformance suite's part on the read-only inspection API the CLI and the dashboard use.
 */
import type { Backend } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { bytes, type ConformanceHarness, type TestClock } from "./harness.ts";

/** Registers the conformance tests of "inspect" on the harness's store. */
export function inspectTests(harness: ConformanceHarness): void {
  const { start, claimOrFail, claimActivityOrFail, activate, activity, scheduled, complete } = harness;
  let backend: Backend;
  let clock: TestClock;
  describe("inspect", () => {
    beforeEach(() => {
      ({ backend, clock } = harness.current());
    });

    it("listRuns filters and pages newest first without gaps or duplicates", async () => {
      const ids: string[] = [];
      for (const id of ["a-1", "a-2", "a%3", "b-1", "a-4", "b-2", "a-5"]) {
        ids.push((await start(id, { name: id.startsWith("a") ? "alpha" : "beta" })).runId);
        clock.advance(10);
      }
      const newestFirst = [...ids].reverse();
      const t0 = (await backend.inspect.getRun(ids[0]!))!.createdAt;
      await complete(ids[1]!);

      expect((await backend.inspect.listRuns()).runs.map((r) => r.runId)).toEqual(newestFirst);
      expect(
        (await backend.inspect.listRuns({ workflowName: "beta" })).runs.map((r) => r.workflowId),
      ).toEqual(["b-2", "b-1"]);
      expect(
        (await backend.inspect.listRuns({ workflowIdPrefix: "a-" })).runs.map((r) => r.workflowId),
      ).toEqual(["a-5", "a-4", "a-2", "a-1"]);
      expect(
        (await backend.inspect.listRuns({ workflowIdPrefix: "a%" })).runs.map((r) => r.workflowId),
      ).toEqual(["a%3"]);
      expect((await backend.inspect.listRuns({ workflowId: "b-1" })).runs.map((r) => r.runId)).toEqual([
        ids[3],
      ]);
      expect((await backend.inspect.listRuns({ status: "completed" })).runs.map((r) => r.runId)).toEqual([
        ids[1],
      ]);
      expect((await backend.inspect.listRuns({ status: ["completed", "running"] })).runs).toHaveLength(7);
      expect(
        (
          await backend.inspect.listRuns({ status: "running", workflowName: "alpha", createdAfter: t0 })
        ).runs.map((r) => r.workflowId),
      ).toEqual(["a-5", "a-4", "a%3"]);
      const t2 = (await backend.inspect.getRun(ids[2]!))!.createdAt;
      expect((await backend.inspect.listRuns({ createdBefore: t2 })).runs.map((r) => r.workflowId)).toEqual([
        "a-2",
        "a-1",
      ]);

      const paged: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await backend.inspect.listRuns({}, { limit: 3, cursor });
        expect(page.runs.length).toBeLessThanOrEqual(3);
        paged.push(...page.runs.map((r) => r.runId));
        cursor = page.nextCursor;
        pages++;
        // A run created between pages must not shift or duplicate later pages.
        if (pages === 1) await start("late");
      } while (cursor !== null);
      expect(pages).toBe(3);
      expect(paged).toEqual(newestFirst);
    });

    it("getRun, getLatestRun and getHistory of unknown runs are empty", async () => {
      expect(await backend.inspect.getRun("no-such-run")).toBeNull();
      expect(await backend.inspect.getLatestRun("no-such-id")).toBeNull();
      expect(await backend.inspect.getHistory("no-such-run")).toEqual([]);
      expect(await backend.getInbox("no-such-run")).toEqual([]);
    });

    it("getLatestRun prefers the open run", async () => {
      const first = await start("order-1");
      await complete(first.runId);
      expect((await backend.inspect.getLatestRun("order-1"))?.runId).toBe(first.runId);
      const second = await start("order-1", { onConflict: "startNewIfClosed" });
      expect((await backend.inspect.getLatestRun("order-1"))?.runId).toBe(second.runId);
    });

    it("stats counts runs by status and the queues", async () => {
      const done = await start("done");
      await complete(done.runId);
      const { runId } = await start("busy");
      const now = backend.now();
      await activate(await claimOrFail(), {
        append: [scheduled(1), scheduled(2), { type: "TimerStarted", step: 3, body: null }],
        activities: [activity(1), activity(2)],
        timers: [{ step: 3, dueAt: now + 1_000 }],
      });
      await claimActivityOrFail();
      await start("waiting");

      const stats = await backend.inspect.stats();
      expect(stats.runsByStatus).toMatchObject({ completed: 1, running: 2 });
      expect(stats.runsByStatus.failed ?? 0).toBe(0);
      expect(stats.readyWorkflowTasks).toBe(1);
      expect(stats.readyActivityTasks).toBe(1);
      expect(stats.runningActivityTasks).toBe(1);
      expect(stats.pendingTimers).toBe(1);
      expect(stats.backoffActivityTasks).toBe(0);
      expect(runId).toBeTruthy();
    });

    it("pendingActivities shows each unfinished step's attempt, state, last error and next attempt; stats counts back-off", async () => {
      const { runId } = await start("stuck");
      const other = await start("other");
      const now = backend.now();
      await activate(await claimOrFail(), {
        append: [scheduled(1), scheduled(2), scheduled(3)],
        activities: [
          activity(1, { name: "payments.charge" }),
          activity(2, { name: "payments.charge" }),
          activity(3, { name: "nobody.has.it" }),
        ],
      });
      expect(await backend.inspect.pendingActivities([])).toEqual([]);
      const first = await claimActivityOrFail(["payments.charge"]);
      await backend.retryActivityTask(first, now + 60_000, bytes(4, 2));
      const second = await claimActivityOrFail(["payments.charge"]);
      expect(second.step).not.toBe(first.step);

      const pending = await backend.inspect.pendingActivities([runId, other.runId]);
      expect(pending.map((p) => [p.runId, p.step, p.name, p.state, p.attempt])).toEqual([
        [runId, 1, "payments.charge", first.step === 1 ? "backoff" : "running", 1],
        [runId, 2, "payments.charge", first.step === 2 ? "backoff" : "running", 1],
        [runId, 3, "nobody.has.it", "waiting", 0],
      ]);
      const backoff = pending.find((p) => p.step === first.step)!;
      expect(Array.from(backoff.lastError!)).toEqual([4, 2]);
      expect(backoff.nextAttemptAt).toBe(now + 60_000);
      expect(backoff.leaseExpiresAt).toBeNull();
      const running = pending.find((p) => p.step === second.step)!;
      expect(running.lastError).toBeNull();
      expect(running.nextAttemptAt).toBeNull();
      expect(running.leaseExpiresAt).toBe(second.leaseExpiresAt);
      const waiting = pending.find((p) => p.step === 3)!;
      expect(waiting.nextAttemptAt).toBeLessThanOrEqual(backend.now());
      expect(waiting.scheduledAt).toBeGreaterThan(0);

      // perRun: the steps with the most attempts, still in step order.
      const top = await backend.inspect.pendingActivities([runId], { perRun: 2 });
      expect(top.map((p) => p.step)).toEqual([1, 2]);
      const one = await backend.inspect.pendingActivities([runId, other.runId], { perRun: 1 });
      expect(one.map((p) => [p.runId, p.step])).toEqual([[runId, Math.min(first.step, second.step)]]);

      const stats = await backend.inspect.stats();
      expect(stats.backoffActivityTasks).toBe(1);
      expect(stats.runningActivityTasks).toBe(1);
      expect(stats.readyActivityTasks).toBe(1);
    });
  });
}
