/**
 * The activity harness of a test environment: every activity the worker runs goes through it, so
 * a test can replace an activity by a mock (matched by definition), make attempt N fail with a
 * chosen error, lose an attempt's completion after its side effect ran, and read a ledger of every
 * real execution — what ran, with which input, attempt and idempotency key, and how it ended.
 */
import {
  type ActivityContext,
  type ActivityDefinition,
  type ActivityFunction,
  defineActivity,
  InvalidOptionsError,
  type Schema,
} from "@spool/core";

/** How one recorded activity execution ended. */
export type LedgerOutcome =
  | { status: "running" }
  | { status: "completed"; value: unknown }
  | { status: "failed"; error: unknown; injected: boolean };

/**
 * One activity attempt the environment ran (or failed on purpose), in `env.ledger`.
 *
 * @example
 * ```ts
 * const charges = env.ledgerOf(charge).filter((e) => e.outcome.status === "completed");
 * expect(new Set(charges.map((e) => e.idempotencyKey)).size).toBe(1); // one effect per step
 * ```
 */
export interface LedgerEntry {
  /** The activity name. */
  activity: string;
  input: unknown;
  attempt: number;
  /** Stable across the attempts of one step: assert exactly-once effects on it. */
  idempotencyKey: string;
  workflowId: string;
  runId: string;
  step: number;
  /** Virtual time the attempt started. */
  at: number;
  /** True when a mock ran instead of the real function. */
  mocked: boolean;
  outcome: LedgerOutcome;
  /**
   * True when the attempt's completion was discarded after its side effect ran
   * (`crashAfterActivity`): the attempt is retried after its lease expires.
   */
  completionDropped: boolean;
}

/** The function type of a mock of activity definition `D`. */
export type ActivityMock<D> = D extends ActivityDefinition<infer I, infer O> ? ActivityFunction<I, O> : never;

/** Options of `failActivity`. */
export interface FailActivityOptions {
  /** The attempt that fails (1 = the first), or "every" for every attempt (default 1). */
  attempt?: number | "every";
  /** The error thrown (default: an Error naming the activity and attempt). A NonRetryableError fails the step for good. */
  error?: unknown;
  /** Only for this workflow id. */
  workflowId?: string;
  /** How many times the rule fires in all (default: unlimited). */
  times?: number;
}

/** Options of `crashAfterActivity`. */
export interface CrashAfterActivityOptions {
  /** The attempt whose completion is lost (default 1). */
  attempt?: number;
  /** Only for this workflow id. */
  workflowId?: string;
  /** How many times the rule fires in all (default 1). */
  times?: number;
}

interface FailRule {
  name: string;
  attempt: number | "every";
  error: unknown;
  workflowId: string | undefined;
  left: number;
}

interface CrashRule {
  name: string;
  attempt: number;
  workflowId: string | undefined;
  left: number;
}

/** Thrown at a fault point to simulate the worker dying there. */
export class SimulatedCrash extends Error {
  override name = "SimulatedCrash";
}

/** Mocks, injected faults and the ledger; builds the definitions the worker runs. */
export class ActivityHarness {
  readonly ledger: LedgerEntry[] = [];
  private readonly real = new Map<string, ActivityDefinition>();
  private readonly mocks = new Map<string, ActivityFunction<Schema, Schema>>();
  private readonly failRules: FailRule[] = [];
  private readonly crashRules: CrashRule[] = [];
  /** Completions to discard at the worker's "activity.before-complete" point, by `name#step`. */
  private readonly dropping = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** Registers a real definition. */
  addReal(def: ActivityDefinition): void {
    this.real.set(def.name, def);
  }

  /** Replaces `def` by `fn` (also for activities not in `activities`). */
  mock(def: ActivityDefinition, fn: ActivityFunction<Schema, Schema>): void {
    if (def?.kind !== "activity")
      throw new InvalidOptionsError("mock() takes an activity definition made by defineActivity()");
    if (typeof fn !== "function") throw new InvalidOptionsError(`mock(${def.name}) needs a function`);
    if (!this.real.has(def.name)) this.real.set(def.name, def);
    this.mocks.set(def.name, fn);
  }

