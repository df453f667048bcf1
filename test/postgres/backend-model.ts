/**
 * A small in-memory model of the Backend contract and fast-check commands that drive a real
 * backend and the model side by side (model-based testing, `fc.commands` + `fc.asyncModelRun`).
 * Every command predicts the backend's answer from the model (created or attached, delivered or
 * RunNotFound, which tasks may be claimed, committed or ConflictError, how many timers fire...)
 * and `Check` compares every run's status, history and inbox in full.
 *
 * Time is counted in epochs: `Advance` moves the backend's clock an hour, which expires every lease
 * (workflow leases are a minute, activity leases a minute plus grace) and makes every "later"
 * timer (30 minutes) due. Work made ready "now" is claimable in the current epoch. This keeps the
 * model exact on a database clock that keeps running during the test.
 */
import {
  type ActivationCommit,
  type Backend,
  type ClaimedActivityTask,
  type ClaimedWorkflowTask,
  ConflictError,
  type EventType,
  RunNotFoundError,
} from "@spool/core";
import fc from "fast-check";
import { expect } from "vitest";
import { commitOf } from "../conformance/commits.ts";
import type { TestClock } from "../conformance/describe-backend.ts";

const HOUR = 3_600_000;

/** An event as the model stores it: type, step, and the body as a list of bytes (or null). */
type MEvent = [type: string, step: number | null, body: number[] | null];

interface MInbox {
  /** Model-side identity, to know which events a held claim read. */
  key: number;
  event: MEvent;
}

interface MTask {
  /** Claimable from this epoch on; null = idle. */
  visibleEpoch: number | null;
  /** A lease owner is recorded (even if the lease has expired). */
  leased: boolean;
  fence: number;
  blocked: boolean;
}

interface MActivity {
  visibleEpoch: number;
  leased: boolean;
  fence: number;
  attempt: number;
}

interface MRun {
  workflowId: string;
  runId: string;
  status: "running" | "blocked" | "completed";
  history: MEvent[];
  inbox: MInbox[];
  task: MTask | null;
  activities: Map<number, MActivity>;
  /** step -> [due epoch, due time] */
  timers: Map<number, [number, number]>;
  nextStep: number;
}

/** The model: runs by workflow id, the epoch, and the claims each slot holds. */
export interface Model {
  runs: Map<string, MRun>;
  epoch: number;
  nextKey: number;
  held: Map<number, { workflowId: string; fence: number; lastSeq: number; keys: number[] }>;
  heldActs: Map<number, { workflowId: string; step: number; fence: number }>;
}

/** The system under test and the real claims each slot holds. */
export interface Real {
  backend: Backend;
  clock: TestClock;
  held: Map<number, ClaimedWorkflowTask>;
  heldActs: Map<number, ClaimedActivityTask>;
}

/** A fresh, empty model. */
export function emptyModel(): Model {
  return { runs: new Map(), epoch: 0, nextKey: 1, held: new Map(), heldActs: new Map() };
}

const IDS = ["wf-0", "wf-1"];
const SLOTS = [0, 1];
const bytes = (list: number[] | null) => (list === null ? null : new Uint8Array(list));
const asList = (b: Uint8Array | null) => (b === null ? null : Array.from(b));
const isOpen = (r: MRun) => r.status === "running" || r.status === "blocked";

async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Delivery into a run's inbox: wakes an unleased, unblocked task (mirrors the backend's rule). */
function deliver(m: Model, run: MRun, event: MEvent): void {
  run.inbox.push({ key: m.nextKey++, event });
  const t = run.task;
  if (t !== null && !t.leased && !t.blocked) t.visibleEpoch = m.epoch;
}

function claimable(m: Model): MRun[] {
  return [...m.runs.values()].filter(
    (r) => r.task !== null && r.task.visibleEpoch !== null && r.task.visibleEpoch <= m.epoch,
  );
}

class Start implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.backend.startWorkflow({
      workflowId: this.id,
      workflowName: "wf",
      version: null,
      startedEventBody: new Uint8Array([1]),
      onConflict: "attach",
    });
    const existing = m.runs.get(this.id);
    if (existing !== undefined) {
      expect(res).toEqual({ runId: existing.runId, created: false, workflowName: "wf" });
      return;
    }
    expect(res.created).toBe(true);
    m.runs.set(this.id, {
      workflowId: this.id,
      runId: res.runId,
      status: "running",
      history: [["WorkflowStarted", null, [1]]],
      inbox: [],
      task: { visibleEpoch: m.epoch, leased: false, fence: 0, blocked: false },
      activities: new Map(),
      timers: new Map(),
      nextStep: 1,
    });
  }
  toString = () => `Start(${this.id})`;
}

