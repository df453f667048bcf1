/**
 * One classifier for "what does this error mean for the run?", used by the engine (an error that
 * escapes workflow code) and by the worker (an error that escapes the engine). Before, each had
 * its own list, and the two had drifted apart.
 */
import {
  ConfigurationError,
  HistoryCorruptError,
  NonDeterminismError,
  ValidationError,
  WorkflowAwaitError,
} from "./errors.ts";

/**
 * - `divergence`: the code cannot replay its history (NonDeterminismError, WorkflowAwaitError).
 * - `code-bug`: the code is broken, not the business outcome (TypeError, ReferenceError,
 *   SyntaxError, and the whole ConfigurationError family: InvalidOptionsError, WorkflowCodeError,
 *   HistoryLimitError, InternalContractError).
 * - `stored-data`: what is stored cannot be read (HistoryCorruptError).
 * - `invalid-payload`: a payload failed its schema (ValidationError).
 * - `outcome`: anything else — the workflow's own result, failure or cancellation.
 */
export type FailureClass = "divergence" | "code-bug" | "stored-data" | "invalid-payload" | "outcome";

/** Classifies an error by what it means for a run. */
export function classifyFailure(err: unknown): FailureClass {
  if (NonDeterminismError.is(err) || WorkflowAwaitError.is(err)) return "divergence";
  if (
    err instanceof TypeError ||
    err instanceof ReferenceError ||
    err instanceof SyntaxError ||
    // Matches every subclass too, also by name: one from another copy of @spool/core (two
    // installed versions) or rehydrated from history is a code bug as well.
    ConfigurationError.is(err)
  ) {
    return "code-bug";
  }
  if (HistoryCorruptError.is(err)) return "stored-data";
  if (ValidationError.is(err)) return "invalid-payload";
  return "outcome";
}

/**
 * True when an error thrown out of workflow code (uncaught by it) means the code must be fixed:
 * the run is parked as `blocked` instead of failed. A ValidationError there is the workflow's own
 * failure (e.g. it passed a bad input to an activity and did not catch the error).
 */
export function parksWhenThrownByCode(err: unknown): boolean {
  const c = classifyFailure(err);
  return c === "divergence" || c === "code-bug";
}

/**
 * True when an error thrown out of the engine (while replaying or applying an activation) means
 * the run cannot proceed with the code deployed now: it is parked as `blocked`, its history
 * untouched. Only an error the engine does not know is left to the caller.
 */
export function parksWhenThrownByEngine(err: unknown): boolean {
  return classifyFailure(err) !== "outcome";
}
