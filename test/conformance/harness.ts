/**
 * The conformance suite's harness: the factory type a backend's test file implements, the fresh
 * store each test gets, and the helpers every part of the contract uses to drive it (start, claim,
 * commit an activation the way a worker does, schedule work, read notifications).
 *
 * Each part of the contract lives in its own file and receives a {@link ConformanceHarness}; the
 * harness's `beforeEach` opens the store before any test, so a part reads the store of the running
 * test with {@link ConformanceHarness.current} in its own `beforeEach`.
 *
 * Time is driven through the backend's injected clock (`clock.advance`), never by sleeping, and the
 * tests compare times relative to `backend.now()` rather than asserting wall-clock values.
 */
import type {
  ActivationCommit,
  ActivationResult,
  Backend,
  BackendNotification,
  ClaimedActivityTask,
  ClaimedWorkflowTask,
  EventType,
  IdConflictPolicy,
  NewActivityTask,
  RawEvent,
  StartWorkflowRequest,
  StartWorkflowResult,
} from "@spool/core";
import { afterEach, beforeEach, expect } from "vitest";
import { commitOf } from "./commits.ts";

/** A controllable clock driving the backend under test. */
export interface TestClock {
  /** Moves the backend's clock forward. */
  advance(ms: number): void;
  /** Sets the backend's clock (optional: not every harness can). */
  set?(ms: number): void;
  /**
   * How far the clock may move by itself between two calls, in ms (default 0: it only moves on
   * `advance`). A database clock (PostgreSQL's) keeps running during a test, so checks just before
   * a lease or due-time boundary stop this much short of it, and exact time comparisons allow this
   * much drift. Keep it below 150: the heartbeat test steps back from a 200 ms lease.
   */
  slackMs?: number;
}

/** What a backend harness provides for one test: a fresh, empty store. */
export interface BackendHarness {
  backend: Backend;
  clock: TestClock;
  teardown(): Promise<void>;
}

/** Backend options a conformance test may ask its harness for (each backend has them). */
export interface BackendHarnessOptions {
  maxBufferedSignals?: number;
}

/** Opens a fresh, empty store; what each backend's test file passes to `describeBackend`. */
export type MakeBackend = (options?: BackendHarnessOptions) => Promise<BackendHarness>;

/** An event to append, before the helper gives it a position and time. */
export interface Append {
  type: EventType;
  step: number | null;
  body: Uint8Array | null;
}

/** Claim options of the workflow-task helpers. */
export interface ClaimOptions {
  leaseMs?: number;
  workerId?: string;
}

/** What an activation commit helper accepts beyond the commit itself. */
export type ActivateExtra = Partial<ActivationCommit> & { append?: Append[]; consume?: boolean };

/** The store of the running test and the helpers that drive it; see {@link conformanceHarness}. */
export interface ConformanceHarness {
  /** The factory of the backend under test, for a test that needs a second store with options. */
  makeBackend: MakeBackend;
  /** The store and clock of the running test (valid inside tests and `beforeEach`). */
  current(): { backend: Backend; clock: TestClock };
  /** See TestClock.slackMs. */
  slack(): number;
  /** Expects `actual` to be `expected`, within the clock's slack. */
  expectNear(actual: number | null, expected: number): void;
  start(
    workflowId: string,
    opts?: { name?: string; onConflict?: IdConflictPolicy; version?: string },
  ): Promise<StartWorkflowResult>;
  claim(names?: string[], opts?: ClaimOptions): Promise<ClaimedWorkflowTask | null>;
  claimOrFail(names?: string[], opts?: ClaimOptions): Promise<ClaimedWorkflowTask>;
  claimActivity(names?: string[], workerId?: string): Promise<ClaimedActivityTask | null>;
  claimActivityOrFail(names?: string[]): Promise<ClaimedActivityTask>;
  /** The start request of the signalWithStart tests (which apply their own conflict policy). */
  orderStart: StartWorkflowRequest & { onConflict: "fail" };
  /** Gives `list` the positions after `afterSeq` and the backend's current time. */
  positioned(afterSeq: number, list: Append[]): RawEvent[];
  /**
   * Commits an activation of a claimed task, the way a worker does: the inbox events it read
   * become history (unless `consume` is false), followed by `append`.
   */
  activate(task: ClaimedWorkflowTask, extra?: ActivateExtra): Promise<ActivationResult>;
  /** The eager path: a commit guarded by the sequence number only (no fence). */
  commitUnfenced(
    runId: string,
    extra?: Partial<ActivationCommit> & { append?: Append[] },
  ): Promise<ActivationResult>;
  /** A new activity task of name "act" at `step`. */
  activity(step: number, over?: Partial<NewActivityTask>): NewActivityTask;
  /** The ActivityScheduled event of `step`. */
  scheduled(step: number): Append;
  /** Starts a run and commits its first activation, leaving it idle. */
  startIdle(workflowId: string, name?: string): Promise<string>;
  /** Completes an open, unleased run (eager path: seq guard only), consuming its inbox first. */
  complete(runId: string): Promise<ActivationResult>;
  /** The error `p` rejects with; fails the test if it resolves. */
  rejection(p: Promise<unknown>): Promise<unknown>;
  /** Collects the backend's notifications until `unsubscribe` is called. */
  recordNotifications(): { seen: BackendNotification[]; unsubscribe: () => void };
}