class Signal implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly id: string,
    readonly value: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await outcome(r.backend.signalWorkflow({ workflowId: this.id, body: bytes([this.value])! }));
    const run = m.runs.get(this.id);
    if (run === undefined || !isOpen(run)) {
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.error).toBeInstanceOf(RunNotFoundError);
      return;
    }
    expect(res).toEqual({ ok: true, value: { runId: run.runId } });
    deliver(m, run, ["SignalReceived", null, [this.value]]);
  }
  toString = () => `Signal(${this.id}, ${this.value})`;
}

class Cancel implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await outcome(r.backend.requestCancel({ workflowId: this.id, body: bytes([200])! }));
    const run = m.runs.get(this.id);
    if (run === undefined) {
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.error).toBeInstanceOf(RunNotFoundError);
      return;
    }
    if (!res.ok) throw res.error;
    if (!isOpen(run)) {
      expect(res.value).toEqual({ outcome: "alreadyClosed", runId: run.runId, status: run.status });
      return;
    }
    expect(res.value).toEqual({ outcome: "requested", runId: run.runId, status: run.status });
    deliver(m, run, ["CancelRequested", null, [200]]);
  }
  toString = () => `Cancel(${this.id})`;
}

class ClaimWorkflow implements fc.AsyncCommand<Model, Real> {
  constructor(readonly slot: number) {}
  check = (m: Readonly<Model>) => !m.held.has(this.slot);
  async run(m: Model, r: Real) {
    const expected = claimable(m);
    const task = await r.backend.claimWorkflowTask({
      workerId: `s${this.slot}`,
      workflowNames: ["wf"],
      leaseMs: 60_000,
    });
    if (expected.length === 0) {
      expect(task).toBeNull();
      return;
    }
    expect(task).not.toBeNull();
    const run = expected.find((x) => x.runId === task!.run.runId);
    expect(
      run,
      `claimed ${task!.run.workflowId}, claimable: ${expected.map((x) => x.workflowId)}`,
    ).toBeDefined();
    const t = run!.task!;
    t.fence++;
    t.leased = true;
    t.visibleEpoch = m.epoch + 1;
    expect(task!.fence).toBe(t.fence);
    expect(task!.run.lastSeq).toBe(run!.history.length);
    expect(task!.run.status).toBe(run!.status);
    expect(task!.inbox.map((e) => [e.type, e.step, asList(e.body)])).toEqual(run!.inbox.map((e) => e.event));
    m.held.set(this.slot, {
      workflowId: run!.workflowId,
      fence: t.fence,
      lastSeq: run!.history.length,
      keys: run!.inbox.map((e) => e.key),
    });
    r.held.set(this.slot, task!);
  }
  toString = () => `ClaimWorkflow(slot ${this.slot})`;
}

type Action = "noop" | "activity" | "timerDue" | "timerLater" | "cancelActivity" | "complete" | "block";

