// Bug class: workflow code that is not deterministic under replay — it would park production runs as blocked — slipping past checkDeterminism.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { all, defineActivity, defineSignal, defineWorkflow, sleep } from "@spool/core";
import { checkDeterminism, DeterminismCheckError } from "@spool/testing";
import { describe, expect, it } from "vitest";
import { z } from "zod";

const THIS_FILE = fileURLToPath(import.meta.url);
const SOURCE = fs.readFileSync(THIS_FILE, "utf8").split("\n");
/** `file:line` of the first line containing `marker`, as reports print it. */
function siteOf(marker: string): string {
  const i = SOURCE.findIndex((l) => l.includes(marker));
  if (i < 0) throw new Error(`marker ${marker} not found`);
  return `${path.relative(process.cwd(), THIS_FILE)}:${i + 1}:`;
}

const charge = defineActivity(
  {
    name: "payments.charge",
    input: z.object({ orderId: z.string(), amount: z.number(), key: z.string().optional() }),
    output: z.object({ chargeId: z.string() }),
    retry: { maxAttempts: 3, initialInterval: "1s" },
  },
  async ({ orderId }) => ({ chargeId: `ch_${orderId}` }),
);
const ship = defineActivity(
  {
    name: "shipping.ship",
    input: z.object({ id: z.string() }),
    output: z.object({ trackingId: z.string() }),
  },
  async ({ id }) => ({ trackingId: `tr_${id}` }),
);
const input = z.object({ orderId: z.string(), amount: z.number().int().min(1).max(100) });
/** When this module was loaded: "deploy time" for the wall-clock test. */
const DEPLOYED_AT = Date.now();

async function failureOf(p: Promise<unknown>): Promise<DeterminismCheckError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeterminismCheckError);
  return err as DeterminismCheckError;
}

