// Guards the texts and orders every SQL backend shares: conflict messages, option checks, the fired-timer order, list cursors and the outbox's notifications.
import { ConflictError, InvalidOptionsError } from "@spool/core";
import { describe, expect, it } from "vitest";
import {
  activationConflict,
  compareDueTimers,
  completedActivityConflict,
  conflictNeedsFence,
  consumedInboxConflict,
  decodeRunCursor,
  encodeRunCursor,
  inboxWaitingConflict,
  Outbox,
  positiveIntOption,
  staleTaskConflict,
} from "../src/index.ts";

describe("conflicts", () => {
  const req = { runId: "r", expectedLastSeq: 4, fence: 2 };

  it("name the guard that failed and say nothing was written", () => {
    const texts = [
      activationConflict(req, undefined, undefined),
      activationConflict(req, { status: "completed", last_seq: 9 }, undefined),
      activationConflict(req, { status: "running", last_seq: 6 }, undefined),
      activationConflict(req, { status: "blocked", last_seq: 4 }, 3),
    ].map((e) => e.message);
    expect(texts[0]).toContain("there is no such run");
    expect(texts[1]).toContain("the run is already completed");
    expect(texts[2]).toContain("expected last seq 4 but the run is at 6");
    expect(texts[3]).toContain("workflow task fence 2 is stale (current fence 3");
    for (const t of texts)
      expect(t).toMatch(
        /^activation of run r discarded: .*Nothing was written; re-read the run and replay\.$/,
      );
    expect(conflictNeedsFence(req, { status: "running", last_seq: 4 })).toBe(true);
    expect(conflictNeedsFence(req, { status: "running", last_seq: 5 })).toBe(false);
  });

  it("explain a gone attempt, a consumed inbox row, a waiting inbox and a stale task", () => {
    expect(completedActivityConflict("r", { taskId: "t", fence: 1 })).toBeInstanceOf(ConflictError);
    expect(consumedInboxConflict("r", [5]).message).toContain(
      "inbox event 5 is not in this run's inbox (already consumed?)",
    );
    expect(consumedInboxConflict("r", [5, 6]).message).toContain(
      "inbox events [5, 6] are not all in this run's inbox",
    );
    expect(inboxWaitingConflict("r").message).toContain("it would end the run while new inbound events wait");
    expect(staleTaskConflict("blockRun", "r", 2, undefined).message).toBe(
      "blockRun of run r with fence 2 rejected: the run has no workflow task (it is closed or unknown). Nothing was changed.",
    );
    expect(staleTaskConflict("blockRun", "r", 2, 4).message).toContain("its current fence is 4");
  });
});

describe("positiveIntOption", () => {
  it("defaults, accepts integers, and names the backend and option otherwise", () => {
    expect(positiveIntOption("XBackend", "leaseMs", undefined, 7)).toBe(7);
    expect(positiveIntOption("XBackend", "leaseMs", 0, 7, true)).toBe(0);
    expect(() => positiveIntOption("XBackend", "leaseMs", 0, 7)).toThrow(
      new InvalidOptionsError("XBackend: leaseMs must be a positive integer"),
    );
    expect(() => positiveIntOption("XBackend", "leaseMs", -1, 7)).toThrow(InvalidOptionsError);
    expect(() => positiveIntOption("XBackend", "leaseMs", 1.5, 7, true)).toThrow(
      "must be a non-negative integer",
    );
  });
});

describe("compareDueTimers", () => {
  it("orders by due time, then run id bytewise, then step", () => {
    const rows = [
      { run_id: "b", step: 1, due_at: 5 },
      { run_id: "a", step: 2, due_at: 5 },
      { run_id: "a", step: 1, due_at: 5 },
      { run_id: "Z", step: 9, due_at: 5 },
      { run_id: "z", step: 0, due_at: 1 },
    ];
    expect(rows.sort(compareDueTimers).map((r) => `${r.due_at}${r.run_id}${r.step}`)).toEqual([
      "1z0",
      "5Z9",
      "5a1",
      "5a2",
      "5b1",
    ]);
  });
});

describe("run cursors", () => {
  it("round-trip and reject anything else", () => {
    expect(decodeRunCursor(encodeRunCursor(12, "run-x"))).toEqual([12, "run-x"]);
    expect(() => decodeRunCursor("nope")).toThrow(InvalidOptionsError);
  });
});

describe("Outbox", () => {
  it("announces tasks, timers, cancellations and closes in that order, and nothing when empty", () => {
    const out = new Outbox();
    expect(out.empty).toBe(true);
    expect(out.notifications()).toEqual([]);
    out.closed.push({ runId: "r", workflowId: "w" });
    out.cancelled.push("t");
    out.timer = true;
    out.workflowTask = true;
    expect(out.notifications().map((n) => n.kind)).toEqual([
      "workflow-task",
      "timer",
      "activity-cancelled",
      "run-closed",
    ]);
  });
});
