/**
 * zod → fast-check: arbitraries for the common zod 4 types, so the determinism checker can invent
 * activity results, signal payloads and child results from the schemas the user already wrote.
 * Unsupported types (custom, lazy, intersections...) raise an error that says which name and path
 * need an arbitrary from `options.arbitraries`.
 */
import { InvalidOptionsError, type Schema } from "@spool/core";
import fc from "fast-check";

/** A user-supplied arbitrary for a schema found anywhere (nested too), matched by identity. */
export type SchemaArbitraries = ReadonlyMap<Schema, fc.Arbitrary<unknown>>;

interface CheckDef {
  check: string;
  value?: unknown;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
  length?: number;
  format?: string;
  pattern?: RegExp;
}

interface ZodDef {
  type: string;
  check?: string;
  checks?: { _zod: { def: CheckDef } }[];
  format?: string;
  pattern?: RegExp;
  shape?: Record<string, Schema>;
  element?: Schema;
  innerType?: Schema;
  options?: Schema[];
  values?: unknown[];
  entries?: Record<string, unknown>;
  in?: Schema;
  items?: Schema[];
  rest?: Schema | null;
  keyType?: Schema;
  valueType?: Schema;
}

function defOf(schema: Schema): ZodDef {
  return (schema as unknown as { _zod: { def: ZodDef } })._zod.def;
}

function checksOf(def: ZodDef): CheckDef[] {
  const own = def.check ? [def as unknown as CheckDef] : [];
  return [...own, ...(def.checks ?? []).map((c) => c._zod.def)];
}

/**
 * Builds an arbitrary producing values that `schema` accepts.
 *
 * @param what names the value in errors, e.g. `output of activity "payments.charge"`.
 * @throws InvalidOptionsError for a schema type it cannot generate, naming the path.
 * @example
 * ```ts
 * const arb = zodArbitrary(z.object({ id: z.string(), n: z.number().int().min(1) }), "example");
 * fc.sample(arb, 1);
 * ```
 */
export function zodArbitrary(
  schema: Schema,
  what: string,
  custom?: SchemaArbitraries,
): fc.Arbitrary<unknown> {
  return build(schema, what, "", custom);
}

