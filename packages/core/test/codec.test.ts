// Guards against payload corruption: values that do not come back as stored (undefined, -0, BigInt, Map, errors...), unstorable data accepted silently, and tampered encrypted payloads accepted.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  deserializeError,
  type SerializedError,
  serializeError,
  shrinkSerializedError,
} from "../src/codec/error-serialization.ts";
import { decodeValue, encodeValue } from "../src/codec/msgpack-codec.ts";
import { aesGcmCodec, DataConverter, type PayloadCodec } from "../src/codec/payload-codec.ts";
import {
  ActivityFailure,
  ConfigurationError,
  NonRetryableError,
  PayloadTooLargeError,
  SpoolError,
  ValidationError,
} from "../src/errors.ts";

const roundTrip = (v: unknown): unknown => decodeValue(encodeValue(v));

/** Captures what `f` throws, failing the test when it does not throw. */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

const leaf = fc.oneof(
  fc.string(),
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, -(2 ** 60)),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }),
  fc.date(),
  fc.uint8Array({ maxLength: 16 }),
  fc.float64Array({ maxLength: 4 }),
  fc.int16Array({ maxLength: 4 }),
  fc.bigInt64Array({ maxLength: 2 }),
);

const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ maxDepth: 4 }, leaf, tie("array"), tie("object"), tie("map"), tie("set")),
  array: fc.array(tie("value"), { maxLength: 5 }),
  // fc.dictionary also makes null-prototype objects; the keys include ones that upset decoders. (Not
  // "constructor": toStrictEqual compares own `constructor` values by identity.)
  object: fc.dictionary(
    fc.oneof(fc.string(), fc.constantFrom("__proto__", "toString", "0", "")),
    tie("value"),
    {
      maxKeys: 5,
    },
  ),
  map: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 4 }).map((entries) => new Map(entries)),
  set: fc.array(tie("value"), { maxLength: 4 }).map((items) => new Set(items)),
}));

describe("encodeValue / decodeValue", () => {
  it("round-trips arbitrary values deeply equal (undefined ≠ null, -0 ≠ 0, types kept)", () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(roundTrip(v)).toStrictEqual(v);
      }),
      { numRuns: 600 },
    );
  });

  it("is stable: encoding the decoded value gives the same bytes", () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encodeValue(v);
        expect(encodeValue(decodeValue(bytes))).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it("keeps the values plain msgpack loses", () => {
    const v = {
      missing: undefined,
      list: [undefined, null, -0, Number.NaN],
      big: -(2n ** 100n) - 1n,
      when: new Date("2024-02-29T12:00:00.123Z"),
      invalid: new Date(Number.NaN),
      map: new Map<unknown, unknown>([
        [{ id: 1 }, "object key"],
        [2, new Set(["a", 2n])],
      ]),
      bytes: new Uint8Array([0, 255]),
      floats: new Float32Array([1.5, -0]),
      buffer: new Uint8Array([9, 8, 7]).buffer,
      view: new DataView(new Uint8Array([1, 2]).buffer),
      bare: Object.assign(Object.create(null), { x: 1 }),
      proto: JSON.parse('{"__proto__": {"polluted": true}}'),
    };
    const back = roundTrip(v) as typeof v;
    expect(back).toStrictEqual(v);
    expect(Object.hasOwn(back, "missing")).toBe(true);
    expect(Object.is(back.list[2], -0)).toBe(true);
    expect([...new Uint8Array(back.buffer)]).toEqual([9, 8, 7]);
    expect([...new Uint8Array(back.view.buffer)]).toEqual([1, 2]);
    expect(Object.getPrototypeOf(back.bare)).toBe(null);
    expect(Object.getPrototypeOf(back.proto)).toBe(Object.prototype);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(back.proto, "__proto__")?.value).toEqual({ polluted: true });
  });

  it("round-trips undefined and -0 at the top level and array holes as undefined", () => {
    expect(roundTrip(undefined)).toBeUndefined();
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point of the test
    expect(roundTrip([1, , 3])).toStrictEqual([1, undefined, 3]);
  });

  it("decodes binary data into fresh memory, not a view of the input", () => {
    const bytes = encodeValue({ data: new Uint8Array([1, 2, 3]) });
    const back = decodeValue(bytes) as { data: Uint8Array };
    bytes.fill(0);
    expect([...back.data]).toEqual([1, 2, 3]);
    expect(back.data.buffer.byteLength).toBe(3);
  });

  it("accepts shared (non-cyclic) subtrees and returns them as copies", () => {
    const shared = { a: 1 };
    expect(roundTrip({ x: shared, y: shared })).toStrictEqual({ x: { a: 1 }, y: { a: 1 } });
  });
});

