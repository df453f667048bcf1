/**
 * Workflow definitions and the context workflow code receives. A workflow is a plain
 * `async function*` that `yield*`s steps; it must be deterministic: the same history must make it
 * produce the same steps. Everything non-deterministic goes through an activity or `sideEffect`.
 */
import type { z } from "zod";
import type { Duration } from "../duration.ts";
import { InvalidOptionsError } from "../errors.ts";
import type { Step } from "../steps/step.ts";
import { checkName } from "./activity.ts";
import type { QueryDefinition } from "./query.ts";
import type { Schema } from "./schema.ts";
import type { SignalDefinition } from "./signal.ts";

/** A replay-aware logger: silent while the run replays recorded history. */
export interface WorkflowLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Facts about the run, fixed for its lifetime. */
export interface WorkflowInfo {
  workflowName: string;
  /** The workflow's `version` string when this run started. */
  version: string | undefined;
  /** When the run started (workflow time). */
  startedAt: Date;
  parent: { workflowId: string; runId: string } | undefined;
  /** The run this one continued from (continue-as-new), if any. */
  continuedFrom: string | undefined;
  /** Number of history events so far (grows as the run proceeds). */
  readonly historyLength: number;
}

/** The second argument of a workflow function. Every member is deterministic under replay. */
export interface WorkflowContext {
  readonly workflowId: string;
  readonly runId: string;
  /** Workflow time: the timestamp of the history event being processed. Never the wall clock. */
  now(): Date;
  /** A deterministic random number in [0, 1), seeded from the run. */
  random(): number;
  /** A deterministic RFC 4122 v4 UUID, seeded from the run. */
  uuid(): string;
  /** True while recorded history is being replayed. */
  readonly isReplaying: boolean;
  /** True once cancellation was requested for this run. */
  readonly cancelRequested: boolean;
  /** Logs only when not replaying, so each line appears once. */
  readonly log: WorkflowLogger;
  readonly info: WorkflowInfo;
  /** Registers the handler that answers `handle.query(def)` from this run's current state. */
  onQuery<T>(query: QueryDefinition<T>, handler: () => T): void;
}

/** The body of a workflow: an async generator function of steps. */
export type WorkflowFunction<I extends Schema, O extends Schema> = (
  input: z.output<I>,
  ctx: WorkflowContext,
) => AsyncGenerator<Step<unknown>, z.input<O>, unknown> | Generator<Step<unknown>, z.input<O>, unknown>;

/** Options of `defineWorkflow`. */
export interface WorkflowOptions<I extends Schema, O extends Schema> {
  /** Stable, explicit name: recorded in history and used to route tasks to workers. */
  name: string;
  input: I;
  output: O;
  /** A version string recorded when a run starts and shown by describe(). */
  version?: string;
  /** The run fails with TimeoutError if it has not finished this long after it started. */
  executionTimeout?: Duration;
  /** Signals this workflow accepts; when given, clients reject other signal names up front. */
  signals?: readonly SignalDefinition[];
}

/** A workflow definition: hand it to a Worker to run it, to a Client to start it. */
export interface WorkflowDefinition<I extends Schema = Schema, O extends Schema = Schema> {
  readonly kind: "workflow";
  readonly name: string;
  readonly inputSchema: I;
  readonly outputSchema: O;
  readonly version: string | undefined;
  readonly executionTimeout: Duration | undefined;
  readonly signals: readonly SignalDefinition[] | undefined;
  readonly fn: WorkflowFunction<I, O>;
}

/** The input type a client passes to start a workflow. */
export type WorkflowInput<W> = W extends WorkflowDefinition<infer I, Schema> ? z.input<I> : never;
/** The result type of a workflow. */
export type WorkflowOutput<W> = W extends WorkflowDefinition<Schema, infer O> ? z.output<O> : never;

/**
 * Defines a workflow.
 *
 * @example
 * ```ts
 * const order = defineWorkflow(
 *   { name: "order.process", input: z.object({ id: z.string() }), output: z.string() },
 *   async function* (input, ctx) {
 *     const { chargeId } = yield* charge({ orderId: input.id, amount: 42 });
 *     yield* sleep("10m");
 *     return chargeId;
 *   },
 * );
 * ```
 * @throws InvalidOptionsError for an invalid name, a missing schema or a body that is not a generator function.
 */
export function defineWorkflow<I extends Schema, O extends Schema>(
  options: WorkflowOptions<I, O>,
  fn: WorkflowFunction<I, O>,
): WorkflowDefinition<I, O> {
  const name = checkName("workflow", options.name);
  if (!options.input || !options.output) {
    throw new InvalidOptionsError(`workflow "${name}" needs both an input and an output zod schema`);
  }
  const tag = Object.prototype.toString.call(fn);
  if (tag !== "[object AsyncGeneratorFunction]" && tag !== "[object GeneratorFunction]") {
    throw new InvalidOptionsError(
      `workflow "${name}" body must be a generator function (\`async function* (input, ctx) { ... }\`), got ${typeof fn === "function" ? "a plain function" : typeof fn}`,
    );
  }
  return Object.freeze({
    kind: "workflow" as const,
    name,
    inputSchema: options.input,
    outputSchema: options.output,
    version: options.version,
    executionTimeout: options.executionTimeout,
    signals: options.signals,
    fn,
  });
}
