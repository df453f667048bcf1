/**
 * Named statements with named parameters, and the SQL fragments every statement shares. A
 * statement declares the names of its `$n` parameters in order; a call site binds it with an
 * object naming every value (`s.blockRun.with({ runId, fence, ... })`, checked by the compiler:
 * a missing, extra or misspelt name does not compile) and `with` lays the values out in `$n`
 * order, so no call site counts positions and the SQL text stays exactly as tuned.
 */
import { crc32 } from "node:zlib";

/** The arguments of a statement: one value per declared parameter name. */
export type Args<P extends string> = { readonly [K in P]: unknown };

/** A statement with its values, ready for the driver. */
export interface BoundStatement {
  /** The prepared statement's name. */
  readonly name: string;
  readonly text: string;
  /** The values in `$n` order. */
  readonly values: unknown[];
}

/**
 * A named statement: `name` lets the driver prepare it once per connection; `params` names its
 * parameters in `$n` order (`params[0]` is `$1`).
 */
export interface Statement<P extends string = string> {
  readonly name: string;
  readonly text: string;
  readonly params: readonly P[];
  /** This statement with `args` laid out in `$n` order. */
  with(args: Args<P>): BoundStatement;
}

/** The driver's `values` for `args`, in the order of `params`. */
function bindValues(params: readonly string[], args: Readonly<Record<string, unknown>>): unknown[] {
  const values = new Array<unknown>(params.length);
  for (let i = 0; i < params.length; i++) values[i] = args[params[i]!];
  return values;
}

/**
 * A factory of statements for one schema: names are prefixed with a hash of the schema (two
 * backends on different schemas can share a pool). Checks, once per schema, that the text uses
 * exactly `$1..$n` for the n declared names, so a parameter added to the SQL but not to the list
 * (or the reverse) fails at construction instead of binding the wrong value.
 */
export function statementFactory(schema: string) {
  const prefix = `spool_${(crc32(schema) >>> 0).toString(36)}_`;
  return <const P extends readonly string[]>(name: string, text: string, params: P): Statement<P[number]> => {
    let highest = 0;
    for (const m of text.matchAll(/\$(\d+)/g)) highest = Math.max(highest, Number(m[1]));
    if (highest !== params.length) {
      throw new Error(
        `statement ${name}: the SQL uses $1..$${highest} but ${params.length} names are declared`,
      );
    }
    const full = prefix + name;
    return {
      name: full,
      text,
      params,
      with: (args) => ({ name: full, text, values: bindValues(params, args) }),
    };
  };
}

/** The statement factory's type (one per schema). */
export type StatementFactory = ReturnType<typeof statementFactory>;

/** Statuses of an open run, as a SQL list. Kept in one place so every query agrees. */
export const OPEN = "('running', 'blocked')";

/** The database clock in milliseconds since the epoch (stable within one statement). */
export const DB_NOW_MS = "(floor(extract(epoch from statement_timestamp()) * 1000))::bigint";

/** "Now" in a single statement: the database clock plus the test-only offset in `$1`. */
export const NOW = `(${DB_NOW_MS} + $1::bigint)`;

/**
 * The lease of an activity attempt in SQL over `heartbeat_timeout_ms` and `timeout_ms`: the
 * heartbeat timeout when set, else the attempt timeout, else the default; plus a grace of half of
 * it (100 ms to 1 s), exactly as `attemptLeaseMs` in @spool/core computes it. The grace lets the
 * worker that owns the attempt report its own timeout before another worker may take it over.
 */
export function attemptLeaseSql(defaultParam: string): string {
  const base = `(CASE WHEN heartbeat_timeout_ms > 0 THEN heartbeat_timeout_ms WHEN timeout_ms > 0 THEN timeout_ms ELSE ${defaultParam} END)`;
  return `(${base} + LEAST(1000, GREATEST(100, ${base} / 2)))`;
}

/** Quotes an identifier for SQL (`"name"`, embedded quotes doubled). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Columns of `runs` in the order `RunRow` names them. */
export const RUN_COLUMNS = `run_id, workflow_id, workflow_name, status, version, created_at, updated_at, closed_at,
  last_seq, parent_run_id, parent_workflow_id, parent_step, continued_from, continued_to, result, error,
  blocked_reason, input_hash, crc`;

/**
 * Wakes a locked-or-locking task row: claimable now unless leased (the holder sees the inbox
 * when it commits) or blocked (new input cannot fix code that fails to replay; retryAt or
 * retryBlockedRuns wakes it). Written as an UPDATE of the row even when nothing changes, so the
 * delivery takes the run's lock first.
 */
export const wakeSet = (now: string) =>
  `visible_at = CASE WHEN t.lease_owner IS NULL AND NOT t.blocked
                        THEN LEAST(COALESCE(t.visible_at, ${now}), ${now}) ELSE t.visible_at END`;