describe("errors in payloads", () => {
  it("keep class, message, stack, cause chain and custom fields", () => {
    const root = new NonRetryableError("card declined", { details: { code: "card_declined" } });
    const failure = new ActivityFailure(
      { activityName: "payments.charge", step: 3, attempt: 2, reason: "non-retryable" },
      { cause: root },
    );
    const back = roundTrip({ error: failure }) as { error: ActivityFailure };
    const err = back.error;
    expect(err).toBeInstanceOf(ActivityFailure);
    expect(err).toBeInstanceOf(SpoolError);
    expect(err).toBeInstanceOf(Error);
    expect(ActivityFailure.is(err)).toBe(true);
    expect(SpoolError.is(err)).toBe(true);
    expect(err.name).toBe("ActivityFailure");
    expect(err.message).toBe(failure.message);
    expect(err.stack).toBe(failure.stack);
    expect([err.activityName, err.step, err.attempt, err.reason]).toEqual([
      "payments.charge",
      3,
      2,
      "non-retryable",
    ]);
    const cause = err.cause as NonRetryableError;
    expect(cause).toBeInstanceOf(NonRetryableError);
    expect(NonRetryableError.is(cause)).toBe(true);
    expect(cause.message).toBe("card declined");
    expect(cause.details).toEqual({ code: "card_declined" });
    expect(String(err)).toBe(`ActivityFailure: ${failure.message}`);
  });

  it("keep user error names and fields, and built-in classes", () => {
    class CardDeclinedError extends Error {
      override name = "CardDeclinedError";
      code = "card_declined";
      declinedAt = new Date(0);
    }
    const back = roundTrip(new CardDeclinedError("no funds")) as Error & { code: string; declinedAt: Date };
    expect(back).toBeInstanceOf(Error);
    expect(back.name).toBe("CardDeclinedError");
    expect(back.code).toBe("card_declined");
    expect(back.declinedAt).toEqual(new Date(0));
    expect(roundTrip(new TypeError("bad type"))).toBeInstanceOf(TypeError);
    const withCause = roundTrip(new Error("outer", { cause: { reason: "plain value" } })) as Error;
    expect(withCause.cause).toEqual({ reason: "plain value" });
  });

  it("never fail to store: unstorable fields and cycles inside an error are described instead", () => {
    const err = Object.assign(new Error("request failed"), {
      retry: () => 0,
      socket: new (class Socket {})(),
    });
    (err as Error & { self?: unknown }).self = err;
    const back = roundTrip(err) as Error & Record<string, unknown>;
    expect(back.message).toBe("request failed");
    expect(back.retry).toBe("[unserializable: function retry]");
    expect(back.socket).toBe("[unserializable: Socket instance]");
    expect(back.self).toBe("[unserializable: Error instance]");
  });

  it("serializeError cuts cyclic and very deep cause chains", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as Error & { cause?: unknown }).cause = b;
    const s = serializeError(a);
    expect((s.cause as { message: string }).message).toBe("b");
    expect(((s.cause as { cause: { message: string } }).cause as { message: string }).message).toMatch(
      /cyclic/,
    );

    let deep: Error = new Error("0");
    for (let i = 1; i < 50; i++) deep = new Error(String(i), { cause: deep });
    let depth = 0;
    for (let c: unknown = serializeError(deep); c; c = (c as { cause?: unknown }).cause) depth++;
    expect(depth).toBeLessThanOrEqual(9);
  });

  it("serializeError records non-errors that were thrown", () => {
    expect(serializeError("boom")).toEqual({ name: "Error", message: "boom", details: { thrown: "boom" } });
    expect(serializeError({ status: 500 })).toEqual({
      name: "Error",
      message: '{"status":500}',
      details: { thrown: { status: 500 } },
    });
    const back = deserializeError(serializeError(42)) as Error & { thrown: unknown };
    expect(back.message).toBe("42");
    expect(back.thrown).toBe(42);
  });
});