function build(
  schema: Schema,
  what: string,
  at: string,
  custom: SchemaArbitraries | undefined,
): fc.Arbitrary<unknown> {
  const given = custom?.get(schema);
  if (given) return given;
  const def = defOf(schema);
  const checks = checksOf(def);
  const sub = (s: Schema, p: string) => build(s, what, p, custom);
  let arb: fc.Arbitrary<unknown>;
  switch (def.type) {
    case "string":
      arb = stringArb(def, checks);
      // Format generators (email, url...) are looser or stricter than zod's patterns: keep what zod accepts.
      if (def.format !== undefined || checks.some((c) => c.check === "string_format")) {
        arb = arb.filter((v) => schema.safeParse(v).success);
      }
      break;
    case "number":
      arb = numberArb(checks);
      break;
    case "int":
      arb = numberArb([...checks, { check: "number_format", format: "safeint" }]);
      break;
    case "boolean":
      arb = fc.boolean();
      break;
    case "bigint":
      arb = fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n });
      break;
    case "date":
      arb = fc.date({
        min: new Date("2000-01-01T00:00:00Z"),
        max: new Date("2100-01-01T00:00:00Z"),
        noInvalidDate: true,
      });
      break;
    case "null":
      arb = fc.constant(null);
      break;
    case "undefined":
    case "void":
      arb = fc.constant(undefined);
      break;
    case "nan":
      arb = fc.constant(Number.NaN);
      break;
    case "any":
    case "unknown":
      arb = fc.jsonValue({ maxDepth: 2 });
      break;
    case "literal":
      arb = fc.constantFrom(...(def.values ?? []));
      break;
    case "enum":
      arb = fc.constantFrom(...Object.values(def.entries ?? {}));
      break;
    case "object": {
      const shape = def.shape ?? {};
      const fields: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, s] of Object.entries(shape)) fields[k] = sub(s, `${at}.${k}`);
      arb = fc.record(fields);
      break;
    }
    case "array": {
      const { min, max } = lengthBounds(checks, 0, 5);
      arb = fc.array(sub(def.element as Schema, `${at}[]`), { minLength: min, maxLength: max });
      break;
    }
    case "tuple": {
      const items = (def.items ?? []).map((s, i) => sub(s, `${at}[${i}]`));
      arb = fc.tuple(...items);
      if (def.rest) {
        const rest = sub(def.rest, `${at}[...]`);
        arb = fc.tuple(arb, fc.array(rest, { maxLength: 3 })).map(([t, r]) => [...(t as unknown[]), ...r]);
      }
      break;
    }
    case "record":
      arb = fc.dictionary(
        sub(def.keyType as Schema, `${at}{key}`) as fc.Arbitrary<string>,
        sub(def.valueType as Schema, `${at}{value}`),
        { maxKeys: 4 },
      );
      break;
    case "map":
      arb = fc
        .array(
          fc.tuple(sub(def.keyType as Schema, `${at}{key}`), sub(def.valueType as Schema, `${at}{value}`)),
          {
            maxLength: 4,
          },
        )
        .map((entries) => new Map(entries));
      break;
    case "set":
      arb = fc.array(sub(def.valueType as Schema, `${at}{}`), { maxLength: 4 }).map((v) => new Set(v));
      break;
    case "optional":
      arb = fc.option(sub(def.innerType as Schema, at), { nil: undefined, freq: 4 });
      break;
    case "nullable":
      arb = fc.option(sub(def.innerType as Schema, at), { nil: null, freq: 4 });
      break;
    case "default":
    case "prefault":
    case "catch":
    case "readonly":
    case "nonoptional":
      arb = sub(def.innerType as Schema, at);
      break;
    case "pipe":
      arb = sub(def.in as Schema, at);
      break;
    case "union":
      arb = fc.oneof(...(def.options ?? []).map((s, i) => sub(s, `${at}|${i}`)));
      break;
    default:
      throw new InvalidOptionsError(
        `checkDeterminism cannot generate the ${what}: zod type "${def.type}" at ${at || "(root)"} is not ` +
          'supported. Pass an arbitrary for it, e.g. `arbitraries: { "<activity, signal or child workflow name>": ' +
          "fc.constant(...) }` or `schemaArbitraries: [[theSchema, fc....]]`.",
      );
  }
  // Refinements cannot be generated from; keep the values that pass and let shrinking find simple ones.
  if (checks.some((c) => c.check === "custom")) arb = arb.filter((v) => schema.safeParse(v).success);
  return arb;
}

function lengthBounds(checks: CheckDef[], defMin: number, defMax: number): { min: number; max: number } {
  let min = defMin;
  let max: number | undefined;
  for (const c of checks) {
    if (c.check === "min_length" && typeof c.minimum === "number") min = Math.max(min, c.minimum);
    if (c.check === "max_length" && typeof c.maximum === "number")
      max = Math.min(max ?? c.maximum, c.maximum);
    if (c.check === "length_equals" && typeof c.length === "number") {
      min = c.length;
      max = c.length;
    }
  }
  return { min, max: max ?? Math.max(min, min + defMax) };
}

