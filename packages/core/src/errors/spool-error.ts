/**
 * The root of the error hierarchy: {@link SpoolError}, the options every Spool error takes, and
 * the helpers each family uses to build its static `is()` guard. A guard matches by class or by
 * recorded name, so it also recognises copies rehydrated from history in another process.
 */

const BRAND = Symbol.for("spool.error.name");

/** Options accepted by every Spool error constructor. */
export interface SpoolErrorOptions {
  /** The underlying error, kept as `error.cause`. */
  cause?: unknown;
}

/**
 * Base class of every error Spool raises. Use `SpoolError.is(err)` to tell Spool's errors from
 * others, including errors rehydrated from history in another process.
 */
export class SpoolError extends Error {
  override name = "SpoolError";

  constructor(message: string, options?: SpoolErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }

  /** True when `err` is a SpoolError, or a rehydrated copy of one. */
  static is(err: unknown): err is SpoolError {
    return err instanceof SpoolError || (isErrorLike(err) && (err as { [BRAND]?: boolean })[BRAND] === true);
  }
}

/** True for anything shaped like an error (an object with a string `message`), from any realm or copy. */
export function isErrorLike(err: unknown): err is Error {
  return typeof err === "object" && err !== null && typeof (err as Error).message === "string";
}

/** Builds the static `is()` guard for a subclass: matches by class or by recorded name. */
export function guard<T extends Error>(cls: abstract new (...args: never[]) => T, name: string) {
  return (err: unknown): err is T => err instanceof cls || (isErrorLike(err) && err.name === name);
}