describe("unstorable values", () => {
  const cases: [string, unknown, RegExp][] = [
    ["a function", { items: [1, 2, { fn: () => 1 }] }, /input\.items\[2\]\.fn is a function/],
    ["a symbol", { tag: Symbol("t") }, /input\.tag is a symbol/],
    ["a class instance", { price: new (class Money {})() }, /input\.price is an instance of class Money/],
    ["a RegExp", { "odd key": [/x/] }, /input\["odd key"\]\[0\] is an instance of class RegExp/],
    ["a function in a Map", new Map([["k", () => 1]]), /input\.get\("k"\) is a function/],
    ["a function in a Set", { s: new Set([1, () => 1]) }, /input\.s<Set item #1> is a function/],
  ];
  it.each(cases)("reject %s with a ValidationError naming the path", (_label, v, message) => {
    const err = thrown(() => encodeValue(v, 'input of activity "payments.charge"'));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(message);
    expect(err.message).toContain('input of activity "payments.charge" cannot be stored');
    expect(err.message).toContain("Pass plain data: objects, arrays");
  });

  it("give the path as issues too", () => {
    const err = thrown(() => encodeValue({ items: [1, 2, { fn: () => 1 }] }, "input")) as ValidationError;
    expect(err.issues).toEqual([{ path: ["items", 2, "fn"], message: "is a function" }]);
  });

  it("reject cycles, naming where they close", () => {
    const v: Record<string, unknown> = { a: { b: [] as unknown[] } };
    ((v.a as { b: unknown[] }).b as unknown[]).push(v.a);
    const err = thrown(() => encodeValue(v, "result"));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toContain("result.a.b[0] refers back to result.a (a cycle)");
    const m = new Map<string, unknown>();
    m.set("self", m);
    expect(thrown(() => encodeValue(m)).message).toContain(
      'value.get("self") refers back to value (a cycle)',
    );
  });

  it("reject excessive nesting instead of overflowing the stack", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 1000; i++) deep = [deep];
    expect(thrown(() => encodeValue(deep)).message).toMatch(/nested more than 256 levels deep/);
  });

  it("decoding garbage fails with a ValidationError", () => {
    expect(thrown(() => decodeValue(new Uint8Array([0xc1]))).message).toMatch(/payload could not be decoded/);
    expect(thrown(() => decodeValue(new Uint8Array([0xd4, 99, 0])))).toBeInstanceOf(ValidationError);
  });
});

