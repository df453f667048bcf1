// Guards stored-history decoding: a malformed stored event accepted as valid, an unclear corruption error, or a decoded event that differs from what was stored.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RawEvent } from "../src/backend/backend.ts";
import { fromBase64 } from "../src/codec/base64.ts";
import { decodeValue, encodeValue } from "../src/codec/msgpack-codec.ts";
import { DataConverter, type PayloadCodec } from "../src/codec/payload-codec.ts";
import { HistoryCorruptError } from "../src/errors.ts";
import { decodeEvent, decodeHistory, encodeEvent } from "../src/history/event-codec.ts";
import { type HistoryEvent, historyEventSchema } from "../src/history/events.ts";
import { type HistoryFile, parseHistoryFile } from "../src/history/history-file.ts";

const RUN = "run-1";
const sync = new DataConverter();
/** A codec that is async, so decoding takes the awaiting path. */
const asyncCodec: PayloadCodec = { name: "async-identity", encode: async (b) => b, decode: async (b) => b };
const converters = [
  ["sync", sync],
  ["async codec", new DataConverter({ codec: asyncCodec })],
] as const;

const error = {
  name: "Error",
  message: "boom",
  stack: "Error: boom",
  cause: { x: 1 },
  details: { code: "E1" },
};

/** One event of every type, with every optional field present. */
const samples: HistoryEvent[] = [
  {
    seq: 1,
    ts: 10,
    type: "WorkflowStarted",
    workflowName: "wf",
    input: { a: 1 },
    version: "v1",
    parent: { workflowId: "p", runId: "pr", step: 3 },
    continuedFrom: "r0",
    executionTimeoutMs: 1000,
  },
  { seq: 2, ts: 11, type: "WorkflowCompleted", result: [1, 2] },
  { seq: 3, ts: 12, type: "WorkflowFailed", error },
  { seq: 4, ts: 13, type: "WorkflowCancelled", error },
  { seq: 5, ts: 14, type: "WorkflowContinued", input: 1, carriedSignals: [{ name: "s", payload: 2 }] },
  {
    seq: 6,
    ts: 15,
    type: "ActivityScheduled",
    step: 1,
    name: "act",
    input: "in",
    options: {
      retry: {
        maxAttempts: 3,
        initialIntervalMs: 100,
        backoffCoefficient: 2,
        maxIntervalMs: 1000,
        nonRetryableErrors: ["Fatal"],
      },
      timeoutMs: 0,
      heartbeatTimeoutMs: 0,
    },
  },
  { seq: 7, ts: 16, type: "ActivityCompleted", step: 1, result: { ok: true }, attempt: 1 },
  { seq: 8, ts: 17, type: "ActivityFailed", step: 1, error, attempt: 2, reason: "timeout" },
  { seq: 9, ts: 18, type: "ActivityCancelled", step: 1 },
  { seq: 10, ts: 19, type: "TimerStarted", step: 2, dueAt: 100, durationMs: 50 },
  { seq: 11, ts: 20, type: "TimerFired", step: 2 },
  { seq: 12, ts: 21, type: "TimerCancelled", step: 2 },
  { seq: 13, ts: 22, type: "SignalReceived", name: "sig", payload: null },
  { seq: 14, ts: 23, type: "ChildStarted", step: 3, name: "child", workflowId: "c1", input: 5 },
  { seq: 15, ts: 24, type: "ChildCompleted", step: 3, result: "done" },
  { seq: 16, ts: 25, type: "ChildFailed", step: 3, error },
  { seq: 17, ts: 26, type: "ChildStartFailed", step: 3 },
  { seq: 18, ts: 27, type: "ChildCancelled", step: 3, workflowId: "c1" },
  { seq: 19, ts: 28, type: "SideEffect", step: 4, value: 0.5 },
  { seq: 20, ts: 29, type: "PatchMarker", patchId: "p1" },
  { seq: 21, ts: 30, type: "CancelRequested", reason: "user" },
  {
    seq: 22,
    ts: 31,
    type: "SignalRejected",
    name: "sig",
    payload: { wrong: 1 },
    reason: "bad",
    together: true,
  },
];

const COLUMNS = new Set(["seq", "ts", "type", "step"]);

/** Stores an arbitrary event-like object the way a backend row holds it. */
function toRaw(e: Record<string, unknown>): RawEvent {
  const body: Record<string, unknown> = {};
  let hasBody = false;
  for (const k of Object.keys(e)) {
    if (COLUMNS.has(k)) continue;
    body[k] = e[k];
    hasBody = true;
  }
  return {
    seq: e.seq as number,
    ts: e.ts as number,
    type: e.type as string,
    step: "step" in e ? (e.step as number) : null,
    body: hasBody ? encodeValue(body) : null,
  } as RawEvent;
}

