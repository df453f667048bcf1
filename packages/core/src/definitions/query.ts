/**
 * Query definitions: read-only questions about a run's current state, answered by a handler the
 * workflow registers with `ctx.onQuery`. Queries never write history.
 */
import type { z } from "zod";
import { checkName } from "./activity.ts";
import type { Schema } from "./schema.ts";

/** A query definition; `T` is the answer's type. */
export interface QueryDefinition<T = unknown> {
  readonly kind: "query";
  readonly name: string;
  /** Optional schema the answer is checked against. */
  readonly schema: Schema | undefined;
  /** Phantom member carrying the answer type. */
  readonly __answer?: T;
}

/**
 * Defines a query.
 *
 * @example
 * ```ts
 * const progress = defineQuery("order.progress", z.object({ stage: z.string() }));
 * // workflow: ctx.onQuery(progress, () => ({ stage }));
 * // client:   const { stage } = await handle.query(progress);
 * ```
 */
export function defineQuery<S extends Schema>(name: string, schema: S): QueryDefinition<z.output<S>>;
export function defineQuery<T = unknown>(name: string): QueryDefinition<T>;
export function defineQuery(name: string, schema?: Schema): QueryDefinition<unknown> {
  return Object.freeze({ kind: "query" as const, name: checkName("query", name), schema });
}
