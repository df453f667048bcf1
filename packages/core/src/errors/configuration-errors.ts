/**
 * The configuration family: errors that mean "the code or its setup must change", never a
 * business outcome. {@link ConfigurationError} is the public base (catch it to catch them all);
 * each subclass says which kind of mistake it is, carries its own `code`, and is a code bug for
 * {@link classifyFailure}: thrown out of workflow code, it parks the run as `blocked`.
 */
import { guard, isErrorLike, SpoolError, type SpoolErrorOptions } from "./spool-error.ts";

/**
 * Every name of the family. `ConfigurationError.is()` matches them all, so an error of a subclass
 * from another copy of @spool/core (two installed versions), or one rehydrated under its own name
 * by an older release, is still recognised as a configuration error.
 */
const CONFIGURATION_ERROR_NAMES: ReadonlySet<string> = new Set([
  "ConfigurationError",
  "InvalidOptionsError",
  "WorkflowCodeError",
  "HistoryLimitError",
  "InternalContractError",
]);

/**
 * Base of the configuration family: a definition, option or call is invalid, workflow code uses
 * the vocabulary wrongly, a run reached the history limit, or a contract between Spool's parts was
 * broken. Thrown directly only for errors recorded before the family was split (and rehydrated
 * from history); new code throws one of {@link InvalidOptionsError}, {@link WorkflowCodeError},
 * {@link HistoryLimitError} or {@link InternalContractError}, all of which are ConfigurationErrors.
 *
 * @example
 * ```ts
 * try { new Worker({ backend, workflows: [] }); } catch (err) {
 *   if (ConfigurationError.is(err)) console.error(err.code, err.message);
 * }
 * ```
 */
export class ConfigurationError extends SpoolError {
  override name = "ConfigurationError";
  /**
   * A stable, machine-readable code for the kind of mistake; each subclass has its own. A getter,
   * so it is not recorded with the error (the class, restored from its name, gives it back).
   */
  get code(): string {
    return "SPOOL_CONFIGURATION";
  }
  /** True for a ConfigurationError of any subclass, including rehydrated or foreign copies. */
  static override is(err: unknown): err is ConfigurationError {
    return err instanceof ConfigurationError || (isErrorLike(err) && CONFIGURATION_ERROR_NAMES.has(err.name));
  }
}

/**
 * An option, definition or argument handed to Spool's API is invalid: a bad duration or retry
 * policy, a name that cannot be recorded, a definition without schemas, a signal the workflow does
 * not declare, a codec key of the wrong size, a Client or Worker without a backend. Thrown where the
 * value is passed (a constructor, `defineWorkflow`, `client.start`...), before anything is
 * written; inside workflow code (e.g. `sleep("soon")`) it parks the run like any code bug. Fix the
 * value the message names.
 *
 * @example
 * ```ts
 * expect(() => resolveRetryPolicy({ maxAttempts: -1 })).toThrow(InvalidOptionsError);
 * ```
 */
export class InvalidOptionsError extends ConfigurationError {
  override name = "InvalidOptionsError";
  override get code(): string {
    return "SPOOL_INVALID_OPTIONS";
  }
  static override is = guard(InvalidOptionsError, "InvalidOptionsError");
}

/**
 * Workflow code uses the workflow vocabulary wrongly: it yields something that is not a step (or
 * `yield` without the star), yields one step twice, calls `race([])`, passes a branch that is not a
 * step or generator, reuses a patch id, or gives `sideEffect()` an async function. Thrown while the
 * run executes, it parks the run as `blocked` with its history untouched: fix the workflow code the
 * message names and deploy it, and the run continues. A query the code has no handler for (no
 * `ctx.onQuery`) is one too, thrown to the caller of `handle.query()` only.
 *
 * @example
 * ```ts
 * const d = await handle.describe();
 * if (d.status === "blocked" && WorkflowCodeError.is(d.error)) console.error(d.error.message); // fix, deploy
 * ```
 */
export class WorkflowCodeError extends ConfigurationError {
  override name = "WorkflowCodeError";
  override get code(): string {
    return "SPOOL_WORKFLOW_CODE";
  }
  static override is = guard(WorkflowCodeError, "WorkflowCodeError");
}

/**
 * A run reached the history limit (`historyLimit`, 50,000 events by default) and was failed: its
 * history would otherwise grow until replay is too slow to make progress. Seen by clients as the
 * `cause` of a `WorkflowFailedError`. Call `yield* continueAsNew(state)` periodically so
 * each run keeps a short history.
 *
 * @example
 * ```ts
 * try { await handle.result(); } catch (err) {
 *   if (HistoryLimitError.is((err as Error).cause)) console.error("continue as new sooner");
 * }
 * ```
 */
export class HistoryLimitError extends ConfigurationError {
  override name = "HistoryLimitError";
  /** The run that reached the limit. */
  readonly runId: string;
  /** The limit, in history events. */
  readonly limit: number;
  constructor(info: { runId: string; limit: number }, options?: SpoolErrorOptions) {
    super(
      `run ${info.runId} reached the history limit of ${info.limit} events. Call ` +
        "`yield* continueAsNew(state)` periodically (e.g. when ctx.info.historyLength > 5,000) to start a " +
        "fresh run with the same workflow id.",
      options,
    );
    this.runId = info.runId;
    this.limit = info.limit;
  }
  override get code(): string {
    return "SPOOL_HISTORY_LIMIT";
  }
  static override is = guard(HistoryLimitError, "HistoryLimitError");
}

/**
 * A contract between Spool's own parts was broken: a worker handed a backend a malformed commit,
 * or the engine was driven out of order (`apply()` before `replayHistory()`, an executor reused
 * after it failed). It is a bug in Spool, or in code that drives the engine or a backend directly,
 * not in the workflow; the message ends by saying so. A run that meets it is parked, never failed.
 * Report it with the message and stack.
 */
export class InternalContractError extends ConfigurationError {
  override name = "InternalContractError";
  constructor(message: string, options?: SpoolErrorOptions) {
    super(
      `${message}. This breaks a contract between Spool's parts (a bug in Spool, or in code that drives ` +
        "the engine or a backend directly), not a mistake in your workflow; please report it with this message.",
      options,
    );
  }
  override get code(): string {
    return "SPOOL_INTERNAL_CONTRACT";
  }
  static override is = guard(InternalContractError, "InternalContractError");
}
