/**
 * The fast check of stored events: each event type's zod schema compiled once into a plain
 * predicate that accepts exactly what the schema accepts, without building zod's copy of the
 * event or its issue list. Parsing every event with the union cost more than decoding its
 * msgpack. Kinds of schema not handled here are delegated to zod itself, so a schema change can
 * make this slower, never laxer. On a failed check the caller asks zod for the reason.
 */
import { historyEventSchema } from "./events.ts";

/** The parts of a zod schema's internals read here (`schema._zod`, public for library authors). */
interface SchemaInternals {
  _zod: {
    def: {
      type: string;
      checks?: readonly { _zod: { def: CheckDef } }[];
      coerce?: boolean;
      shape?: Record<string, SchemaInternals>;
      catchall?: unknown;
      innerType?: SchemaInternals;
      element?: SchemaInternals;
      values?: readonly unknown[];
      entries?: Record<string, unknown>;
    };
    optin?: string;
    optout?: string;
  };
  safeParse(v: unknown): { success: boolean };
}

interface CheckDef {
  check: string;
  format?: string;
  value?: unknown;
  inclusive?: boolean;
  when?: unknown;
}

type Check = (v: unknown) => boolean;

const isAnything: Check = () => true;

function compileCheck(schema: SchemaInternals): Check {
  const def = schema._zod.def;
  const delegate: Check = (v) => schema.safeParse(v).success;
  const checks = def.checks ?? [];
  if (def.coerce === true) return delegate;
  switch (def.type) {
    case "unknown":
    case "any":
      return checks.length === 0 ? isAnything : delegate;
    case "string":
      return checks.length === 0 ? (v) => typeof v === "string" : delegate;
    case "number":
      return compileNumber(checks.map((c) => c._zod.def)) ?? delegate;
    case "literal":
    case "enum": {
      if (checks.length > 0) return delegate;
      const values = new Set(def.type === "literal" ? def.values : Object.values(def.entries ?? {}));
      // A numeric enum's entries also map names back to numbers; leave such enums to zod.
      for (const x of values) if (typeof x !== "string") return delegate;
      return (v) => values.has(v);
    }
    case "optional": {
      if (checks.length > 0 || def.innerType === undefined) return delegate;
      const inner = compileCheck(def.innerType);
      return (v) => v === undefined || inner(v);
    }
    case "array": {
      if (checks.length > 0 || def.element === undefined) return delegate;
      const element = compileCheck(def.element);
      return (v) => {
        if (!Array.isArray(v)) return false;
        for (let i = 0; i < v.length; i++) if (!element(v[i])) return false;
        return true;
      };
    }
    case "object":
      return compileObject(def.shape, def.catchall, checks.length) ?? delegate;
    default:
      return delegate;
  }
}

function compileNumber(checks: CheckDef[]): Check | null {
  let int = false;
  let floor = Number.NEGATIVE_INFINITY;
  let floorInclusive = true;
  for (const c of checks) {
    if (c.when !== undefined) return null;
    if (c.check === "number_format" && c.format === "safeint") int = true;
    else if (c.check === "greater_than" && typeof c.value === "number" && c.value >= floor) {
      floor = c.value;
      floorInclusive = c.inclusive === true;
    } else return null;
  }
  // zod's number rejects NaN and ±Infinity; safeint means Number.isSafeInteger.
  return (v) =>
    typeof v === "number" &&
    Number.isFinite(v) &&
    (!int || Number.isSafeInteger(v)) &&
    (floorInclusive ? v >= floor : v > floor);
}

function compileObject(
  shape: Record<string, SchemaInternals> | undefined,
  catchall: unknown,
  checkCount: number,
): Check | null {
  // A catchall or object-level checks are rare enough to leave to zod.
  if (shape === undefined || catchall !== undefined || checkCount > 0) return null;
  const required: { key: string; check: Check }[] = [];
  const optional: { key: string; check: Check }[] = [];
  for (const key of Object.keys(shape)) {
    const field = shape[key] as SchemaInternals;
    const { optin, optout } = field._zod;
    // zod: a field that is not optional-in must be present (`key in input`), even z.unknown();
    // an optional-in-and-out field is checked only when present.
    if (optin === undefined) required.push({ key, check: compileCheck(field) });
    else if (optin === "optional" && optout === "optional")
      optional.push({ key, check: compileCheck(field) });
    else return null;
  }
  return (v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
    const o = v as Record<string, unknown>;
    for (let i = 0; i < required.length; i++) {
      const f = required[i] as { key: string; check: Check };
      if (!(f.key in o) || !f.check(o[f.key])) return false;
    }
    for (let i = 0; i < optional.length; i++) {
      const f = optional[i] as { key: string; check: Check };
      if (f.key in o && !f.check(o[f.key])) return false;
    }
    return true;
  };
}

/** The compiled check of each event type, by its `type` tag (absent: not a known type). */
export const eventChecks: ReadonlyMap<string, Check> = new Map(
  historyEventSchema.options.map((option) => {
    const schema = option as unknown as SchemaInternals;
    const tag = schema._zod.def.shape?.type?._zod.def.values?.[0];
    return [String(tag), compileCheck(schema)] as const;
  }),
);
