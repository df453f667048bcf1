// Guards the activation plan, the one description of what a commit writes on every SQL backend: eager-claim selection, leases, checksums, child and continued runs, the parent's event, and when a close must refuse over a waiting inbox.
import { type ActivationCommit, attemptLeaseMs } from "@spool/core";
import { describe, expect, it } from "vitest";
import {
  activityChecksum,
  eventChecksum,
  planActivation,
  planNewWork,
  planRunUpdate,
  runChecksum,
} from "../src/index.ts";

const bytes = (...b: number[]) => new Uint8Array(b);
const NOW = 1_000_000;
const RUN = { workflow_id: "wf-1", parent_run_id: null, parent_workflow_id: null, parent_step: null };
const CHILD_RUN = {
  workflow_id: "wf-1",
  parent_run_id: "parent-run",
  parent_workflow_id: "wf-p",
  parent_step: 7,
};

function ids(): () => string {
  let n = 0;
  return () => `id-${++n}`;
}

function commit(over: Partial<ActivationCommit> = {}): ActivationCommit {
  return {
    runId: "run-1",
    fence: 3,
    expectedLastSeq: 4,
    events: [
      { seq: 5, ts: NOW - 1, type: "ActivityScheduled", step: 1, body: bytes(1) },
      { seq: 6, ts: NOW - 0.5, type: "TimerStarted", step: 2, body: null },
    ],
    consumedInbox: [11],
    activities: [],
    cancelActivities: [],
    timers: [],
    cancelTimers: [],
    children: [],
    cancelChildren: [],
    ...over,
  };
}

const activity = (step: number, name: string, timeoutMs = 0, heartbeatTimeoutMs = 0) => ({
  step,
  name,
  input: bytes(step),
  options: bytes(0),
  timeoutMs,
  heartbeatTimeoutMs,
});

describe("planRunUpdate", () => {
  it("keeps an open run running and leaves the buffered-signal count unchanged when not given", () => {
    const u = planRunUpdate(commit(), NOW, ids());
    expect(u).toEqual({
      lastSeq: 6,
      status: "running",
      closedAt: null,
      result: null,
      error: null,
      continuedTo: null,
      crc: runChecksum("run-1", "running", null, null),
      bufferedSignals: null,
    });
  });

  it("closes with the result, and decides the continued run's id only for continue-as-new", () => {
    const done = planRunUpdate(
      commit({ close: { status: "completed", result: bytes(9) }, bufferedSignals: 2 }),
      NOW,
    );
    expect(done).toMatchObject({ status: "completed", closedAt: NOW, continuedTo: null, bufferedSignals: 2 });
    expect(done.crc).toBe(runChecksum("run-1", "completed", bytes(9), null));
    const can = { workflowName: "w", version: null, startedEventBody: bytes(1) };
    const next = planRunUpdate(commit({ close: { status: "continued", continueAsNew: can } }), NOW, ids());
    expect(next.continuedTo).toBe("id-1");
  });
});

describe("planNewWork", () => {
  it("claims at most maxTasks activities of the worker's names, leased for attemptLeaseMs", () => {
    const req = commit({
      activities: [activity(1, "a", 5_000), activity(2, "b"), activity(3, "a", 0, 2_000), activity(4, "a")],
      eagerActivities: { workerId: "w-1", maxTasks: 2, activityNames: ["a"] },
    });
    const work = planNewWork(req, NOW, { activityLeaseMs: 60_000, newId: ids() });
    const [a1, b2, a3, a4] = work.activities;
    expect(a1).toMatchObject({ taskId: "id-1", attempt: 1, fence: 1, leaseOwner: "w-1" });
    expect(a1!.leaseExpiresAt).toBe(NOW + attemptLeaseMs(5_000, 0, 60_000));
    expect(a1!.visibleAt).toBe(a1!.leaseExpiresAt);
    expect(b2).toMatchObject({
      attempt: 0,
      fence: 0,
      leaseOwner: null,
      leaseExpiresAt: null,
      visibleAt: NOW,
    });
    expect(a3).toMatchObject({ leaseOwner: "w-1", leaseExpiresAt: NOW + attemptLeaseMs(0, 2_000, 60_000) });
    expect(a4).toMatchObject({ leaseOwner: null }); // maxTasks reached
    expect(a4!.crc).toBe(activityChecksum("run-1", 4, "a", bytes(4)));
    expect(work.activities.every((t) => t.scheduledAt === NOW)).toBe(true);
  });

  it("shifts timer due times by the clock-frame shift, and floors them for integer stores", () => {
    const req = commit({ timers: [{ step: 2, dueAt: NOW + 10.7 }] });
    expect(planNewWork(req, NOW, { activityLeaseMs: 1, timerShiftMs: 5 }).timers).toEqual([
      { step: 2, dueAt: NOW + 15.7 },
    ]);
    expect(planNewWork(req, NOW, { activityLeaseMs: 1, integerTimes: true }).timers).toEqual([
      { step: 2, dueAt: NOW + 10 },
    ]);
  });

  it("creates nothing for an activation that closes its run", () => {
    const req = commit({
      activities: [activity(1, "a")],
      timers: [{ step: 2, dueAt: NOW }],
      close: { status: "failed" },
    });
    expect(planNewWork(req, NOW, { activityLeaseMs: 1 })).toEqual({ activities: [], timers: [] });
  });
});