describe("checkDeterminism catches", () => {
  it("branching on Date.now(): names the call and its line, and the divergence", async () => {
    const wf = defineWorkflow({ name: "catch.date-now", input, output: z.string() }, async function* (i) {
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount });
      if (Date.now() % 2 === 0) yield* sleep("1h"); // marker:date-now
      yield* ship({ id: i.orderId });
      return chargeId;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 30 }));
    expect(err.message).toContain("Workflow code called Date.now()");
    expect(err.message).toContain(siteOf("marker:date-now"));
    expect(err.message).toContain("Use ctx.now()");
    expect(err.message).toMatch(
      /Reproduce: checkDeterminism\(workflow, \{ \.\.\.options, seed: -?\d+, path: "[\d:]+" \}\)/,
    );
    expect(err.failure.hits.map((h) => h.api)).toContain("Date.now()");
  });

  it("branching on new Date(): the replay at a later wall-clock time takes the other path", async () => {
    const wf = defineWorkflow({ name: "catch.new-date", input, output: z.string() }, async function* (i) {
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount });
      // biome-ignore lint/complexity/useDateNow: the bug under test is precisely `new Date()` in workflow code
      const promoOver = new Date().getTime() - DEPLOYED_AT > 30 * 86_400_000; // marker:new-date
      if (!promoOver) yield* ship({ id: i.orderId });
      return chargeId;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 20 }));
    expect(err.message).toContain("Workflow code called new Date()");
    expect(err.message).toContain(siteOf("marker:new-date"));
    // The replay runs in a "second process" 400 days later: the promotion is over, it does not ship.
    expect(err.failure.divergence?.kind).toBe("divergence");
    expect(err.message).toMatch(/Replay diverged at history event #\d+/);
    expect(err.message).toMatch(/recorded: .*\n\s+produced: /);
  });

  it("Math.random(): names the call, its line and ctx.random()", async () => {
    const wf = defineWorkflow({ name: "catch.math-random", input, output: z.string() }, async function* (i) {
      const pick = Math.random() < 0.5 ? "a" : "b"; // marker:math-random
      if (pick === "a") yield* ship({ id: i.orderId });
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount });
      return chargeId;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 20 }));
    expect(err.message).toContain("Workflow code called Math.random()");
    expect(err.message).toContain(siteOf("marker:math-random"));
    expect(err.message).toContain("ctx.random()");
  });

  it("crypto.randomUUID() passed into an activity: trapped, and a different input in strict mode", async () => {
    const wf = defineWorkflow({ name: "catch.random-uuid", input, output: z.string() }, async function* (i) {
      const key = crypto.randomUUID(); // marker:random-uuid
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount, key });
      return chargeId;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 20, strict: true }));
    expect(err.message).toContain("Workflow code called crypto.randomUUID()");
    expect(err.message).toContain(siteOf("marker:random-uuid"));
    expect(err.message).toContain("ctx.uuid()");
    expect(err.message).toMatch(
      /recorded: activity "payments\.charge" \(step 1\) \(same step, different input \(strict mode\)/,
    );
  });

  it("branching on an environment variable: trapped with the variable's name", async () => {
    const wf = defineWorkflow({ name: "catch.env-var", input, output: z.string() }, async function* (i) {
      if (process.env.SPOOL_TEST_FAST_SHIPPING === "on") yield* ship({ id: i.orderId }); // marker:env-var
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount });
      return chargeId;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 10 }));
    expect(err.message).toContain("Workflow code read process.env.SPOOL_TEST_FAST_SHIPPING");
    expect(err.message).toContain(siteOf("marker:env-var"));
  });

  it("a value flipped between processes (feature flag, config): the second-process replay diverges", async () => {
    // Stands for anything that differs in the process that replays: a config file, a flag, a deploy.
    const config = { gdpr: true };
    const gdprCheck = defineActivity(
      { name: "compliance.gdpr", input: z.object({ id: z.string() }), output: z.boolean() },
      async () => true,
    );
    const wf = defineWorkflow({ name: "catch.flipped-flag", input, output: z.string() }, async function* (i) {
      if (config.gdpr) yield* gdprCheck({ id: i.orderId });
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount }); // marker:after-flag
      return chargeId;
    });
    const err = await failureOf(
      checkDeterminism(wf, {
        numRuns: 10,
        secondProcess: () => {
          config.gdpr = false;
          return () => {
            config.gdpr = true;
          };
        },
      }),
    );
    expect(err.message).toContain("in a second process (options.secondProcess applied)");
    expect(err.message).toContain('recorded: activity "compliance.gdpr" (step 1)');
    expect(err.message).toContain('produced: activity "payments.charge" (step 1)');
    expect(err.message).toContain(siteOf("marker:after-flag"));
    expect(config.gdpr).toBe(true);
  });

  it("a file read in the workflow body: trapped with the call and its line", async () => {
    const file = path.join(os.tmpdir(), `spool-flags-${process.pid}.json`);
    fs.writeFileSync(file, JSON.stringify({ express: false }));
    const wf = defineWorkflow({ name: "catch.file-read", input, output: z.string() }, async function* (i) {
      const flags = JSON.parse(fs.readFileSync(file, "utf8")) as { express: boolean }; // marker:file-read
      if (flags.express) yield* ship({ id: i.orderId });
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount });
      return chargeId;
    });
    try {
      const err = await failureOf(checkDeterminism(wf, { numRuns: 10 }));
      expect(err.message).toContain("Workflow code called fs.readFileSync()");
      expect(err.message).toContain(siteOf("marker:file-read"));
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it("module-level mutable state shared between runs: a replay skips a step", async () => {
    const alreadyCharged = new Set<string>();
    const wf = defineWorkflow({ name: "catch.module-state", input, output: z.string() }, async function* (i) {
      if (!alreadyCharged.has(i.orderId)) {
        yield* charge({ orderId: i.orderId, amount: i.amount });
        alreadyCharged.add(i.orderId);
      }
      const { trackingId } = yield* ship({ id: i.orderId }); // marker:module-state
      return trackingId;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 10 }));
    expect(err.failure.hits).toEqual([]);
    expect(err.message).toContain("Replay diverged at history event #2 (step 1)");
    expect(err.message).toContain('recorded: activity "payments.charge" (step 1)');
    expect(err.message).toContain('produced: activity "shipping.ship" (step 1)');
    expect(err.message).toContain(siteOf("marker:module-state"));
  });

  it("real I/O awaited in the workflow body: reported as an await that is not a step, with the call", async () => {
    const wf = defineWorkflow({ name: "catch.real-io", input, output: z.string() }, async function* (i) {
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount });
      const receipt = await fs.promises.readFile(`/tmp/receipts/${chargeId}`, "utf8"); // marker:real-io
      return receipt;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 5 }));
    expect(err.message).toContain("Workflow code called fs.promises.readFile()");
    expect(err.message).toContain(siteOf("marker:real-io"));
    expect(err.message).toContain("awaited something that is not a Spool step");
    expect(err.message).toContain("Move the I/O into an activity");
    expect(err.failure.divergence?.kind).toBe("await");
  });

  it("setTimeout in the workflow body: trapped, and the await is reported", async () => {
    const wf = defineWorkflow({ name: "catch.set-timeout", input, output: z.string() }, async function* (i) {
      const { chargeId } = yield* charge({ orderId: i.orderId, amount: i.amount });
      await new Promise((resolve) => setTimeout(resolve, 50)); // marker:set-timeout
      return chargeId;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 5 }));
    expect(err.message).toContain("Workflow code called setTimeout()");
    expect(err.message).toContain(siteOf("marker:set-timeout"));
    expect(err.message).toContain("yield* sleep(");
    expect(err.message).toContain("awaited something that is not a Spool step");
  });

  it("iteration order that depends on completion timing: a replay sees other promises settled", async () => {
    // Lookups run as plain promises beside the engine; which have settled by the time the timer
    // fires depends on how long the worker took between activations, which replay does not repeat.
    const lookup = async (turns: number) => {
      for (let k = 0; k < turns; k++) await null;
    };
    const wf = defineWorkflow(
      {
        name: "catch.completion-order",
        input: z.object({ ids: z.array(z.string()).min(2).max(4) }),
        output: z.number(),
      },
      async function* (i) {
        const ready: string[] = [];
        i.ids.forEach((id, n) => {
          void lookup(500 * (i.ids.length - n)).then(() => ready.push(id));
        });
        yield* sleep("1m");
        for (const id of ready) yield* ship({ id }); // marker:ready-order
        return ready.length;
      },
    );
    const err = await failureOf(checkDeterminism(wf, { numRuns: 10 }));
    expect(err.failure.hits).toEqual([]);
    expect(err.message).toMatch(/Replay diverged at history event #\d+/);
    expect(err.message).toMatch(/recorded: activity "shipping\.ship"/);
    expect(err.message).toContain("World (shrunk):");
    expect(err.message).toMatch(/timer \(step 1, 1m\) fires/);
  });

  it("reports the shrunk world as a readable script", async () => {
    const approve = defineSignal("order.approve", z.object({ by: z.string() }));
    const wf = defineWorkflow(
      { name: "catch.script", input, output: z.string(), signals: [approve] },
      async function* (i) {
        const [{ chargeId }] = yield* all([
          charge({ orderId: i.orderId, amount: i.amount }),
          ship({ id: i.orderId }),
        ]);
        const decision = yield* approve.wait({ timeout: "1d" });
        if (decision && Math.random() > 2) return "never"; // marker:script-random
        return chargeId;
      },
    );
    const err = await failureOf(checkDeterminism(wf, { numRuns: 30 }));
    expect(err.message).toContain(siteOf("marker:script-random"));
    expect(err.message).toContain("World (shrunk):");
    expect(err.message).toMatch(/input: \{orderId:"[^"]*",amount:\d+\}/);
    expect(err.message).toMatch(/activity "payments\.charge" \(step 1\): .*completes/);
    expect(err.message).toMatch(/signal "order\.approve" arrives with \{by:/);
    expect(err.message).toContain("Recorded history:");
  });

  it("fails when generated faults never reach the workflow", async () => {
    const approve = defineSignal("order.approve", z.object({ by: z.string() }));
    const wf = defineWorkflow({ name: "catch.no-coverage", input, output: z.number() }, async function* (i) {
      return i.amount;
    });
    const err = await failureOf(checkDeterminism(wf, { numRuns: 10, signals: [approve] }));
    expect(err.failure.kind).toBe("coverage");
    expect(err.message).toContain('signals "order.approve" were generated but none reached an open run');
    await expect(
      checkDeterminism(wf, { numRuns: 10, signals: [approve], requireCoverage: false }),
    ).resolves.toMatchObject({
      ok: true,
    });
  });
});