describe("DataConverter", () => {
  it("round-trips without a codec, sync and async", async () => {
    const converter = new DataConverter();
    expect(converter.isSync).toBe(true);
    const v = { n: 1n, when: new Date(5) };
    expect(converter.decodeSync(converter.encodeSync(v, "input"))).toStrictEqual(v);
    expect(await converter.decode(await converter.encode(v, "input"))).toStrictEqual(v);
  });

  it("throws PayloadTooLargeError over the limit, naming the payload", async () => {
    const converter = new DataConverter({ maxPayloadBytes: 64 });
    const big = "x".repeat(100);
    const err = thrown(() => converter.encodeSync(big, 'input of activity "payments.charge"'));
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect(PayloadTooLargeError.is(err)).toBe(true);
    expect(err.message).toContain(
      'input of activity "payments.charge" is 102 bytes encoded, over the 64-byte',
    );
    expect(await rejected(converter.encode(big, "result"))).toBeInstanceOf(PayloadTooLargeError);
    expect(converter.encodeSync("x".repeat(50), "ok")).toBeInstanceOf(Uint8Array);
  });

  it("applies the limit after the codec", async () => {
    const doubling: PayloadCodec = {
      encode: (b) => new Uint8Array([...b, ...b]),
      decode: (b) => b.slice(0, b.length / 2),
    };
    const converter = new DataConverter({ codec: doubling, maxPayloadBytes: 100 });
    expect(converter.isSync).toBe(false);
    expect(converter.decodeSync(converter.encodeSync("a".repeat(40), "v"))).toBe("a".repeat(40));
    expect(thrown(() => converter.encodeSync("a".repeat(60), "v"))).toBeInstanceOf(PayloadTooLargeError);
  });

  it("refuses sync use of an async codec with a ConfigurationError", () => {
    const converter = new DataConverter({ codec: aesGcmCodec(new Uint8Array(32)) });
    const err = thrown(() => converter.encodeSync(1, "v"));
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(err.message).toContain('payload codec "aes-256-gcm" is asynchronous');
    expect(thrown(() => converter.decodeSync(new Uint8Array(40)))).toBeInstanceOf(ConfigurationError);
  });

  it("records an error too large for the limit in a smaller form instead of failing", async () => {
    const converter = new DataConverter({ maxPayloadBytes: 1024 });
    const root = Object.assign(new Error("socket hang up"), { code: "ECONNRESET", blob: "b".repeat(3000) });
    root.stack = `Error: socket hang up\n${"    at deep (/a/very/long/path/file.ts:1:1)\n".repeat(60)}`;
    const err = new NonRetryableError("payments.charge failed", { cause: root });
    err.stack = `NonRetryableError\n${"    at x (/y.ts:1:1)\n".repeat(40)}`;
    const full = serializeError(err);
    expect(() => converter.encodeSync(full, "e")).toThrow(PayloadTooLargeError);

    const { bytes, error } = await converter.encodeError(full, (e) => ({ error: e, attempt: 3 }), "e");
    expect(bytes.byteLength).toBeLessThanOrEqual(1024);
    expect(decodeValue(bytes)).toStrictEqual({ error, attempt: 3 });
    // Stacks went first, then the long detail; the name, message, cause and short details stay.
    expect(error.stack).toBeUndefined();
    const back = deserializeError(error);
    expect(NonRetryableError.is(back)).toBe(true);
    expect(back.message).toBe("payments.charge failed");
    const cause = back.cause as Error & { code?: string; blob?: string };
    expect(cause.message).toBe("socket hang up");
    expect(cause.code).toBe("ECONNRESET");
    expect(cause.blob).toBeUndefined();
    expect(cause.stack).toBeUndefined();
  });

  it("cuts a huge message as a last resort, saying so, and keeps an error that fits as it is", async () => {
    const converter = new DataConverter({ maxPayloadBytes: 512 });
    const huge = serializeError(new NonRetryableError("z".repeat(5000)));
    const { error } = await converter.encodeError(huge, (e) => e, "e");
    expect(error.name).toBe("NonRetryableError");
    expect(error.message).toMatch(/^z{200}… \[cut from 5000 characters to fit maxPayloadBytes\]$/);

    const small = serializeError(new Error("fine"));
    expect((await converter.encodeError(small, (e) => e, "e")).error).toBe(small);

    const tiny = new DataConverter({ maxPayloadBytes: 16 });
    const left = await rejected(tiny.encodeError(huge, (e) => e, "error of step 1"));
    expect(PayloadTooLargeError.is(left)).toBe(true);
    expect(left.message).toContain("error of step 1");
  });

  it("shrinks in three levels: stacks, then long details and deep causes, then all but name and message", () => {
    const inner = Object.assign(new Error("inner"), { n: 1 });
    const mid = new Error("mid", { cause: inner });
    const top = Object.assign(new Error("top", { cause: mid }), { ok: true, list: [1, 2, 3] });
    const s = serializeError(top);
    const one = shrinkSerializedError(s, 1);
    expect(JSON.stringify(one)).not.toContain('"stack"');
    expect(one.details).toStrictEqual({ ok: true, list: [1, 2, 3] });
    expect(((one.cause as SerializedError).cause as SerializedError).details).toStrictEqual({ n: 1 });
    const two = shrinkSerializedError(s, 2);
    expect(two.details).toStrictEqual({ ok: true });
    expect((two.cause as SerializedError).message).toBe("mid");
    expect(((two.cause as SerializedError).cause as SerializedError).message).toMatch(/cause omitted/);
    expect(shrinkSerializedError(s, 3)).toStrictEqual({ name: "Error", message: "top" });
  });

  it("rejects invalid limits", () => {
    expect(() => new DataConverter({ maxPayloadBytes: 0 })).toThrow(ConfigurationError);
    expect(() => new DataConverter({ maxPayloadBytes: 1.5 })).toThrow(/invalid maxPayloadBytes/);
  });
});