class CommitHeld implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly slot: number,
    readonly action: Action,
  ) {}
  check = (m: Readonly<Model>) => m.held.has(this.slot);
  async run(m: Model, r: Real) {
    const held = m.held.get(this.slot)!;
    const task = r.held.get(this.slot)!;
    m.held.delete(this.slot);
    r.held.delete(this.slot);
    const run = m.runs.get(held.workflowId)!;
    const now = r.backend.now();

    if (this.action === "block") {
      const res = await outcome(
        r.backend.blockRun({
          runId: run.runId,
          fence: held.fence,
          reason: "model",
          error: bytes([9])!,
          retryAt: now + HOUR / 2,
        }),
      );
      const current = run.task !== null && run.task.fence === held.fence;
      expect(res.ok, `blockRun ${current ? "should" : "should not"} succeed`).toBe(current);
      if (!res.ok) expect(res.error).toBeInstanceOf(ConflictError);
      if (current) {
        run.task = { ...run.task!, leased: false, blocked: true, visibleEpoch: m.epoch + 1 };
        run.status = "blocked";
      }
      return;
    }

    const consumed = task.inbox.map((e): MEvent => [e.type, e.step, asList(e.body)]);
    const extra: MEvent[] = [];
    const req: Partial<ActivationCommit> = {};
    const step = run.nextStep++;
    if (this.action === "activity") {
      extra.push(["ActivityScheduled", step, [step]]);
      req.activities = [
        {
          step,
          name: "act",
          input: bytes([step])!,
          options: bytes([0])!,
          timeoutMs: 60_000,
          heartbeatTimeoutMs: 0,
        },
      ];
    } else if (this.action === "timerDue" || this.action === "timerLater") {
      extra.push(["TimerStarted", step, null]);
      req.timers = [{ step, dueAt: this.action === "timerDue" ? now - 1 : now + HOUR / 2 }];
    } else if (this.action === "cancelActivity" && run.activities.size > 0) {
      const target = Math.min(...run.activities.keys());
      extra.push(["ActivityCancelled", target, null]);
      req.cancelActivities = [target];
    } else if (this.action === "complete") {
      extra.push(["WorkflowCompleted", null, [42]]);
      req.close = { status: "completed", result: bytes([42])! };
    }
    const events = [...consumed, ...extra].map(([type, s, body], i) => ({
      seq: task.run.lastSeq + 1 + i,
      ts: now,
      type: type as EventType,
      step: s,
      body: bytes(body),
    }));
    const res = await outcome(
      r.backend.commitActivation(
        commitOf(task.run.runId, task.run.lastSeq, {
          fence: task.fence,
          events,
          consumedInbox: task.inbox.map((e) => e.id),
          ...req,
        }),
      ),
    );

    const keys = new Set(held.keys);
    const fenceHolds = run.task !== null && run.task.fence === held.fence;
    const seqHolds = isOpen(run) && run.history.length === held.lastSeq;
    const unseen = run.inbox.filter((e) => !keys.has(e.key));
    const ok = fenceHolds && seqHolds && !(this.action === "complete" && unseen.length > 0);
    expect(res.ok, `commit ${ok ? "should" : "should not"} succeed: ${res.ok ? "" : String(res.error)}`).toBe(
      ok,
    );
    if (!res.ok) {
      expect(res.error).toBeInstanceOf(ConflictError);
      // As a worker does: hand the task back at once (rejected too when the fence is stale).
      const rel = await outcome(r.backend.releaseWorkflowTask({ runId: task.run.runId, fence: task.fence }));
      expect(rel.ok).toBe(fenceHolds);
      if (fenceHolds) run.task = { ...run.task!, leased: false, visibleEpoch: m.epoch };
      return;
    }
    run.history.push(...consumed, ...extra);
    run.inbox = unseen;
    if (this.action === "activity") {
      run.activities.set(step, { visibleEpoch: m.epoch, leased: false, fence: 0, attempt: 0 });
    } else if (this.action === "timerDue" || this.action === "timerLater") {
      const dueAt = req.timers![0]!.dueAt;
      run.timers.set(step, [this.action === "timerDue" ? m.epoch : m.epoch + 1, dueAt]);
    } else if (req.cancelActivities !== undefined) {
      run.activities.delete(req.cancelActivities[0]!);
    }
    if (this.action === "complete") {
      run.status = "completed";
      run.task = null;
      run.activities.clear();
      run.timers.clear();
      run.inbox = [];
    } else {
      run.status = "running";
      run.task = {
        fence: run.task!.fence,
        leased: false,
        blocked: false,
        visibleEpoch: run.inbox.length > 0 ? m.epoch : null,
      };
    }
  }
  toString = () => `CommitHeld(slot ${this.slot}, ${this.action})`;
}

class ClaimActivity implements fc.AsyncCommand<Model, Real> {
  constructor(readonly slot: number) {}
  check = (m: Readonly<Model>) => !m.heldActs.has(this.slot);
  async run(m: Model, r: Real) {
    const expected: [MRun, number, MActivity][] = [];
    for (const run of m.runs.values()) {
      for (const [step, a] of run.activities) if (a.visibleEpoch <= m.epoch) expected.push([run, step, a]);
    }
    const task = await r.backend.claimActivityTask({ workerId: `a${this.slot}`, activityNames: ["act"] });
    if (expected.length === 0) {
      expect(task).toBeNull();
      return;
    }
    expect(task).not.toBeNull();
    const hit = expected.find(([run, step]) => run.runId === task!.runId && step === task!.step);
    expect(hit, `claimed activity ${task!.workflowId}/${task!.step}`).toBeDefined();
    const a = hit![2];
    a.attempt++;
    a.fence++;
    a.leased = true;
    a.visibleEpoch = m.epoch + 1;
    expect([task!.attempt, task!.fence]).toEqual([a.attempt, a.fence]);
    m.heldActs.set(this.slot, { workflowId: hit![0].workflowId, step: task!.step, fence: a.fence });
    r.heldActs.set(this.slot, task!);
  }
  toString = () => `ClaimActivity(slot ${this.slot})`;
}

