// Guards against backends that diverge from the Backend contract: lost or duplicated events, double claims, stale writers winning, wrong queue semantics.
/**
 * The backend conformance suite: one set of tests of the {@link Backend} contract that every
 * backend runs (SQLite and PostgreSQL). A backend's test file is setup, teardown and one call to
 * {@link describeBackend}.
 *
 * This file is the suite's table of contents: the harness (`harness.ts`) opens a fresh store for
 * each test and holds the shared helpers; each part of the contract lives in its own file and is
 * registered here, in the order the suite has always run.
 */
import type { Backend, ClaimedActivityTask, ClaimedWorkflowTask } from "@spool/core";
import { describe } from "vitest";
import { commitActivationTests } from "./activation-commits.ts";
import { activityTaskTests } from "./activity-tasks.ts";
import { requestCancelTests } from "./cancellation.ts";
import { childRunTests } from "./child-runs.ts";
import { closingRunTests } from "./closing-runs.ts";
import { conformanceHarness, type MakeBackend } from "./harness.ts";
import { inspectTests } from "./inspect.ts";
import { notificationTests } from "./notifications.ts";
import { signalCapTests, signalRequestIdTests, signalTests, unseenInboxTests } from "./signals.ts";
import { inputFingerprintTests, startWorkflowTests } from "./starting-runs.ts";
import { timerTests } from "./timers.ts";
import { workerRegistryTests } from "./worker-registry.ts";
import { blockedRunTests, workflowTaskLeaseTests } from "./workflow-tasks.ts";

export type { BackendHarness, BackendHarnessOptions, TestClock } from "./harness.ts";

/**
 * Registers the conformance suite for one backend. `makeBackend` is called before every test and
 * must return an empty store whose clock only moves when `clock.advance` is called.
 *
 * @example
 * ```ts
 * describeBackend("SqliteBackend :memory:", async () => {
 *   let t = 1_700_000_000_000;
 *   const backend = new SqliteBackend({ path: ":memory:", clock: () => t });
 *   return { backend, clock: { advance: (ms) => { t += ms; } }, teardown: () => backend.close() };
 * });
 * ```
 */
export function describeBackend(name: string, makeBackend: MakeBackend): void {
  describe(`Backend conformance: ${name}`, () => {
    const harness = conformanceHarness(makeBackend);
    // starting runs and signals
    startWorkflowTests(harness);
    signalTests(harness);
    signalRequestIdTests(harness);
    inputFingerprintTests(harness);
    signalCapTests(harness);
    unseenInboxTests(harness);
    // cancellation requests
    requestCancelTests(harness);
    // workflow task claims, leases and fencing
    workflowTaskLeaseTests(harness);
    // activation commits
    commitActivationTests(harness);
    // activity tasks
    activityTaskTests(harness);
    // timers
    timerTests(harness);
    // child runs
    childRunTests(harness);
    // closing and continuing
    closingRunTests(harness);
    // blocked runs
    blockedRunTests(harness);
    // inspection
    workerRegistryTests(harness);
    inspectTests(harness);
    // notifications
    notificationTests(harness);
  });
}

/** Re-exported for backend test files that build their own fixtures. */
export type { Backend, ClaimedActivityTask, ClaimedWorkflowTask };
