// Guards encoding a step's payload once: an activity input, options or run result cut out of its event body must be byte-identical to encoding it alone, and a reused stored body must only be reused for the very same fields.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeValue } from "../src/codec/msgpack-codec.ts";
import { msgpackMapField } from "../src/codec/msgpack-fields.ts";
import { DataConverter } from "../src/codec/payload-codec.ts";
import { encodeEvent, encodeEventWithFields } from "../src/history/event-codec.ts";
import type { HistoryEvent } from "../src/history/events.ts";

const leaf = fc.oneof(
  fc.string(),
  fc.string({ minLength: 30, maxLength: 300 }),
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 0, Number.NaN, 2 ** 53, -(2 ** 60), 255, 65535, 2 ** 32),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date(),
  fc.uint8Array({ maxLength: 300 }),
  fc.float64Array({ maxLength: 4 }),
);

const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ maxDepth: 4 }, leaf, tie("array"), tie("object"), tie("map"), tie("set")),
  array: fc.array(tie("value"), { maxLength: 20 }),
  object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("__proto__", "input", "")), tie("value"), {
    maxKeys: 20,
  }),
  map: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 4 }).map((entries) => new Map(entries)),
  set: fc.array(tie("value"), { maxLength: 4 }).map((items) => new Set(items)),
}));

const dc = new DataConverter({ maxPayloadBytes: 10 * 1024 * 1024 });
const options = Object.freeze({
  retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
  timeoutMs: 5000,
  heartbeatTimeoutMs: 0,
});

describe("encoded once", () => {
  it("an activity's input and options cut out of its ActivityScheduled body are the bytes of encoding them alone", async () => {
    await fc.assert(
      fc.asyncProperty(value, fc.string(), async (input, name) => {
        const e = { seq: 3, ts: 1, type: "ActivityScheduled", step: 2, name, input, options } as HistoryEvent;
        const once = await encodeEventWithFields(e, dc, { input: "input", options: "options" });
        expect(once.event).toEqual(await encodeEvent(e, dc));
        expect(once.fields.input).toEqual(await dc.encode(input, "input"));
        expect(once.fields.options).toEqual(await dc.encode(options, "options"));
      }),
      { numRuns: 150 },
    );
  });

  it("a run's result cut out of its WorkflowCompleted body is the bytes of encoding it alone", async () => {
    await fc.assert(
      fc.asyncProperty(value, async (result) => {
        const e = { seq: 9, ts: 1, type: "WorkflowCompleted", result } as HistoryEvent;
        const once = await encodeEventWithFields(e, dc, { result: "result" });
        expect(once.event).toEqual(await encodeEvent(e, dc));
        expect(once.fields.result).toEqual(await dc.encode(result, "result"));
        // The parent's ChildCompleted body is the same { result }.
        expect(once.bodyMsgpack).toEqual(encodeValue({ result }));
      }),
      { numRuns: 150 },
    );
  });

  it("finds a field in maps of every size, and nothing in what is not a map", () => {
    const big: Record<string, unknown> = {};
    for (let i = 0; i < 70000; i++) big[`k${i}`] = i;
    big.long = "x".repeat(70000);
    big.input = -1;
    expect(msgpackMapField(encodeValue(big), "input")).toEqual(encodeValue(-1));
    expect(msgpackMapField(encodeValue(big), "long")).toEqual(encodeValue(big.long));
    expect(msgpackMapField(encodeValue({ a: 1 }), "input")).toBeUndefined();
    expect(msgpackMapField(encodeValue([1, 2]), "input")).toBeUndefined();
    expect(msgpackMapField(new Uint8Array(0), "input")).toBeUndefined();
    expect(() => msgpackMapField(encodeValue({ input: "abcdef" }).subarray(0, 5), "input")).toThrow(
      RangeError,
    );
  });

  it("a stored inbound body is reused only for an event with the very same body fields", async () => {
    const result = { total: 5 };
    const inbound = { type: "ActivityCompleted", step: 4, ts: 1, result, attempt: 1 };
    const stored = [{ event: inbound, body: new Uint8Array([1, 2, 3]) }];
    const recorded = { ...inbound, seq: 7 } as HistoryEvent;
    expect((await encodeEvent(recorded, dc, stored)).body).toBe(stored[0]!.body);
    // Another value (even an equal copy), another step, or an added field: encoded afresh.
    for (const other of [
      { ...recorded, result: { total: 5 } },
      { ...recorded, step: 5 },
      { ...recorded, together: true },
    ]) {
      const raw = await encodeEvent(other as HistoryEvent, dc, stored);
      expect(raw.body).toEqual((await encodeEvent(other as HistoryEvent, dc)).body);
    }
  });
});
