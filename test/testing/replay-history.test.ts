// Bug class: histories that lose values on their way through a file, and replays that miss (or misreport) a divergence from recorded history.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigurationError, defineActivity, defineWorkflow, NonDeterminismError, sleep } from "@spool/core";
import {
  assertReplays,
  createTestEnv,
  exportHistory,
  HistoryFileError,
  parseHistoryFile,
  replayHistory,
  type TestEnv,
} from "@spool/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";

const rich = z.object({
  at: z.date(),
  tags: z.set(z.string()),
  counts: z.map(z.string(), z.number()),
  big: z.bigint(),
  blob: z.instanceof(Uint8Array),
  nothing: z.undefined(),
});
const lookup = defineActivity(
  { name: "catalog.lookup", input: z.object({ sku: z.string() }), output: rich },
  async ({ sku }) => ({
    at: new Date(Date.UTC(2020, 1, 29, 12)),
    tags: new Set([sku, "sale"]),
    counts: new Map([["a", 1]]),
    big: 2n ** 70n,
    blob: new Uint8Array([1, 2, 255]),
    nothing: undefined,
  }),
);
const notify = defineActivity(
  { name: "mail.notify", input: z.object({ sku: z.string() }), output: z.null() },
  async () => null,
);

const NAME = "catalog.refresh";
const input = z.object({ sku: z.string() });
const v1 = defineWorkflow({ name: NAME, input, output: rich }, async function* (i, ctx) {
  const item = yield* lookup({ sku: i.sku });
  yield* sleep("1h");
  if (ctx.random() > 2) throw new Error("unreachable: ctx.random() is seeded from the run id");
  return item;
});
const v2 = defineWorkflow({ name: NAME, input, output: rich }, async function* (i) {
  const item = yield* lookup({ sku: i.sku });
  yield* notify({ sku: i.sku });
  yield* sleep("1h");
  return item;
});

let env: TestEnv;
let text: string;
beforeAll(async () => {
  env = await createTestEnv({ workflows: [v1], activities: [lookup] });
  await env.run(v1, { sku: "sku-1" }, { id: "refresh-1" });
  text = await env.exportHistory("refresh-1");
});
afterAll(async () => {
  await env.close();
});

describe("history files", () => {
  it("round-trip Date, Map, Set, BigInt, Uint8Array and undefined exactly", async () => {
    const parsed = parseHistoryFile(text);
    expect(parsed.workflowId).toBe("refresh-1");
    expect(parsed.workflowName).toBe(NAME);
    expect(parsed.events).toEqual(await env.history("refresh-1"));
    const done = parsed.events.find((e) => e.type === "WorkflowCompleted");
    const result = (done as { result: z.infer<typeof rich> }).result;
    expect(result.at).toBeInstanceOf(Date);
    expect(result.tags).toEqual(new Set(["sku-1", "sale"]));
    expect(result.big).toBe(2n ** 70n);
    expect(result.blob).toEqual(new Uint8Array([1, 2, 255]));
    expect("nothing" in result).toBe(true);
  });

  it("keep type, position and a readable note per event", () => {
    const doc = JSON.parse(text) as {
      format: string;
      version: number;
      events: { type: string; note: string }[];
    };
    expect(doc.format).toBe("spool-history");
    expect(doc.version).toBe(1);
    expect(doc.events.map((e) => e.type)).toEqual([
      "WorkflowStarted",
      "ActivityScheduled",
      "ActivityCompleted",
      "TimerStarted",
      "TimerFired",
      "WorkflowCompleted",
    ]);
    expect(doc.events[1]?.note).toBe('activity "catalog.lookup" (step 1)');
  });

  it("reject what is not a readable history, saying why", () => {
    expect(() => parseHistoryFile("nope")).toThrow(HistoryFileError);
    expect(() => parseHistoryFile('{"format":"other"}')).toThrow(/expected \{ "format": "spool-history"/);
    expect(() => parseHistoryFile(text.replace('"version": 1', '"version": 9'))).toThrow(
      /version 9 is not supported/,
    );
    const corrupt = JSON.parse(text) as { events: { body?: string }[] };
    (corrupt.events[1] as { body?: string }).body = "AAAA";
    expect(() => parseHistoryFile(JSON.stringify(corrupt))).toThrow(
      /history file event 2 \(#2, ActivityScheduled\)/,
    );
    expect(() => exportHistory([], { workflowId: "x", runId: "y" })).toThrow(HistoryFileError);
  });
});

describe("replayHistory", () => {
  it("replays the recorded history with the same code, from text, a file path or events", async () => {
    const r = await replayHistory(v1, text);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.status).toBe("completed");
      expect((r.result as z.infer<typeof rich>).counts).toEqual(new Map([["a", 1]]));
      expect(r.newCommands).toEqual([]);
    }
    const file = path.join(os.tmpdir(), `spool-history-${process.pid}.json`);
    fs.writeFileSync(file, text);
    try {
      await expect(assertReplays(v1, file)).resolves.toMatchObject({ ok: true, events: 6 });
    } finally {
      fs.rmSync(file, { force: true });
    }
    const { events, runId } = parseHistoryFile(text);
    await expect(replayHistory(v1, events, { runId })).resolves.toMatchObject({ ok: true });
  });

  it("reports the first divergence of changed code: position, recorded and produced step", async () => {
    const r = await replayHistory(v2, text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("non-determinism");
    expect(r.error).toBeInstanceOf(NonDeterminismError);
    expect(r.seq).toBe(4);
    expect(r.recorded).toBe("timer of 3600000 ms (step 2)");
    expect(r.produced).toBe('activity "mail.notify" (step 2)');
    expect(r.message).toContain("non-determinism at step 2 (history event #4)");
    await expect(assertReplays(v2, text)).rejects.toThrow(NonDeterminismError);
  });

  it("replays a run still in flight and tells what it would do next", async () => {
    const manual = await createTestEnv({ workflows: [v1], activities: [lookup], timeSkipping: "manual" });
    try {
      await manual.start(v1, { sku: "sku-2" }, { id: "refresh-2" });
      await manual.settle();
      const inFlight = await manual.exportHistory("refresh-2");
      const r = await replayHistory(v1, inFlight);
      expect(r).toMatchObject({ ok: true, status: "running", events: 4, newCommands: [] });
      const changed = await replayHistory(v2, inFlight);
      expect(changed).toMatchObject({ ok: false, seq: 4 });
    } finally {
      await manual.close();
    }
  });

  it("refuses a history of another workflow", async () => {
    const other = defineWorkflow({ name: "other.workflow", input, output: z.null() }, async function* () {
      return null;
    });
    await expect(replayHistory(other, text)).rejects.toThrow(ConfigurationError);
  });
});