async function corruption(raw: RawEvent, dc: DataConverter = sync): Promise<HistoryCorruptError> {
  try {
    await decodeEvent(raw, dc, RUN);
  } catch (err) {
    expect(err).toBeInstanceOf(HistoryCorruptError);
    return err as HistoryCorruptError;
  }
  throw new Error("expected a HistoryCorruptError");
}

describe("decodeEvent", () => {
  it("the samples cover every event type", () => {
    const types = historyEventSchema.options.map((o) => o.shape.type.value);
    expect(new Set(samples.map((s) => s.type))).toEqual(new Set(types));
    for (const s of samples) expect(historyEventSchema.safeParse(s).success, s.type).toBe(true);
  });

  for (const [label, dc] of converters) {
    it(`round-trips every event type (${label})`, async () => {
      const raws = await Promise.all(samples.map((e) => encodeEvent(e, dc)));
      expect(await decodeHistory(raws, dc, RUN)).toEqual(samples);
    });
  }

  it("keeps class instances nested in unknown fields", async () => {
    const result = { when: new Date(5), tags: new Set(["a"]), byId: new Map([[1, new Uint8Array([7])]]) };
    const e: HistoryEvent = { seq: 3, ts: 1, type: "ActivityCompleted", step: 1, result, attempt: 1 };
    const decoded = await decodeEvent(await encodeEvent(e, sync), sync, RUN);
    const r = (decoded as { result: typeof result }).result;
    expect(r.when).toBeInstanceOf(Date);
    expect(r.tags).toBeInstanceOf(Set);
    expect(r.byId.get(1)).toBeInstanceOf(Uint8Array);
    expect(decoded).toEqual(e);
  });

  for (const [label, dc] of converters) {
    it(`a wrong-typed body field names run, position, type, field and problem (${label})`, async () => {
      const raw = toRaw({ seq: 5, ts: 1, type: "ActivityCompleted", step: 1, result: 1, attempt: "x" });
      const err = await corruption(raw, dc);
      expect(err.runId).toBe(RUN);
      expect(err.seq).toBe(5);
      expect(err.message).toMatch(
        /^history of run run-1 is corrupt at event #5: it does not match the ActivityCompleted event schema \(attempt: .*expected number, received string\)/,
      );
      expect(err.message).toMatch(/terminate/);
    });
  }

  it("a missing required field, even an unknown-typed one, is named", async () => {
    const err = await corruption(toRaw({ seq: 7, ts: 1, type: "ActivityCompleted", step: 1, attempt: 1 }));
    expect(err.message).toMatch(
      /corrupt at event #7: it does not match the ActivityCompleted event schema \(result: /,
    );
  });

  it("a malformed nested field is named by its path", async () => {
    const scheduled = samples[5] as Extract<HistoryEvent, { type: "ActivityScheduled" }>;
    const bad = {
      ...scheduled,
      options: { ...scheduled.options, retry: { ...scheduled.options.retry, maxAttempts: Number.NaN } },
    };
    const err = await corruption(toRaw(bad));
    expect(err.message).toMatch(/ActivityScheduled event schema \(options\.retry\.maxAttempts: /);
  });

  it("a stepped event without a step column, or with step 0, is corrupt", async () => {
    const noStep = await corruption(toRaw({ seq: 4, ts: 1, type: "TimerFired" }));
    expect(noStep.message).toMatch(
      /corrupt at event #4: it does not match the TimerFired event schema \(step: /,
    );
    const zero = await corruption({ seq: 4, ts: 1, type: "TimerFired", step: 0, body: null });
    expect(zero.message).toMatch(/TimerFired event schema \(step: /);
  });

  it("an unknown event type says so", async () => {
    const raw = { ...toRaw({ seq: 9, ts: 1, type: "ActivityCompleted", step: 1, result: 1, attempt: 1 }) };
    (raw as { type: string }).type = "ActivityExploded";
    const err = await corruption(raw);
    expect(err.message).toMatch(
      /corrupt at event #9: its type "ActivityExploded" is not a known event type \(written by a newer version of Spool\?\)/,
    );
  });

  it("a body that is not an object, or not decodable, is corrupt", async () => {
    const notObject = await corruption({ seq: 2, ts: 1, type: "TimerFired", step: 1, body: encodeValue(42) });
    expect(notObject.message).toMatch(/corrupt at event #2: its body is not an object/);
    const garbage = await corruption({
      seq: 3,
      ts: 1,
      type: "TimerFired",
      step: 1,
      body: new Uint8Array([0xc1]),
    });
    expect(garbage.message).toMatch(/corrupt at event #3: its body cannot be decoded/);
    expect(garbage.cause).toBeDefined();
  });

  it("decodeHistory reports the first corrupt event in order", async () => {
    const raws = [
      toRaw(samples[0] as HistoryEvent),
      toRaw({ seq: 2, ts: 1, type: "WorkflowCompleted" }),
      toRaw({ seq: 3, ts: 1, type: "TimerFired" }),
    ];
    for (const [, dc] of converters) {
      await expect(decodeHistory(raws, dc, RUN)).rejects.toThrow(/corrupt at event #2: .*WorkflowCompleted/);
    }
  });

  it("accepts an event only when the event schema accepts it (mutated events)", async () => {
    const odd = fc.constantFrom<unknown>(
      undefined,
      null,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -0,
      0,
      -1,
      1.5,
      2 ** 53,
      7,
      "",
      "x",
      "timeout",
      true,
      [],
      [1],
      [{ name: "s" }],
      {},
      { name: "n", message: "m" },
      Object.assign(Object.create(null), { workflowId: "w", runId: "r", step: 1 }),
      new Date(0),
      new Map([["name", "n"]]),
      3n,
    );
    const mutation = fc.record({
      sample: fc.integer({ min: 0, max: samples.length - 1 }),
      pick: fc.nat(),
      kind: fc.constantFrom("delete", "replace", "body"),
      value: odd,
    });
    await fc.assert(
      fc.asyncProperty(mutation, async ({ sample, pick, kind, value }) => {
        const e = structuredClone(samples[sample]) as unknown as Record<string, unknown>;
        let raw: RawEvent;
        if (kind === "body") {
          // The whole body replaced by an odd value.
          raw = { ...toRaw(e), body: encodeValue(value) };
        } else {
          const paths = leafPaths(e);
          const path = paths[pick % paths.length] as (string | number)[];
          // Columns are typed (integers, text) in every backend: no objects there.
          fc.pre(!(COLUMNS.has(String(path[0])) && typeof value === "object" && value !== null));
          mutate(e, path, kind === "delete" ? DELETE : value);
          raw = toRaw(e);
        }
        let decoded: HistoryEvent | undefined;
        try {
          decoded = await decodeEvent(raw, sync, RUN);
        } catch (err) {
          expect(HistoryCorruptError.is(err)).toBe(true);
        }
        const candidate = expectedCandidate(raw);
        expect(decoded !== undefined).toBe(
          candidate !== null && historyEventSchema.safeParse(candidate).success,
        );
        if (decoded !== undefined) expect(decoded).toEqual(candidate);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("golden histories", () => {
  const dir = join(import.meta.dirname, "../../../test/histories");
  const files = readdirSync(dir).filter((f) => f.endsWith(".json"));

  it("there are golden histories", () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(`${file}: stored rows decode to the events of the file, keys in the same order`, async () => {
      const text = readFileSync(join(dir, file), "utf8");
      const doc = JSON.parse(text) as HistoryFile;
      const raws: RawEvent[] = doc.events.map((row) => ({
        seq: row.seq,
        ts: row.ts,
        type: row.type,
        step: row.step ?? null,
        body: row.body === undefined ? null : fromBase64(row.body),
      }));
      const expected = parseHistoryFile(text).events;
      for (const [, dc] of converters) {
        const decoded = await decodeHistory(raws, dc, doc.runId);
        expect(decoded).toEqual(expected);
        decoded.forEach((e, i) => {
          expect(Object.keys(e)).toEqual(Object.keys(expected[i] as object));
        });
      }
    });
  }
});

const DELETE = Symbol("delete");

/** Every path to a field of the event, nested objects and arrays included. */
function leafPaths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof v !== "object" || v === null) return [];
  const out: (string | number)[][] = [];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  for (const k of keys) {
    const p = [...prefix, k];
    out.push(p, ...leafPaths((v as Record<string | number, unknown>)[k], p));
  }
  return out;
}

function mutate(root: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let at = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (value === DELETE) delete at[last];
  else at[last] = value;
}

/** What the stored row stands for, built the straightforward way; null when the body is not an object. */
function expectedCandidate(raw: RawEvent): Record<string, unknown> | null {
  const body = raw.body === null ? {} : decodeValue(raw.body);
  if (typeof body !== "object" || body === null) return null;
  const c: Record<string, unknown> = { ...body, seq: raw.seq, ts: raw.ts, type: raw.type };
  if (raw.step !== null) c.step = raw.step;
  return c;
}
