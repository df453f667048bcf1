/**
 * The fiber scheduler: drives the workflow's generators. Fibers never run at the same time: the
 * scheduler drives one until it blocks on a step, then takes the next queued action, in FIFO order.
 * It implements StepOps, the narrow interface step kinds see; it knows no step kind itself (see
 * steps/index.ts).
 *
 * Scheduling order (documented, and relied on for determinism): the root fiber runs until it
 * blocks; a group (`all`/`race`) starts its branches in array order, each until it blocks; each
 * inbound event resumes the fiber waiting for it, and any fibers made runnable as a consequence
 * run in FIFO order until none can run; only then is the next event fed.
 */
import { NonDeterminismError, WorkflowAwaitError, WorkflowCodeError } from "../errors.ts";
import { isStep, type Step } from "../steps/step.ts";
import { type Action, Fiber, type GroupState, type Outcome, settleWithinMicrotasks } from "./fiber.ts";
import type { Recorder } from "./recorder.ts";
import { completeRun, failRun, withdrawOutstanding } from "./run-end.ts";
import type { RunState } from "./run-state.ts";
import { CONTINUED, type StepOps, type StepStart } from "./step-ops.ts";
import { type AnyStep, asAnyStep } from "./steps/any-step.ts";
import { branchDone, describeValue } from "./steps/group.ts";
import { startStep, withdrawPending } from "./steps/index.ts";

export class Scheduler implements StepOps {
  private readonly queue: Action[] = [];
  /** The workflow body's fiber. */
  root: Fiber | null = null;

  constructor(
    readonly s: RunState,
    readonly rec: Recorder,
  ) {}

  /** Starts the workflow body as the root fiber (it runs at the next `runQueue`). */
  startRoot(gen: Fiber["gen"]): void {
    this.root = this.newFiber(gen, null, 0);
    this.queue.push({ fiber: this.root, kind: "next", value: undefined });
  }

  /** Runs queued fibers until none can run. */
  async runQueue(): Promise<void> {
    while (this.queue.length > 0) {
      const action = this.queue.shift() as Action;
      if (action.fiber.done || this.s.closed) continue;
      await this.drive(action.fiber, action.kind, action.value);
    }
  }

  resume(fiber: Fiber, outcome: Outcome): void {
    this.queue.push({
      fiber,
      kind: outcome.ok ? "next" : "throw",
      value: outcome.ok ? outcome.value : outcome.error,
    });
  }

  resolveStep(step: number, outcome: Outcome): void {
    const f = this.s.waitingSteps.get(step);
    // A result for a step nobody waits for (a cancelled race loser) changes nothing.
    if (!f) return;
    this.s.waitingSteps.delete(step);
    f.pending = null;
    this.resume(f, outcome);
  }

  newFiber(gen: Fiber["gen"], group: GroupState | null, index: number): Fiber {
    const f = new Fiber(++this.s.fiberCounter, gen, group, index);
    this.s.live.add(f);
    return f;
  }

  async drive(fiber: Fiber, kind: Action["kind"], value: unknown): Promise<void> {
    let k = kind;
    let v = value;
    for (;;) {
      if (this.s.closed) return;
      const gen = fiber.gen;
      if (!gen) {
        this.finish(fiber, k === "throw" ? { ok: false, error: v } : { ok: true, value: v });
        return;
      }
      let p: ReturnType<typeof gen.next>;
      try {
        p = k === "next" ? gen.next(v) : k === "throw" ? gen.throw(v) : gen.return(v as never);
      } catch (err) {
        this.finish(fiber, { ok: false, error: err });
        return;
      }
      // A stall (an await on real I/O) throws out of here: it is an engine error, not the code's.
      const settled = await settleWithinMicrotasks(
        p,
        this.s.opts.maxMicrotaskTurns,
        `after step ${this.s.stepCounter}`,
      );
      if (!settled.ok) {
        this.finish(fiber, settled);
        return;
      }
      const r = settled.value as IteratorResult<Step<unknown>, unknown>;
      if (r.done) {
        this.finish(fiber, { ok: true, value: r.value });
        return;
      }
      const yielded = r.value as unknown;
      if (!isStep(yielded)) {
        k = "throw";
        v = new WorkflowCodeError(
          `workflow code yielded ${describeValue(yielded)} instead of a step. Use \`yield*\` (with the star) on ` +
            "steps: activity calls, sleep(), all(), race(), signal.wait(), child(), sideEffect(), patched().",
        );
        continue;
      }
      let outcome = this.startStep(fiber, asAnyStep(yielded));
      if (outcome instanceof Promise) outcome = await outcome;
      if (outcome === null || outcome === CONTINUED) return;
      k = outcome.ok ? "next" : "throw";
      v = outcome.ok ? outcome.value : outcome.error;
    }
  }

  startStep(fiber: Fiber, step: AnyStep): StepStart | Promise<StepStart> {
    // Only a group starts asynchronously; every other step returns at once, and awaiting it would
    // cost a microtask turn per step.
    try {
      const started = startStep(fiber, step, this);
      return started instanceof Promise ? started.catch(stepError) : started;
    } catch (err) {
      return stepError(err);
    }
  }

  finish(fiber: Fiber, outcome: Outcome): void {
    if (fiber.done) return;
    fiber.done = true;
    fiber.pending = null;
    this.s.live.delete(fiber);
    if (fiber.detached) return;
    if (fiber === this.root) {
      completeRun(outcome, this);
      return;
    }
    const g = fiber.group;
    if (g) branchDone(g, fiber.index, outcome, this);
  }

  cancelFiber(f: Fiber): void {
    if (f.done || f.detached) return;
    f.detached = true;
    this.withdraw(f);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]?.fiber === f) this.queue.splice(i, 1);
    if (f.gen) this.queue.push({ fiber: f, kind: "return", value: undefined });
    else {
      f.done = true;
      this.s.live.delete(f);
    }
  }

  withdraw(f: Fiber): void {
    const p = f.pending;
    f.pending = null;
    if (p) withdrawPending(f, p, this);
  }

  withdrawAll(): void {
    withdrawOutstanding(this);
    this.queue.length = 0;
  }

  failRun(err: unknown): void {
    failRun(err, this);
  }

  warn(message: string, fields?: Record<string, unknown>): void {
    const s = this.s;
    if (s.isReplaying || !s.opts.log) return;
    s.opts.log({ level: "warn", message, fields, workflowId: s.workflowId, runId: s.runId, ts: s.nowTs });
  }
}

/**
 * Engine-level failures (non-determinism) stop everything; errors about the step itself (bad
 * input, bad duration) are thrown into the workflow code at its `yield*`.
 */
function stepError(err: unknown): StepStart {
  if (NonDeterminismError.is(err) || WorkflowAwaitError.is(err)) throw err;
  return { ok: false, error: err };
}
