/**
 * Signal definitions: typed messages sent to a running workflow. The same value is used by the
 * workflow (`yield* approve.wait()`) and the client (`handle.signal(approve, payload)`).
 */
import type { z } from "zod";
import type { Duration } from "../duration.ts";
import { Step } from "../steps/step.ts";
import { checkName } from "./activity.ts";
import type { Schema } from "./schema.ts";

/** A step that waits for the next signal of one name; `undefined` if the timeout passes first. */
export class SignalWaitStep<T> extends Step<T> {
  readonly kind = "signal" as const;
  constructor(
    readonly signalName: string,
    readonly timeout: Duration | undefined,
    /** The payload schema of the definition waited on: a buffered payload it refuses is skipped. */
    readonly schema?: Schema,
  ) {
    super();
  }
  describe(): string {
    return `signal wait "${this.signalName}"`;
  }
}

/** A signal definition. */
export interface SignalDefinition<S extends Schema = Schema> {
  readonly kind: "signal";
  readonly name: string;
  readonly schema: S;
  /**
   * Waits for the next signal of this name. Signals that arrived earlier are buffered and
   * delivered one per wait, in arrival order.
   */
  wait(): SignalWaitStep<z.output<S>>;
  /** Waits at most `timeout` (workflow time); the result is `undefined` if it passes first. */
  wait(options: { timeout: Duration }): SignalWaitStep<z.output<S> | undefined>;
}

/**
 * Defines a signal.
 *
 * @example
 * ```ts
 * const approve = defineSignal("order.approve", z.object({ by: z.string() }));
 * const decision = yield* approve.wait({ timeout: "1d" }); // { by } | undefined
 * await handle.signal(approve, { by: "ann" });
 * ```
 */
export function defineSignal<S extends Schema>(name: string, schema: S): SignalDefinition<S> {
  const n = checkName("signal", name);
  return Object.freeze({
    kind: "signal" as const,
    name: n,
    schema,
    wait(options?: { timeout: Duration }) {
      return new SignalWaitStep(n, options?.timeout, schema);
    },
  }) as SignalDefinition<S>;
}