  /** Removes a mock: the real function runs again. */
  unmock(def: ActivityDefinition): void {
    this.mocks.delete(def.name);
  }

  failActivity(def: ActivityDefinition, o: FailActivityOptions = {}): void {
    this.known(def);
    this.failRules.push({
      name: def.name,
      attempt: o.attempt ?? 1,
      error: o.error,
      workflowId: o.workflowId,
      left: o.times ?? Number.POSITIVE_INFINITY,
    });
  }

  crashAfterActivity(def: ActivityDefinition, o: CrashAfterActivityOptions = {}): void {
    this.known(def);
    this.crashRules.push({
      name: def.name,
      attempt: o.attempt ?? 1,
      workflowId: o.workflowId,
      left: o.times ?? 1,
    });
  }

  private known(def: ActivityDefinition): void {
    if (def?.kind !== "activity")
      throw new InvalidOptionsError("pass an activity definition made by defineActivity()");
    if (!this.real.has(def.name)) this.real.set(def.name, def);
  }

  /** The definitions to hand to a worker: same names, schemas and options; the harness in between. */
  definitions(): ActivityDefinition[] {
    return [...this.real.values()].map((def) =>
      defineActivity(
        { ...def.options, name: def.name, input: def.inputSchema, output: def.outputSchema },
        (input: unknown, ctx: ActivityContext) => this.run(def, input, ctx),
      ),
    );
  }

  /** Called at the worker's "activity.before-complete" fault point: drops a marked completion. */
  beforeComplete(info: Record<string, unknown>): void {
    const key = `${String(info.name)}#${String(info.step)}`;
    const n = this.dropping.get(key) ?? 0;
    if (n === 0) return;
    if (n === 1) this.dropping.delete(key);
    else this.dropping.set(key, n - 1);
    throw new SimulatedCrash(`simulated crash: the completion of ${key} was lost after its side effect ran`);
  }

  private async run(def: ActivityDefinition, input: unknown, ctx: ActivityContext): Promise<unknown> {
    const mock = this.mocks.get(def.name);
    const entry: LedgerEntry = {
      activity: def.name,
      input,
      attempt: ctx.attempt,
      idempotencyKey: ctx.idempotencyKey,
      workflowId: ctx.info.workflowId,
      runId: ctx.info.runId,
      step: ctx.info.step,
      at: this.now(),
      mocked: mock !== undefined,
      outcome: { status: "running" },
      completionDropped: false,
    };
    this.ledger.push(entry);
    const fail = this.failRules.find(
      (r) =>
        r.name === def.name &&
        r.left > 0 &&
        (r.attempt === "every" || r.attempt === ctx.attempt) &&
        (r.workflowId === undefined || r.workflowId === ctx.info.workflowId),
    );
    if (fail) {
      fail.left--;
      const error = fail.error ?? new Error(`injected failure of "${def.name}" attempt ${ctx.attempt}`);
      entry.outcome = { status: "failed", error, injected: true };
      throw error;
    }
    const crash = this.crashRules.find(
      (r) =>
        r.name === def.name &&
        r.left > 0 &&
        r.attempt === ctx.attempt &&
        (r.workflowId === undefined || r.workflowId === ctx.info.workflowId),
    );
    const markDropped = () => {
      if (!crash) return;
      crash.left--;
      entry.completionDropped = true;
      const key = `${def.name}#${ctx.info.step}`;
      this.dropping.set(key, (this.dropping.get(key) ?? 0) + 1);
    };
    const fn = (mock ?? def.handler) as (input: unknown, ctx: ActivityContext) => unknown;
    try {
      const value = await fn(input, ctx);
      entry.outcome = { status: "completed", value };
      markDropped();
      return value;
    } catch (error) {
      entry.outcome = { status: "failed", error, injected: false };
      markDropped();
      throw error;
    }
  }
}
