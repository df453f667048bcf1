/**
 * Errors about payloads: a value that failed its schema or cannot be stored, and one over the
 * size limit. Raised before anything is written.
 */
import { guard, SpoolError, type SpoolErrorOptions } from "./spool-error.ts";

/** One problem found by validation: where, and what is wrong. */
export interface ValidationIssue {
  path: (string | number)[];
  message: string;
}

/**
 * A payload failed its schema (or could not be stored). Raised before anything is written.
 * `issues` lists each failing field.
 */
export class ValidationError extends SpoolError {
  override name = "ValidationError";
  readonly issues: ValidationIssue[];
  constructor(message: string, issues: ValidationIssue[] = [], options?: SpoolErrorOptions) {
    super(message, options);
    this.issues = issues;
  }
  static override is = guard(ValidationError, "ValidationError");
}

/** A payload is larger than the configured limit. Nothing was written. */
export class PayloadTooLargeError extends ValidationError {
  override name = "PayloadTooLargeError";
  readonly size: number;
  readonly limit: number;
  constructor(what: string, size: number, limit: number) {
    super(
      `${what} is ${size} bytes encoded, over the ${limit}-byte payload limit. Store large data elsewhere ` +
        "(a blob store) and pass a reference, or raise `maxPayloadBytes` on the backend.",
    );
    this.size = size;
    this.limit = limit;
  }
  static override is = guard(PayloadTooLargeError, "PayloadTooLargeError");
}
