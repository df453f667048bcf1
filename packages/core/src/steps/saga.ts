/**
 * Sagas: register a compensation after each step that changed the world; if the body fails or
 * the run is cancelled, the compensations run in reverse order (each a durable step), then the
 * original error is rethrown. The guide's order example: reserve stock → compensation "release
 * stock"; charge → "refund"; a failed shipment then refunds and releases, in that order.
 */
import type { Branch } from "./concurrency.ts";
import type { Step } from "./step.ts";

/** The compensation registry handed to a saga body. */
export interface Saga {
  /** Registers a compensation: a function returning a step or a generator of steps. */
  compensate(compensation: () => Branch<unknown>): void;
  /** Registered compensations not yet run. */
  readonly pending: number;
}

/** Options of `saga`. */
export interface SagaOptions {
  /** Keep compensating after a compensation fails (default true); failures are attached to the error. */
  continueOnCompensationFailure?: boolean;
}

/**
 * Runs `body` as a saga. Use with `yield*`.
 *
 * @example
 * ```ts
 * const receipt = yield* saga(async function* (s) {
 *   const { reservationId } = yield* reserve({ orderId });
 *   s.compensate(() => release({ reservationId }));
 *   const { chargeId } = yield* charge({ orderId, amount });
 *   s.compensate(() => refund({ chargeId }));
 *   return yield* ship({ orderId });
 * });
 * ```
 * @throws the body's error after compensating; compensation failures are listed on it as
 * `compensationFailures`.
 */
export async function* saga<T>(
  body: (s: Saga) => AsyncGenerator<Step<unknown>, T, unknown> | Generator<Step<unknown>, T, unknown>,
  options: SagaOptions = {},
): AsyncGenerator<Step<unknown>, T, unknown> {
  const compensations: (() => Branch<unknown>)[] = [];
  const registry: Saga = {
    compensate(c) {
      compensations.push(c);
    },
    get pending() {
      return compensations.length;
    },
  };
  try {
    return yield* body(registry);
  } catch (err) {
    const failures: unknown[] = [];
    while (compensations.length > 0) {
      const c = compensations.pop() as () => Branch<unknown>;
      try {
        yield* c() as AsyncIterable<Step<unknown>>;
      } catch (e) {
        failures.push(e);
        if (options.continueOnCompensationFailure === false) break;
      }
    }
    if (failures.length > 0 && err !== null && typeof err === "object") {
      Object.defineProperty(err, "compensationFailures", {
        value: failures,
        enumerable: true,
        configurable: true,
      });
    }
    throw err;
  }
}
