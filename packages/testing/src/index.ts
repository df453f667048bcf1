/**
 * @spool/testing — prove workflows correct before they run in production: a test environment on
 * a real Worker, Client and in-memory SQLite with virtual time, activity mocks and fault
 * injection (`createTestEnv`); property tests of determinism (`checkDeterminism`) and of safe
 * upgrades (`checkUpgrade`); and replay of recorded histories (`replayHistory`, history files).
 */

export {
  exportHistory,
  type HistoryFile,
  type HistoryFileEvent,
  type HistoryFileMeta,
  type ParsedHistory,
  parseHistoryFile,
} from "@spool/core";
export type {
  ActivityMock,
  CrashAfterActivityOptions,
  FailActivityOptions,
  LedgerEntry,
  LedgerOutcome,
} from "./activity-harness.ts";
export { type CheckDeterminismOptions, checkDeterminism } from "./check-determinism.ts";
export { type CheckUpgradeOptions, checkUpgrade } from "./check-upgrade.ts";
export { createTestEnv } from "./create-test-env.ts";
export type { DeterminismFailure, DeterminismReport, LocatedDivergence } from "./determinism-report.ts";
export { DeterminismCheckError, HistoryFileError, TestEnvError, UpgradeCheckError } from "./errors.ts";
export type { TrapHit } from "./nondeterminism-traps.ts";
export type { Divergence } from "./replay-checks.ts";
export {
  assertReplays,
  type HistorySource,
  type ReplayFailure,
  type ReplayHistoryOptions,
  type ReplayOutcome,
  type ReplaySuccess,
  replayHistory,
} from "./replay-history.ts";
export { TestEnv } from "./test-env.ts";
export type { MockEntries, TestEnvOptions, TestEnvStats, TestStartOptions } from "./test-env-options.ts";
export type { UpgradeChangeKind, UpgradeFinding, UpgradeReport } from "./upgrade-report.ts";
export type { ActivityEnd, ActivityScript, ChildScript, SignalArrival, World } from "./world.ts";
export type { WorldOptions } from "./world-options.ts";
export type { Exercised, ScriptLine, SimulationOutcome } from "./world-simulator.ts";
export { type SchemaArbitraries, zodArbitrary } from "./zod-arbitrary.ts";