class FinishActivity implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly slot: number,
    readonly how: "complete" | "retry",
  ) {}
  check = (m: Readonly<Model>) => m.heldActs.has(this.slot);
  async run(m: Model, r: Real) {
    const held = m.heldActs.get(this.slot)!;
    const task = r.heldActs.get(this.slot)!;
    m.heldActs.delete(this.slot);
    r.heldActs.delete(this.slot);
    const res = await outcome(
      this.how === "complete"
        ? r.backend.completeActivityTask(task, { type: "ActivityCompleted", body: bytes([held.step, 1])! })
        : r.backend.retryActivityTask(task, r.backend.now(), bytes([0])!),
    );
    const run = m.runs.get(held.workflowId)!;
    const a = run.activities.get(held.step);
    const live = a?.leased === true && a.fence === held.fence;
    expect(res.ok, `${this.how} ${live ? "should" : "should not"} succeed`).toBe(live);
    if (!res.ok) {
      expect(res.error).toBeInstanceOf(ConflictError);
      return;
    }
    if (this.how === "retry") {
      a!.leased = false;
      a!.visibleEpoch = m.epoch;
      return;
    }
    run.activities.delete(held.step);
    deliver(m, run, ["ActivityCompleted", held.step, [held.step, 1]]);
  }
  toString = () => `FinishActivity(slot ${this.slot}, ${this.how})`;
}

class FireTimers implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    const fired = await r.backend.fireDueTimers(100);
    let expected = 0;
    for (const run of m.runs.values()) {
      const due = [...run.timers].filter(([, [epoch]]) => epoch <= m.epoch);
      due.sort((x, y) => x[1][1] - y[1][1] || x[0] - y[0]);
      for (const [step] of due) {
        run.timers.delete(step);
        deliver(m, run, ["TimerFired", step, null]);
        expected++;
      }
    }
    expect(fired).toBe(expected);
  }
  toString = () => "FireTimers";
}

class RetryBlocked implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    const n = await r.backend.retryBlockedRuns(["wf"]);
    let expected = 0;
    for (const run of m.runs.values()) {
      if (run.task?.blocked && !run.task.leased) {
        run.task.visibleEpoch = m.epoch;
        expected++;
      }
    }
    expect(n).toBe(expected);
  }
  toString = () => "RetryBlocked";
}

class Advance implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    r.clock.advance(HOUR);
    m.epoch++;
  }
  toString = () => "Advance(1h)";
}

/** Compares every run's status, history and inbox, and the timer count, with the model. */
export class Check implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    let timers = 0;
    for (const run of m.runs.values()) {
      const real = await r.backend.inspect.getRun(run.runId);
      expect(real?.status).toBe(run.status);
      expect(real?.lastSeq).toBe(run.history.length);
      const history = await r.backend.getHistory(run.runId);
      expect(history.map((e) => [e.type, e.step, asList(e.body)])).toEqual(run.history);
      expect(history.map((e) => e.seq)).toEqual(run.history.map((_, i) => i + 1));
      const inbox = await r.backend.getInbox(run.runId);
      expect(inbox.map((e) => [e.type, e.step, asList(e.body)])).toEqual(run.inbox.map((e) => e.event));
      timers += run.timers.size;
    }
    expect((await r.backend.inspect.stats()).pendingTimers).toBe(timers);
  }
  toString = () => "Check";
}

/** The command arbitrary: weighted towards the commands that move runs forward. */
export function commandsArbitrary(maxCommands: number) {
  const id = fc.constantFrom(...IDS);
  const slot = fc.constantFrom(...SLOTS);
  const action = fc.constantFrom<Action>(
    "noop",
    "activity",
    "activity",
    "timerDue",
    "timerLater",
    "cancelActivity",
    "complete",
    "block",
  );
  return fc.commands(
    [
      id.map((x) => new Start(x)),
      fc.tuple(id, fc.integer({ min: 1, max: 99 })).map(([x, v]) => new Signal(x, v)),
      fc.tuple(id, fc.integer({ min: 1, max: 99 })).map(([x, v]) => new Signal(x, v)),
      id.map((x) => new Cancel(x)),
      slot.map((s) => new ClaimWorkflow(s)),
      slot.map((s) => new ClaimWorkflow(s)),
      fc.tuple(slot, action).map(([s, a]) => new CommitHeld(s, a)),
      fc.tuple(slot, action).map(([s, a]) => new CommitHeld(s, a)),
      slot.map((s) => new ClaimActivity(s)),
      fc
        .tuple(slot, fc.constantFrom<"complete" | "retry">("complete", "complete", "retry"))
        .map(([s, h]) => new FinishActivity(s, h)),
      fc.constant(new FireTimers()),
      fc.constant(new RetryBlocked()),
      fc.constant(new Advance()),
      fc.constant(new Check()),
    ],
    { maxCommands, size: "max" },
  );
}