/** A body of the given bytes. */
export const bytes = (...values: number[]) => new Uint8Array(values);

/**
 * Opens a fresh store before every test of the enclosing `describe` (and tears it down after), and
 * returns the helpers the parts of the suite use. Call it inside the suite's `describe`.
 */
export function conformanceHarness(makeBackend: MakeBackend): ConformanceHarness {
  let backend: Backend;
  let clock: TestClock;
  let teardown: () => Promise<void>;
  const slack = () => clock.slackMs ?? 0;
  const expectNear = (actual: number | null, expected: number) => {
    if (slack() === 0) expect(actual).toBe(expected);
    else expect(Math.abs((actual ?? Number.NaN) - expected)).toBeLessThanOrEqual(slack());
  };

  beforeEach(async () => {
    ({ backend, clock, teardown } = await makeBackend());
    await backend.init();
  });
  afterEach(async () => {
    await teardown();
  });

  const start: ConformanceHarness["start"] = (workflowId, opts = {}) =>
    backend.startWorkflow({
      workflowId,
      workflowName: opts.name ?? "wf",
      version: opts.version ?? null,
      startedEventBody: bytes(1, 2, 3),
      onConflict: opts.onConflict ?? "attach",
    });

  const claim = (names: string[] = ["wf"], opts: ClaimOptions = {}) =>
    backend.claimWorkflowTask({
      workerId: opts.workerId ?? "worker-a",
      workflowNames: names,
      leaseMs: opts.leaseMs ?? 10_000,
    });

  const claimOrFail = async (names: string[] = ["wf"], opts: ClaimOptions = {}) => {
    const task = await claim(names, opts);
    if (task === null) throw new Error(`expected a claimable workflow task for ${names.join(", ")}`);
    return task;
  };

  const claimActivity = (names: string[] = ["act"], workerId = "worker-a") =>
    backend.claimActivityTask({ workerId, activityNames: names });

  const claimActivityOrFail = async (names: string[] = ["act"]) => {
    const task = await claimActivity(names);
    if (task === null) throw new Error(`expected a claimable activity task for ${names.join(", ")}`);
    return task;
  };

  const orderStart = {
    workflowId: "order-1",
    workflowName: "wf",
    version: null,
    startedEventBody: bytes(1),
    onConflict: "fail" as const,
  };

  const positioned = (afterSeq: number, list: Append[]): RawEvent[] =>
    list.map((e, i) => ({ seq: afterSeq + 1 + i, ts: backend.now(), ...e }));

  const activate = (task: ClaimedWorkflowTask, extra: ActivateExtra = {}): Promise<ActivationResult> => {
    const { append = [], consume = true, ...rest } = extra;
    const consumed = consume ? task.inbox : [];
    const events = positioned(task.run.lastSeq, [
      ...consumed.map((e) => ({ type: e.type, step: e.step, body: e.body })),
      ...append,
    ]);
    return backend.commitActivation({
      ...commitOf(task.run.runId, task.run.lastSeq),
      fence: task.fence,
      events,
      consumedInbox: consumed.map((e) => e.id),
      ...rest,
    });
  };

  const commitUnfenced = async (
    runId: string,
    extra: Partial<ActivationCommit> & { append?: Append[] } = {},
  ) => {
    const run = await backend.inspect.getRun(runId);
    if (run === null) throw new Error(`no run ${runId}`);
    const { append = [], ...rest } = extra;
    return backend.commitActivation({
      ...commitOf(runId, run.lastSeq),
      events: positioned(run.lastSeq, append),
      ...rest,
    });
  };

  const activity = (step: number, over: Partial<NewActivityTask> = {}): NewActivityTask => ({
    step,
    name: "act",
    input: bytes(7, step),
    options: bytes(8),
    timeoutMs: 1_000,
    heartbeatTimeoutMs: 0,
    ...over,
  });

  const scheduled = (step: number): Append => ({ type: "ActivityScheduled", step, body: bytes(step) });

  const startIdle = async (workflowId: string, name = "wf") => {
    const { runId } = await start(workflowId, { name });
    const task = await claimOrFail([name]);
    expect(task.run.runId).toBe(runId);
    await activate(task);
    return runId;
  };

  const complete = async (runId: string) => {
    const inbox = await backend.getInbox(runId);
    return commitUnfenced(runId, {
      append: [
        ...inbox.map((e) => ({ type: e.type, step: e.step, body: e.body })),
        { type: "WorkflowCompleted", step: null, body: bytes(42) },
      ],
      consumedInbox: inbox.map((e) => e.id),
      close: { status: "completed", result: bytes(42) },
    });
  };

  const rejection = async (p: Promise<unknown>): Promise<unknown> => {
    try {
      await p;
    } catch (err) {
      return err;
    }
    throw new Error("expected the call to reject");
  };

  const recordNotifications = () => {
    const seen: BackendNotification[] = [];
    const unsubscribe = backend.subscribe((n) => seen.push(n));
    return { seen, unsubscribe };
  };

  return {
    makeBackend,
    current: () => ({ backend, clock }),
    slack,
    expectNear,
    start,
    claim,
    claimOrFail,
    claimActivity,
    claimActivityOrFail,
    orderStart,
    positioned,
    activate,
    commitUnfenced,
    activity,
    scheduled,
    startIdle,
    complete,
    rejection,
    recordNotifications,
  };
}
