/**
 * The error hierarchy, gathered: every error Spool raises is a {@link SpoolError}; each class has
 * a stable `name` (used to rehydrate it from history) and a static `is()` guard that also
 * recognises rehydrated copies, so `ActivityFailure.is(err)` works across processes and releases.
 * The classes live by family in `errors/`; this module re-exports them and owns
 * {@link errorClasses}, the name → class table history is rehydrated with.
 *
 * Messages say what was recorded, what happened now, and what to do about it.
 */
import {
  ConfigurationError,
  HistoryLimitError,
  InternalContractError,
  InvalidOptionsError,
  WorkflowCodeError,
} from "./errors/configuration-errors.ts";
import { PayloadTooLargeError, ValidationError } from "./errors/payload-errors.ts";
import {
  ActivityFailure,
  ActivityInterruptedError,
  CancelledError,
  ChildWorkflowFailure,
  ConflictError,
  NonDeterminismError,
  NonRetryableError,
  RunNotFoundError,
  SignalBufferFullError,
  TimeoutError,
  WorkflowAlreadyStartedError,
  WorkflowAwaitError,
  WorkflowFailedError,
} from "./errors/run-errors.ts";
import { SpoolError } from "./errors/spool-error.ts";
import {
  HistoryCorruptError,
  HistoryFileError,
  RowCorruptError,
  StorageFullError,
} from "./errors/storage-errors.ts";

export {
  ConfigurationError,
  HistoryLimitError,
  InternalContractError,
  InvalidOptionsError,
  WorkflowCodeError,
} from "./errors/configuration-errors.ts";
export { PayloadTooLargeError, ValidationError, type ValidationIssue } from "./errors/payload-errors.ts";
export {
  ActivityFailure,
  type ActivityFailureInfo,
  ActivityInterruptedError,
  CancelledError,
  ChildWorkflowFailure,
  ConflictError,
  NonDeterminismError,
  type NonDeterminismInfo,
  NonRetryableError,
  RunNotFoundError,
  SignalBufferFullError,
  TimeoutError,
  WorkflowAlreadyStartedError,
  WorkflowAwaitError,
  WorkflowFailedError,
} from "./errors/run-errors.ts";
export { SpoolError, type SpoolErrorOptions } from "./errors/spool-error.ts";
export {
  HistoryCorruptError,
  HistoryFileError,
  RowCorruptError,
  StorageFullError,
} from "./errors/storage-errors.ts";

/** Error classes that history can rehydrate by name, so `instanceof` works after a round-trip. */
export const errorClasses: Record<string, new (...args: never[]) => Error> = {
  SpoolError,
  NonRetryableError,
  ActivityFailure,
  NonDeterminismError,
  WorkflowAwaitError,
  WorkflowFailedError,
  CancelledError,
  ValidationError,
  PayloadTooLargeError,
  RunNotFoundError,
  WorkflowAlreadyStartedError,
  ConflictError,
  TimeoutError,
  ActivityInterruptedError,
  ChildWorkflowFailure,
  HistoryCorruptError,
  RowCorruptError,
  SignalBufferFullError,
  HistoryFileError,
  StorageFullError,
  ConfigurationError,
  InvalidOptionsError,
  WorkflowCodeError,
  HistoryLimitError,
  InternalContractError,
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};
