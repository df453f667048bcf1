// Bug class: a deploy that reorders, adds, removes or renames steps (or changes their inputs) without patched(), parking every run in flight as blocked.
import { defineActivity, defineWorkflow, deprecatePatch, patched, sleep } from "@spool/core";
import { checkUpgrade, UpgradeCheckError } from "@spool/testing";
import { describe, expect, it } from "vitest";
import { z } from "zod";

const act = (name: string) =>
  defineActivity(
    {
      name,
      input: z.object({ id: z.string(), amount: z.number().optional() }),
      output: z.object({ ok: z.boolean() }),
    },
    async () => ({ ok: true }),
  );
const reserve = act("stock.reserve");
const charge = act("payments.charge");
const chargeRenamed = act("billing.charge");
const fraud = act("risk.fraud-check");
const ship = act("shipping.ship");

const input = z.object({ id: z.string(), total: z.number().int().min(1).max(500) });
const output = z.string();
const NAME = "upgrade.order";

const v1 = defineWorkflow({ name: NAME, input, output, version: "1" }, async function* (i) {
  yield* reserve({ id: i.id });
  yield* charge({ id: i.id, amount: i.total });
  yield* sleep("1h");
  yield* ship({ id: i.id });
  return "done";
});

async function reportOf(p: Promise<unknown>): Promise<UpgradeCheckError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UpgradeCheckError);
  return err as UpgradeCheckError;
}

describe("checkUpgrade", () => {
  it("finds reordered steps", async () => {
    const v2 = defineWorkflow({ name: NAME, input, output, version: "2" }, async function* (i) {
      yield* charge({ id: i.id, amount: i.total });
      yield* reserve({ id: i.id });
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    const err = await reportOf(checkUpgrade(v1, v2, { numRuns: 20 }));
    const kinds = err.report.findings.map((f) => f.kind);
    expect(kinds).toContain("reordered");
    expect(err.message).toContain(
      'reordered: activity "payments.charge" now runs before activity "stock.reserve"',
    );
    expect(err.message).toContain("(1 → 2)");
    expect(err.message).toContain('patched("reorder-payments.charge")');
    expect(err.message).toMatch(
      /recorded: activity "stock\.reserve" \(step 1\)\n\s+produced: activity "payments\.charge" \(step 1\)/,
    );
  });

  it("finds an added step, and accepts it once guarded with patched()", async () => {
    const v2 = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      yield* reserve({ id: i.id });
      yield* fraud({ id: i.id });
      yield* charge({ id: i.id, amount: i.total });
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    const err = await reportOf(checkUpgrade(v1, v2, { numRuns: 20 }));
    expect(err.report.findings.map((f) => f.kind)).toEqual(["added"]);
    expect(err.message).toContain(
      'added: activity "risk.fraud-check" was added before activity "payments.charge"',
    );
    // The first state that breaks: reserve completed and charge scheduled (4 events), charge not done yet.
    expect(err.report.findings[0]?.cut).toBe(4);

    const v2Guarded = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      yield* reserve({ id: i.id });
      if (yield* patched("fraud-check")) yield* fraud({ id: i.id });
      yield* charge({ id: i.id, amount: i.total });
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    const report = await checkUpgrade(v1, v2Guarded, { numRuns: 20 });
    expect(report.ok).toBe(true);
    expect(report.statesChecked).toBeGreaterThan(20);
    expect(String(report)).toContain("no breaking change");
  });

  it("finds a removed step", async () => {
    const v2 = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      yield* reserve({ id: i.id });
      yield* charge({ id: i.id, amount: i.total });
      yield* ship({ id: i.id });
      return "done";
    });
    const err = await reportOf(checkUpgrade(v1, v2, { numRuns: 20 }));
    expect(err.report.findings.map((f) => f.kind)).toContain("removed");
    expect(err.message).toContain("removed: timer of 3600000 ms was removed");
    expect(err.message).toContain('patched("remove-3600000-ms")');
  });

  it("finds a renamed step", async () => {
    const v2 = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      yield* reserve({ id: i.id });
      yield* chargeRenamed({ id: i.id, amount: i.total });
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    const err = await reportOf(checkUpgrade(v1, v2, { numRuns: 20 }));
    expect(err.report.findings.map((f) => f.kind)).toEqual(["renamed"]);
    expect(err.message).toContain(
      'renamed: activity "payments.charge" was replaced by activity "billing.charge"',
    );
    expect(err.message).toContain('keep the name "payments.charge"');
  });

  it("finds a changed activity input in strict mode only", async () => {
    const v2 = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      yield* reserve({ id: i.id });
      yield* charge({ id: i.id, amount: i.total * 100 }); // now in cents
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    const err = await reportOf(checkUpgrade(v1, v2, { numRuns: 20, strict: true }));
    expect(err.report.findings.map((f) => f.kind)).toEqual(["changed-input"]);
    expect(err.message).toContain(
      'changed-input: activity "payments.charge" is now called with a different input',
    );
    // The old history recorded the amount in units; the new code asks for cents at the same step.
    const finding = err.report.findings[0]!;
    const scheduled = finding.example.history.find(
      (e) => e.type === "ActivityScheduled" && e.name === "payments.charge",
    ) as { input: { amount: number } } | undefined;
    expect(scheduled).toBeDefined();
    expect(finding.recorded).toMatch(/activity "payments\.charge" \(step 2\)/);
    expect(finding.produced).toContain(`amount:${scheduled!.input.amount * 100}`);

    const lenient = await checkUpgrade(v1, v2, { numRuns: 20, strict: false });
    expect(lenient.ok).toBe(true);
  });

  it("finds new code that throws on old data", async () => {
    const v2 = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      const r = (yield* reserve({ id: i.id })) as { ok: boolean; lot?: { code: string } };
      const lot = (r.lot as { code: string }).code; // v1 results have no lot
      yield* charge({ id: `${i.id}-${lot}`, amount: i.total });
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    const report = await checkUpgrade(v1, v2, { numRuns: 10, throwOnFailure: false });
    expect(report.ok).toBe(false);
    expect(report.findings.map((f) => f.kind)).toEqual(["error"]);
    expect(String(report)).toContain("the new code throws TypeError");
  });

  it("accepts a deprecated patch once no old run lacks the marker", async () => {
    const v2 = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      yield* reserve({ id: i.id });
      if (yield* patched("fraud-check")) yield* fraud({ id: i.id });
      yield* charge({ id: i.id, amount: i.total });
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    const v3 = defineWorkflow({ name: NAME, input, output }, async function* (i) {
      yield* reserve({ id: i.id });
      yield* deprecatePatch("fraud-check");
      yield* fraud({ id: i.id });
      yield* charge({ id: i.id, amount: i.total });
      yield* sleep("1h");
      yield* ship({ id: i.id });
      return "done";
    });
    expect((await checkUpgrade(v2, v3, { numRuns: 20 })).ok).toBe(true);
  });
});
