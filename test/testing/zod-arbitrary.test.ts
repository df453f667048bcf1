// Bug class: generated activity results and signal payloads that their own zod schema rejects, or schemas the generator silently mishandles.
import { ConfigurationError, defineActivity, defineWorkflow } from "@spool/core";
import { checkDeterminism, zodArbitrary } from "@spool/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";

const schemas: [string, z.ZodType][] = [
  ["string bounds", z.string().min(2).max(5)],
  ["exact length", z.string().length(3)],
  ["int range", z.number().int().min(-3).max(9)],
  ["exclusive range", z.number().gt(0).lt(1)],
  ["positive", z.number().positive()],
  ["multipleOf", z.number().multipleOf(5).max(100)],
  ["z.int()", z.int()],
  ["boolean", z.boolean()],
  ["literal", z.literal("x")],
  ["enum", z.enum(["a", "b", "c"])],
  [
    "object + optional + nullable",
    z.object({ a: z.string().optional(), b: z.number().nullable(), c: z.boolean() }),
  ],
  ["array bounds", z.array(z.string()).min(1).max(3)],
  ["union", z.union([z.string(), z.number().int(), z.object({ k: z.literal(1) })])],
  [
    "discriminated union",
    z.discriminatedUnion("t", [
      z.object({ t: z.literal("a"), n: z.number() }),
      z.object({ t: z.literal("b") }),
    ]),
  ],
  ["email / uuid / url", z.object({ e: z.email(), u: z.uuid(), w: z.url() })],
  ["regex", z.string().regex(/^[a-f]{3}-\d{2}$/)],
  ["date, bigint, null", z.object({ d: z.date(), b: z.bigint(), n: z.null() })],
  [
    "record, tuple, map, set",
    z.object({
      r: z.record(z.string(), z.number()),
      t: z.tuple([z.string(), z.boolean()]),
      m: z.map(z.string(), z.number()),
      s: z.set(z.number()),
    }),
  ],
  [
    "default and transform",
    z.object({ d: z.string().default("x"), t: z.string().transform((s) => s.length) }),
  ],
  [
    "refinement",
    z
      .number()
      .int()
      .min(0)
      .max(50)
      .refine((n) => n % 2 === 0),
  ],
];

describe("zodArbitrary", () => {
  it.each(schemas)("generates values %s accepts", (_name, schema) => {
    fc.assert(
      fc.property(zodArbitrary(schema, "test value"), (v) => schema.safeParse(v).success),
      { numRuns: 200 },
    );
  });

  it("names the type and path it cannot generate, and the option that fixes it", () => {
    const schema = z.object({ outer: z.object({ when: z.custom<Temporal>((v) => v !== null) }) });
    expect(() => zodArbitrary(schema, 'output of activity "x"')).toThrow(ConfigurationError);
    expect(() => zodArbitrary(schema, 'output of activity "x"')).toThrow(
      /zod type "custom" at \.outer\.when/,
    );
  });

  it("checkDeterminism takes arbitraries by name for schemas it cannot generate", async () => {
    const fetchPhoto = defineActivity(
      { name: "photos.fetch", input: z.object({}), output: z.instanceof(Uint8Array) },
      async () => new Uint8Array([1]),
    );
    const wf = defineWorkflow(
      { name: "zod.custom-output", input: z.object({}), output: z.number() },
      async function* () {
        const bytes = yield* fetchPhoto({});
        return bytes.length;
      },
    );
    await expect(checkDeterminism(wf, { numRuns: 5 })).rejects.toThrow(
      /arbitraries: \{ "<activity, signal or child workflow name>"/,
    );
    const report = await checkDeterminism(wf, {
      numRuns: 30,
      arbitraries: { "photos.fetch": fc.uint8Array({ maxLength: 4 }) },
    });
    expect(report.ok).toBe(true);
  });
});

type Temporal = { epochMilliseconds: number };
