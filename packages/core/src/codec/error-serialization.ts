/**
 * Errors to plain data and back. Owns how a thrown value is recorded in history (name, message,
 * stack, cause chain, custom fields) and how it is rehydrated, so that `instanceof`, the static
 * `is()` guards and `err.name` checks keep working in another process.
 */

import { errorClasses, SpoolError } from "../errors.ts";

/**
 * The recorded form of a thrown value. Plain data apart from `cause` and `details` values, which
 * are kept as they were (the payload codec stores them).
 */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** The serialized cause when it was an error, else the cause value itself. */
  cause?: SerializedError | unknown;
  /** Own enumerable fields other than name/message/stack/cause, e.g. `code`, `step`, `issues`. */
  details?: Record<string, unknown>;
}

/** Causes deeper than this are cut, which also ends cyclic cause chains. */
const MAX_CAUSE_DEPTH = 8;

const RESERVED = new Set(["name", "message", "stack", "cause"]);

/** True for Error instances, including ones from another realm (vm context, iframe). */
function isError(x: unknown): x is Error {
  return x instanceof Error || Object.prototype.toString.call(x) === "[object Error]";
}

/**
 * Converts a thrown value to a {@link SerializedError}.
 *
 * Errors keep name, message, stack, their cause chain (errors serialized recursively, other
 * values kept) and every own enumerable field in `details`; an `AggregateError`'s `errors` are kept
 * too. Anything else that was thrown (a string, a plain object) becomes
 * `{ name: "Error", message, details: { thrown } }`. Never throws; cause chains deeper than 8 or
 * cyclic are cut with a note in place of the next cause.
 *
 * @example
 * ```ts
 * const s = serializeError(Object.assign(new Error("declined"), { code: "card_declined" }));
 * // { name: "Error", message: "declined", stack: "...", details: { code: "card_declined" } }
 * ```
 */
export function serializeError(err: unknown): SerializedError {
  return serializeAt(err, 0, []);
}

function serializeAt(err: unknown, depth: number, seen: unknown[]): SerializedError {
  if (!isError(err)) {
    return { name: "Error", message: describeThrown(err), details: { thrown: err } };
  }
  seen.push(err);
  const out: SerializedError = {
    name: safeString(readField(err, "name"), "Error"),
    message: safeString(readField(err, "message"), ""),
  };
  const stack = readField(err, "stack");
  if (typeof stack === "string") out.stack = stack;

  if (Object.hasOwn(err, "cause")) {
    const cause = readField(err, "cause");
    if (!isError(cause)) out.cause = cause;
    else if (seen.includes(cause)) out.cause = truncated("the cause chain is cyclic");
    else if (depth + 1 >= MAX_CAUSE_DEPTH)
      out.cause = truncated(`the cause chain is deeper than ${MAX_CAUSE_DEPTH}`);
    else out.cause = serializeAt(cause, depth + 1, seen);
  }

  let details: Record<string, unknown> | undefined;
  for (const key of Object.keys(err)) {
    if (RESERVED.has(key)) continue;
    details ??= {};
    defineValue(details, key, readField(err, key));
  }
  // `errors` is an own but non-enumerable property of AggregateError.
  if (err instanceof AggregateError && !(details && Object.hasOwn(details, "errors"))) {
    details ??= {};
    details.errors = err.errors;
  }
  if (details !== undefined) out.details = details;
  return out;
}

function truncated(why: string): SerializedError {
  return { name: "Error", message: `[cause omitted: ${why}]` };
}

/** Reads a property without letting a throwing getter escape. */
function readField(obj: object, key: string): unknown {
  try {
    return (obj as Record<string, unknown>)[key];
  } catch (e) {
    return `[getter threw: ${e instanceof Error ? e.message : String(e)}]`;
  }
}

function safeString(v: unknown, fallback: string): string {
  if (typeof v === "string") return v;
  if (v === undefined) return fallback;
  try {
    return String(v);
  } catch {
    return fallback;
  }
}

function describeThrown(x: unknown): string {
  if (typeof x === "string") return x;
  if (typeof x === "object" && x !== null) {
    const message = (x as { message?: unknown }).message;
    if (typeof message === "string") return message;
    try {
      const json = JSON.stringify(x);
      if (json !== undefined) return json;
    } catch {
      // Cyclic or holds a BigInt; fall through to the generic tag.
    }
    return Object.prototype.toString.call(x);
  }
  try {
    return String(x);
  } catch {
    return typeof x;
  }
}

/** Defines an own data property, safe for keys such as `__proto__` and for getter-only prototypes. */
function defineValue(target: object, key: string, value: unknown, enumerable = true): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable, configurable: true });
}

