/**
 * Fibers: the engine's unit of concurrency inside one run. The workflow body is the root fiber;
 * every branch of `all`/`race` is a child fiber. Fibers never run at the same time: the engine
 * drives one until it blocks on a step, then the next, in a fixed order.
 */
import { WorkflowAwaitError } from "../errors.ts";
import type { Step } from "../steps/step.ts";

/** What a blocked fiber waits for. */
export type Pending =
  | { kind: "activity"; step: number; name: string }
  | { kind: "timer"; step: number; internal?: "execution-timeout" }
  | { kind: "signal"; name: string; timerStep: number | null }
  | { kind: "child"; step: number; workflowId: string; name: string }
  | { kind: "group"; group: GroupState };

/** The state of one `all` or `race`. */
export interface GroupState {
  kind: "all" | "race";
  parent: Fiber;
  children: Fiber[];
  results: unknown[];
  remaining: number;
  settled: boolean;
  /** True while the group's branches are being started (the parent is mid-step). */
  starting: boolean;
  /** The outcome when the group settled while starting. */
  early: Outcome | null;
}

/** How a step or fiber ended. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

type Gen = AsyncGenerator<Step<unknown>, unknown, unknown> | Generator<Step<unknown>, unknown, unknown>;

/** One line of execution. A fiber without a generator wraps a single step (a step branch of `all`). */
export class Fiber {
  pending: Pending | null = null;
  done = false;
  /** Cancelled by its group or by completion: whatever it does next is ignored. */
  detached = false;
  constructor(
    readonly id: number,
    readonly gen: Gen | null,
    readonly group: GroupState | null,
    readonly index: number,
  ) {}
}

/** The next thing to do to a fiber. */
export interface Action {
  fiber: Fiber;
  kind: "next" | "throw" | "return";
  value: unknown;
}

/**
 * Awaits a generator's result, allowing only microtask turns. A workflow that awaits real I/O or a
 * timer never settles within them; that is reported as WorkflowAwaitError rather than hanging,
 * because replay could never reproduce such an await.
 */
export async function settleWithinMicrotasks<T>(
  value: Promise<T> | T,
  maxTurns: number,
  where: string,
): Promise<Outcome> {
  if (!(value instanceof Promise)) return { ok: true, value };
  let state = 0;
  let result: T | undefined;
  let error: unknown;
  value.then(
    (v) => {
      state = 1;
      result = v;
    },
    (e) => {
      state = 2;
      error = e;
    },
  );
  for (let i = 0; state === 0 && i < maxTurns; i++) await undefined;
  if (state === 1) return { ok: true, value: result };
  if (state === 2) return { ok: false, error };
  throw new WorkflowAwaitError(
    `workflow code awaited something that is not a Spool step ${where} — real I/O, a timer (setTimeout), ` +
      "or a promise from outside the workflow. Replay cannot reproduce such an await, so the run is parked. " +
      "Move the I/O into an activity (defineActivity) and `yield*` it, use `yield* sleep()` for delays, " +
      "and only `yield*` steps in workflow code.",
  );
}
