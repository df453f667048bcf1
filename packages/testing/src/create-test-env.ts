/**
 * `createTestEnv`, the entry point of the test environment: builds a {@link TestEnv}, starts its
 * first worker, and closes what it opened if that fails.
 */

import { TestEnv } from "./test-env.ts";
import type { AnyActivity, TestEnvOptions } from "./test-env-options.ts";

/**
 * Creates a test environment: a real Worker and Client on a real in-memory SqliteBackend with a
 * virtual clock, activity mocks and fault injection. Close it after the test.
 *
 * @throws InvalidOptionsError for invalid options (no workflows, a bad start time...).
 * @example
 * ```ts
 * import { createTestEnv } from "@spool/testing";
 *
 * const env = await createTestEnv({
 *   workflows: [order],
 *   activities: [charge, reserve, notify],
 *   mocks: [[charge, async ({ orderId }) => ({ chargeId: `test-${orderId}` })]],
 * });
 * const handle = await env.start(order, { id: "o-1", total: 42 });
 * await handle.signal(approve, { by: "ann" });
 * console.log(await handle.result()); // a 10-minute sleep inside takes no real time
 * await env.close();
 * ```
 */
export async function createTestEnv<const T extends readonly AnyActivity[] = []>(
  options: TestEnvOptions<T>,
): Promise<TestEnv> {
  const env = new TestEnv(options as unknown as TestEnvOptions<readonly AnyActivity[]>);
  try {
    await env.boot();
  } catch (err) {
    await env.close().catch(() => undefined);
    throw err;
  }
  return env;
}