/**
 * Rebuilds an error from its {@link SerializedError}.
 *
 * The class is looked up by `name` in `classes` (by default Spool's error classes and the built-in
 * JavaScript ones), else it is a plain `Error` that keeps the recorded `name`, so
 * `err.name === "CardDeclinedError"` still works. The instance is created without calling the
 * constructor, so its prototype chain is right (`instanceof`, `ActivityFailure.is()`,
 * `SpoolError.is()`) whatever the constructor's signature. `details` become own fields again; the
 * cause is rebuilt recursively when it was an error.
 *
 * @param classes - name → class map; pass your own (spread over `errorClasses`) to rehydrate your
 *   error classes too.
 *
 * @example
 * ```ts
 * const err = deserializeError(serializeError(new NonRetryableError("over limit")));
 * err instanceof NonRetryableError; // true
 * ```
 */
export function deserializeError(
  s: SerializedError,
  classes: Record<string, new (...args: never[]) => Error> = errorClasses,
): Error {
  const cls = Object.hasOwn(classes, s.name) ? (classes[s.name] as new (...args: never[]) => Error) : Error;
  const err = Object.create(cls.prototype) as Error;
  const proto = cls.prototype as Error;
  if (s.name !== proto.name) {
    // Spool's classes declare `name` as an own enumerable field; match what their constructor makes.
    defineValue(err, "name", s.name, proto instanceof SpoolError || cls === SpoolError);
  }
  defineValue(err, "message", s.message, false);
  if (s.stack !== undefined) defineValue(err, "stack", s.stack, false);
  if (Object.hasOwn(s, "cause")) {
    defineValue(
      err,
      "cause",
      isSerializedError(s.cause) ? deserializeError(s.cause, classes) : s.cause,
      false,
    );
  }
  if (s.details !== undefined) {
    for (const key of Object.keys(s.details)) defineValue(err, key, s.details[key]);
  }
  return err;
}

/** True when `x` has the shape of a {@link SerializedError}. */
export function isSerializedError(x: unknown): x is SerializedError {
  return (
    typeof x === "object" &&
    x !== null &&
    !isError(x) &&
    typeof (x as SerializedError).name === "string" &&
    typeof (x as SerializedError).message === "string"
  );
}

/** How many ever smaller forms {@link shrinkSerializedError} has. */
export const ERROR_SHRINK_LEVELS = 3;

/** Longest message kept at shrink level 2 and 3. */
const SHRUNK_MESSAGE_CHARS = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 1000, 200] as const;

/**
 * A smaller form of a recorded error, for when the whole of it does not fit under
 * `maxPayloadBytes`. An error must always be recordable: a run that cannot store why its step
 * failed can neither fail that step nor be parked, so it would be stuck for good.
 *
 * - level 1: every stack in the cause chain is dropped (names, messages, details and causes kept);
 * - level 2: also details other than short primitives (string ≤ 200 chars, number, boolean) are
 *   dropped, messages are cut to 1,000 characters and the cause chain to one level;
 * - level 3: only name and the first 200 characters of the message are left.
 *
 * A message that was cut ends with a note saying so.
 */
export function shrinkSerializedError(s: SerializedError, level: number): SerializedError {
  return shrinkAt(s, Math.min(Math.max(level, 1), ERROR_SHRINK_LEVELS), 0);
}

function shrinkAt(s: SerializedError, level: number, depth: number): SerializedError {
  const max = SHRUNK_MESSAGE_CHARS[level] ?? 200;
  const message =
    s.message.length > max
      ? `${s.message.slice(0, max)}… [cut from ${s.message.length} characters to fit maxPayloadBytes]`
      : s.message;
  const out: SerializedError = { name: s.name, message };
  if (level >= 3) return out;
  if (Object.hasOwn(s, "cause")) {
    if (!isSerializedError(s.cause)) {
      if (level === 1) out.cause = s.cause;
    } else if (level === 1 || depth === 0) {
      out.cause = shrinkAt(s.cause, level, depth + 1);
    } else {
      out.cause = truncated("cut to fit maxPayloadBytes");
    }
  }
  if (s.details !== undefined) {
    if (level === 1) out.details = s.details;
    else {
      const kept: Record<string, unknown> = {};
      let any = false;
      for (const key of Object.keys(s.details)) {
        const v = s.details[key];
        if ((typeof v === "string" && v.length <= 200) || typeof v === "number" || typeof v === "boolean") {
          defineValue(kept, key, v);
          any = true;
        }
      }
      if (any) out.details = kept;
    }
  }
  return out;
}