function stringArb(def: ZodDef, checks: CheckDef[]): fc.Arbitrary<unknown> {
  const { min, max } = lengthBounds(checks, 0, 12);
  const formatCheck = checks.find((c) => c.check === "string_format");
  const format = def.format ?? formatCheck?.format;
  let arb: fc.Arbitrary<string>;
  switch (format) {
    case undefined:
      arb = fc.string({ minLength: min, maxLength: max });
      break;
    case "email":
      arb = fc.emailAddress();
      break;
    case "uuid":
    case "guid":
      arb = fc.uuid();
      break;
    case "url":
      arb = fc.webUrl();
      break;
    case "ulid":
      arb = fc.ulid();
      break;
    case "datetime":
      arb = fc
        .date({
          min: new Date("2000-01-01T00:00:00Z"),
          max: new Date("2100-01-01T00:00:00Z"),
          noInvalidDate: true,
        })
        .map((d) => d.toISOString());
      break;
    case "date":
      arb = fc
        .date({
          min: new Date("2000-01-01T00:00:00Z"),
          max: new Date("2100-01-01T00:00:00Z"),
          noInvalidDate: true,
        })
        .map((d) => d.toISOString().slice(0, 10));
      break;
    case "regex":
      arb = fc.stringMatching((def.pattern ?? formatCheck?.pattern) as RegExp);
      break;
    case "lowercase":
      arb = fc.string({ minLength: min, maxLength: max }).map((s) => s.toLowerCase());
      break;
    case "uppercase":
      arb = fc.string({ minLength: min, maxLength: max }).map((s) => s.toUpperCase());
      break;
    default: {
      const pattern = def.pattern ?? formatCheck?.pattern;
      arb =
        pattern instanceof RegExp
          ? fc.stringMatching(pattern)
          : fc.string({ minLength: min, maxLength: max });
    }
  }
  if (
    format !== undefined &&
    (min > 0 || checks.some((c) => c.check === "max_length" || c.check === "length_equals"))
  ) {
    arb = arb.filter((s) => s.length >= min && s.length <= max);
  }
  return arb;
}

function numberArb(checks: CheckDef[]): fc.Arbitrary<unknown> {
  let lo: number | undefined;
  let hi: number | undefined;
  let loExcl = false;
  let hiExcl = false;
  let isInt = false;
  let step: number | undefined;
  for (const c of checks) {
    if (c.check === "greater_than" && typeof c.value === "number") {
      if (lo === undefined || c.value > lo || (c.value === lo && !c.inclusive)) {
        lo = c.value;
        loExcl = !c.inclusive;
      }
    }
    if (c.check === "less_than" && typeof c.value === "number") {
      if (hi === undefined || c.value < hi || (c.value === hi && !c.inclusive)) {
        hi = c.value;
        hiExcl = !c.inclusive;
      }
    }
    if (c.check === "number_format" && c.format !== "float32" && c.format !== "float64") isInt = true;
    if (c.check === "multiple_of" && typeof c.value === "number") step = c.value;
  }
  // Small magnitudes by default: results are identifiers and amounts, not edge cases of IEEE-754.
  const DEFAULT = 10_000;
  if (step !== undefined && step > 0) {
    const min = Math.ceil(((lo ?? -DEFAULT) + (loExcl ? step / 2 : 0)) / step);
    const max = Math.floor(((hi ?? DEFAULT) - (hiExcl ? step / 2 : 0)) / step);
    return fc.integer({ min, max: Math.max(min, max) }).map((n) => n * step);
  }
  if (isInt) {
    const min = lo === undefined ? Math.min(-DEFAULT, hi ?? 0) : loExcl ? Math.floor(lo) + 1 : Math.ceil(lo);
    const max = hi === undefined ? Math.max(DEFAULT, min) : hiExcl ? Math.ceil(hi) - 1 : Math.floor(hi);
    return fc.integer({
      min: Math.max(min, Number.MIN_SAFE_INTEGER),
      max: Math.min(Math.max(min, max), Number.MAX_SAFE_INTEGER),
    });
  }
  const min = lo ?? Math.min(-DEFAULT, hi ?? 0);
  const max = hi ?? Math.max(DEFAULT, min + 1);
  return fc.double({
    min,
    max,
    minExcluded: loExcl,
    maxExcluded: hiExcl,
    noNaN: true,
    noDefaultInfinity: true,
  });
}
