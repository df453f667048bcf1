/**
 * spool — durable functions for TypeScript. The one import for users: definitions, steps, errors,
 * the Worker, the Client and the embedded SQLite backend.
 *
 * @example
 * ```ts
 * import { defineActivity, defineWorkflow, Worker, Client, SqliteBackend } from "spool";
 * ```
 */

export {
  Client,
  type ClientOptions,
  type PendingActivityDescription,
  type RunDescription,
  type StartOptions,
  WorkflowHandle,
} from "@spool/client";
export {
  type ActivityCallOptions,
  type ActivityContext,
  type ActivityDefinition,
  ActivityFailure,
  type ActivityInfo,
  ActivityInterruptedError,
  aesGcmCodec,
  all,
  type Backend,
  type BackendInspector,
  type Branch,
  CancelledError,
  ChildWorkflowFailure,
  ConfigurationError,
  ConflictError,
  child,
  continueAsNew,
  type Duration,
  defineActivity,
  defineQuery,
  defineSignal,
  defineWorkflow,
  deprecatePatch,
  HistoryCorruptError,
  type HistoryEvent,
  NonDeterminismError,
  NonRetryableError,
  type PayloadCodec,
  PayloadTooLargeError,
  patched,
  type QueryDefinition,
  type RetryPolicy,
  type RunFilter,
  RunNotFoundError,
  type RunStatus,
  race,
  type Saga,
  type SagaOptions,
  type SignalDefinition,
  SpoolError,
  type Step,
  StorageFullError,
  saga,
  sideEffect,
  sleep,
  sleepUntil,
  TimeoutError,
  ValidationError,
  WorkflowAlreadyStartedError,
  WorkflowAwaitError,
  type WorkflowContext,
  type WorkflowDefinition,
  WorkflowFailedError,
  type WorkflowInput,
  type WorkflowOutput,
} from "@spool/core";
export { SqliteBackend, type SqliteBackendOptions } from "@spool/sqlite";
export { consoleLogger, type Logger, silentLogger, Worker, type WorkerOptions } from "@spool/worker";