describe("planActivation", () => {
  it("checksums the history rows (floored for integer stores) and returns the eager claims with the run's workflow id", () => {
    const req = commit({
      activities: [activity(1, "a"), activity(2, "b")],
      timers: [{ step: 3, dueAt: NOW + 100 }],
      eagerActivities: { workerId: "w-1", maxTasks: 5, activityNames: ["a"] },
    });
    const plan = planActivation(req, RUN, NOW, null, { activityLeaseMs: 60_000, newId: ids() });
    expect(plan.events.map((e) => e.crc)).toEqual(
      req.events.map((e) => eventChecksum(e.seq, e.ts, e.type, e.step, e.body)),
    );
    const floored = planActivation(req, RUN, NOW, null, { activityLeaseMs: 1, integerTimes: true });
    expect(floored.events[1]).toMatchObject({
      ts: NOW - 1,
      crc: eventChecksum(6, NOW - 1, "TimerStarted", 2, null),
    });
    expect(plan.claimedActivities).toEqual([
      expect.objectContaining({
        taskId: "id-1",
        runId: "run-1",
        workflowId: "wf-1",
        step: 1,
        attempt: 1,
        fence: 1,
      }),
    ]);
    expect(plan.notify).toEqual({ activityTask: true, timer: true });
    expect(plan).toMatchObject({
      lastSeq: 6,
      fenced: true,
      consumedInbox: [11],
      refuseIfInboxWaiting: false,
      close: null,
    });
  });

  it("uses work planned before the guard as it is (no new task ids)", () => {
    const req = commit({ activities: [activity(1, "a")] });
    const work = planNewWork(req, NOW, { activityLeaseMs: 1, newId: () => "early" });
    const plan = planActivation(req, RUN, NOW, null, { activityLeaseMs: 1, work, newId: () => "late" });
    expect(plan.activities[0]!.taskId).toBe("early");
    expect(plan.notify.activityTask).toBe(true);
  });

  it("plans each child's run (linked to this run) and its ChildStartFailed fallback, and child cancellations", () => {
    const req = commit({
      children: [
        {
          step: 4,
          workflowId: "child-a",
          workflowName: "c",
          version: "v2",
          startedEventBody: bytes(4),
          inputHash: "h",
        },
      ],
      cancelChildren: [{ step: 5, workflowId: "child-b", body: bytes(5) }],
    });
    const plan = planActivation(req, RUN, NOW, null, { activityLeaseMs: 1, newId: ids() });
    const [child] = plan.children;
    expect(child!.rows.run).toEqual({
      runId: "id-1",
      workflowId: "child-a",
      workflowName: "c",
      version: "v2",
      now: NOW,
      parentRunId: "run-1",
      parentWorkflowId: "wf-1",
      parentStep: 4,
      continuedFrom: null,
      inputHash: "h",
      crc: runChecksum("id-1", "running", null, null),
    });
    expect(child!.rows.started).toEqual({
      seq: 1,
      ts: NOW,
      type: "WorkflowStarted",
      step: null,
      body: bytes(4),
      crc: eventChecksum(1, NOW, "WorkflowStarted", null, bytes(4)),
    });
    expect(child!.startFailed).toEqual({
      ts: NOW,
      type: "ChildStartFailed",
      step: 4,
      body: null,
      crc: eventChecksum(0, NOW, "ChildStartFailed", 4, null),
    });
    expect(plan.cancelChildren).toEqual([
      {
        workflowId: "child-b",
        parentRunId: "run-1",
        row: {
          ts: NOW,
          type: "CancelRequested",
          step: null,
          body: bytes(5),
          crc: eventChecksum(0, NOW, "CancelRequested", null, bytes(5)),
        },
      },
    ]);
  });

  it("refuses to end a run over a waiting inbox, but not to continue it; notifies the parent of a child run", () => {
    const failed = planActivation(
      commit({
        close: { status: "failed", error: bytes(1), parentEvent: { type: "ChildFailed", body: bytes(2) } },
      }),
      CHILD_RUN,
      NOW,
      null,
      { activityLeaseMs: 1 },
    );
    expect(failed.refuseIfInboxWaiting).toBe(true);
    expect(failed.close).toEqual({
      closed: { runId: "run-1", workflowId: "wf-1" },
      continued: null,
      parentEvent: {
        runId: "parent-run",
        row: {
          ts: NOW,
          type: "ChildFailed",
          step: 7,
          body: bytes(2),
          crc: eventChecksum(0, NOW, "ChildFailed", 7, bytes(2)),
        },
      },
    });
    const orphan = planActivation(
      commit({ close: { status: "completed", parentEvent: { type: "ChildCompleted", body: null } } }),
      RUN,
      NOW,
      null,
      { activityLeaseMs: 1 },
    );
    expect(orphan.close?.parentEvent).toBeNull();
  });

  it("continues into a run that inherits the parent link and receives the carried signals first, in order", () => {
    const req = commit({
      close: {
        status: "continued",
        continueAsNew: {
          workflowName: "w2",
          version: null,
          startedEventBody: bytes(8),
          carriedSignals: [bytes(1), bytes(2)],
        },
      },
    });
    const plan = planActivation(req, CHILD_RUN, NOW, "next-run", { activityLeaseMs: 1 });
    expect(plan.refuseIfInboxWaiting).toBe(false);
    expect(plan.close?.continued?.rows.run).toMatchObject({
      runId: "next-run",
      workflowId: "wf-1",
      workflowName: "w2",
      parentRunId: "parent-run",
      parentWorkflowId: "wf-p",
      parentStep: 7,
      continuedFrom: "run-1",
      inputHash: null,
    });
    expect(plan.close?.continued?.carriedSignals.map((r) => [r.type, r.body])).toEqual([
      ["SignalReceived", bytes(1)],
      ["SignalReceived", bytes(2)],
    ]);
  });
});