describe("aesGcmCodec", () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const value = { secret: "4242 4242 4242 4242", amount: 1999n };

  it("round-trips and hides the plaintext", async () => {
    for (const k of [key, key.slice(0, 16)]) {
      const converter = new DataConverter({ codec: aesGcmCodec(k) });
      const bytes = await converter.encode(value, "input");
      expect(new TextDecoder().decode(bytes)).not.toContain("4242");
      expect(bytes[0]).toBe(1);
      expect(await converter.decode(bytes)).toStrictEqual(value);
    }
  });

  it("uses a fresh IV each time", async () => {
    const codec = aesGcmCodec(key);
    const plain = encodeValue(value);
    const [a, b] = await Promise.all([codec.encode(plain), codec.encode(plain)]);
    expect(a).not.toEqual(b);
  });

  it("detects tampering, a wrong key and truncation", async () => {
    const converter = new DataConverter({ codec: aesGcmCodec(key) });
    const bytes = await converter.encode(value, "input");
    for (const i of [0, 5, 20, bytes.length - 1]) {
      const tampered = bytes.slice();
      tampered[i] = (tampered[i] as number) ^ 1;
      const err = await rejected(converter.decode(tampered));
      expect(err).toBeInstanceOf(ValidationError);
      expect(err.message).toMatch(/payload failed authentication/);
    }
    const otherKey = new DataConverter({ codec: aesGcmCodec(new Uint8Array(32).fill(7)) });
    const wrong = await rejected(otherKey.decode(bytes));
    expect(wrong).toBeInstanceOf(ValidationError);
    expect(wrong.message).toContain("payload failed authentication: wrong key or corrupted data");
    expect((await rejected(converter.decode(bytes.subarray(0, 20)))).message).toMatch(/too short/);
  });

  it("copies the key and rejects bad key sizes", async () => {
    const k = key.slice();
    const codec = aesGcmCodec(k);
    const sealed = await codec.encode(new Uint8Array([1, 2, 3]));
    k.fill(0);
    expect([...(await codec.decode(sealed))]).toEqual([1, 2, 3]);
    expect(() => aesGcmCodec(new Uint8Array(24))).toThrow(
      /16-byte \(AES-128\) or 32-byte \(AES-256\) key, got 24 bytes/,
    );
    expect(() => aesGcmCodec(new Uint8Array(24))).toThrow(ConfigurationError);
  });
});
