/**
 * The options and counters of a test environment (`createTestEnv`): what a test passes in
 * and what it can read back. Kept apart from the environment so the types read on their own.
 */
import type { StartOptions } from "@spool/client";
import type { ActivityDefinition, WorkflowDefinition } from "@spool/core";
import type { Logger, WorkerOptions } from "@spool/worker";
import type { ActivityMock } from "./activity-harness.ts";

/** An activity definition of any schema types. */
// biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
export type AnyActivity = ActivityDefinition<any, any>;
/** A workflow definition of any schema types. */
// biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
export type AnyWorkflow = WorkflowDefinition<any, any>;

/** `[definition, mock]` pairs, each mock typed by its definition. */
export type MockEntries<T extends readonly AnyActivity[]> = {
  [K in keyof T]: readonly [T[K], ActivityMock<T[K]>];
};

/**
 * Options of `createTestEnv`.
 *
 * @example
 * ```ts
 * const env = await createTestEnv({
 *   workflows: [order],
 *   activities: [charge, ship],
 *   mocks: [[ship, async () => ({ trackingId: "t-1" })]],
 *   timeSkipping: "manual",
 *   stallTimeoutMs: 2000,
 * });
 * ```
 */
export interface TestEnvOptions<T extends readonly AnyActivity[] = AnyActivity[]> {
  /** Workflows the worker runs (children included). */
  workflows: readonly AnyWorkflow[];
  /** Activities the worker runs (their real functions, unless mocked). */
  activities?: readonly AnyActivity[];
  /** Mocks by definition: `[[charge, async (input, ctx) => ({ chargeId: "ch_1" })]]`. */
  mocks?: MockEntries<T>;
  /** Virtual time at the start (default 2024-01-01T00:00:00Z). */
  startTime?: number | Date | string;
  /**
   * `"auto"` (default): while the test awaits a result through the env (`run`, `result`,
   * `handle.result()` of `env.start`, `waitUntil`), time jumps to the next timer, retry or lease
   * expiry whenever every run is waiting. `"manual"`: only `advance()` moves time.
   */
  timeSkipping?: "auto" | "manual";
  /** Real milliseconds without any progress before a wait fails with the list of open runs (default 5,000). */
  stallTimeoutMs?: number;
  /** Worker logs (default: silent). */
  logger?: Logger;
  /** Compare activity inputs on replay too (default true in tests). */
  strictDeterminism?: boolean;
  /** More worker options (backend, definitions and the fault hook are the env's). */
  worker?: Partial<Omit<WorkerOptions, "backend" | "workflows" | "activities">>;
}

/** Options of `env.start` and `env.run`. */
export interface TestStartOptions extends StartOptions {}

/** Counters of what the environment did. */
export interface TestEnvStats {
  /** Times the clock jumped to the next wake-up. */
  timeSkips: number;
  /** Workers replaced after a simulated crash (or `restartWorker`). */
  workerRestarts: number;
}
