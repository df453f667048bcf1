/**
 * Schema checks at the edges: every payload that enters history is parsed by its zod schema
 * first, and a failure becomes a ValidationError that names each failing field.
 */
import type { z } from "zod";
import { ValidationError } from "../errors.ts";

/** Any zod schema. */
export type Schema = z.ZodType;

/**
 * Parses `value` with `schema`, returning the parsed (possibly transformed) value.
 *
 * @throws ValidationError naming `what` and each failing field.
 */
export function parseWith<S extends Schema>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data as z.output<S>;
  const issues = r.error.issues.map((i) => ({
    path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
    message: i.message,
  }));
  const listed = issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
  return fail(new ValidationError(`${what} failed its schema: ${listed}`, issues));
}

function fail(err: Error): never {
  throw err;
}
