/**
 * Activity definitions. An activity is where side effects live: a typed, named function with a
 * retry policy and timeouts. Calling the definition inside a workflow returns a step; `yield*`
 * on it gives the typed result. Workers run the function; workflow code never does.
 */
import type { z } from "zod";
import type { Duration } from "../duration.ts";
import { InvalidOptionsError } from "../errors.ts";
import type { RetryPolicy } from "../retry-policy.ts";
import { Step } from "../steps/step.ts";
import type { Schema } from "./schema.ts";

/** Facts about the running attempt, for logs and idempotency. */
export interface ActivityInfo {
  activityName: string;
  workflowId: string;
  runId: string;
  /** The step number of this activity in its run. */
  step: number;
  attempt: number;
  /** When the step was scheduled (ms since epoch). */
  scheduledAt: number;
  /** When this attempt times out (ms since epoch), if it has a timeout. */
  deadline: number | undefined;
}

/** The second argument of an activity function. */
export interface ActivityContext {
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborted when the attempt times out, the step is cancelled, the lease is lost or the worker shuts down. */
  signal: AbortSignal;
  /**
   * Reports progress and extends this attempt's lease; required at least every
   * `heartbeatTimeout` when one is set. Throws CancelledError if the step was cancelled.
   */
  heartbeat(details?: unknown): void;
  /**
   * Stable across all attempts of this step: `workflowId` + step number. Pass it to payment
   * providers and other APIs that de-duplicate by key, so a retried attempt does not repeat the effect.
   */
  idempotencyKey: string;
  info: ActivityInfo;
}

/** Per-call overrides of an activity's options. */
export interface ActivityCallOptions {
  retry?: RetryPolicy;
  /** Start-to-close timeout of one attempt. */
  timeout?: Duration;
  /** The attempt fails if it does not heartbeat within this time. */
  heartbeatTimeout?: Duration;
}

/** Options of `defineActivity`. */
export interface ActivityOptions<I extends Schema, O extends Schema> extends ActivityCallOptions {
  /** Stable, explicit name: it is recorded in history, so renaming breaks in-flight runs. */
  name: string;
  input: I;
  output: O;
}

/** The function a worker runs for an activity. */
export type ActivityFunction<I extends Schema, O extends Schema> = (
  input: z.output<I>,
  ctx: ActivityContext,
) => Promise<z.input<O>> | z.input<O>;

/** A step that runs an activity; its result is the activity's parsed output. */
export class ActivityStep<I extends Schema, O extends Schema> extends Step<z.output<O>> {
  readonly kind = "activity" as const;
  constructor(
    readonly definition: ActivityDefinition<I, O>,
    readonly input: z.input<I>,
    readonly options: ActivityCallOptions | undefined,
  ) {
    super();
  }
  describe(): string {
    return `activity "${this.definition.name}"`;
  }
}

/**
 * An activity definition: call it in workflow code to get a step; hand it to a Worker so the
 * worker can run it.
 */
export interface ActivityDefinition<I extends Schema = Schema, O extends Schema = Schema> {
  (input: z.input<I>, options?: ActivityCallOptions): ActivityStep<I, O>;
  readonly kind: "activity";
  /** The recorded name (also the function's `name` property). */
  readonly name: string;
  readonly inputSchema: I;
  readonly outputSchema: O;
  readonly options: ActivityCallOptions;
  readonly handler: ActivityFunction<I, O>;
}

const NAME = /^[A-Za-z0-9_.:\-/]{1,200}$/;

/** Checks a definition name: explicit, stable and printable. */
export function checkName(kind: string, name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new InvalidOptionsError(
      `${kind} name ${JSON.stringify(name)} is invalid: use 1-200 characters of letters, digits and . _ : - /, ` +
        `e.g. "payments.charge". Names are recorded in history, so choose a stable one.`,
    );
  }
  return name;
}

/**
 * Defines an activity.
 *
 * @example
 * ```ts
 * const charge = defineActivity(
 *   { name: "payments.charge", input: z.object({ amount: z.number() }), output: z.object({ id: z.string() }),
 *     retry: { maxAttempts: 5, initialInterval: "200ms" }, timeout: "30s" },
 *   async ({ amount }, ctx) => ({ id: await provider.charge(amount, { key: ctx.idempotencyKey }) }),
 * );
 * // in a workflow: const { id } = yield* charge({ amount: 42 });
 * ```
 * @throws InvalidOptionsError for an invalid name or a missing schema.
 */
export function defineActivity<I extends Schema, O extends Schema>(
  options: ActivityOptions<I, O>,
  handler: ActivityFunction<I, O>,
): ActivityDefinition<I, O> {
  const name = checkName("activity", options.name);
  if (!options.input || !options.output) {
    throw new InvalidOptionsError(`activity "${name}" needs both an input and an output zod schema`);
  }
  if (typeof handler !== "function") {
    throw new InvalidOptionsError(`activity "${name}" needs a function as its second argument`);
  }
  const { name: _n, input: _i, output: _o, ...callOptions } = options;
  const def = ((input: z.input<I>, callOpts?: ActivityCallOptions) =>
    new ActivityStep<I, O>(def, input, callOpts)) as ActivityDefinition<I, O>;
  Object.defineProperties(def, {
    kind: { value: "activity" },
    name: { value: name, configurable: true },
    inputSchema: { value: options.input },
    outputSchema: { value: options.output },
    options: { value: Object.freeze(callOptions) },
    handler: { value: handler },
  });
  return def;
}
