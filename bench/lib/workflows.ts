/**
 * The workflows every scenario measures. The unit of work is the same everywhere: a no-op
 * activity that returns a small object, so the figures measure Spool (recording, replay, claiming,
 * commits), not the work inside the steps.
 */
import { type ActivityInfo, all, defineActivity, defineSignal, defineWorkflow } from "spool";
import { z } from "zod";

/**
 * A hook the activity calls with its info when set; the sequential scenario uses it to time steps
 * from inside the activity. Null (the default) costs one property read per step.
 */
export const stepProbe: { onStep: ((info: ActivityInfo) => void) | null } = { onStep: null };

/** The no-op step: returns a small object. */
export const noop = defineActivity(
  {
    name: "bench.noop",
    input: z.object({ i: z.number() }),
    output: z.object({ ok: z.boolean(), i: z.number() }),
  },
  async ({ i }, ctx) => {
    stepProbe.onStep?.(ctx.info);
    return { ok: true, i };
  },
);

/** The benchmark workflow: `steps` sequential no-op steps (10 in the throughput scenarios). */
export const stepsWorkflow = defineWorkflow(
  {
    name: "bench.steps",
    input: z.object({ steps: z.number().int().min(0) }),
    output: z.number(),
  },
  async function* (input) {
    let sum = 0;
    for (let i = 0; i < input.steps; i++) sum += (yield* noop({ i })).i;
    return sum;
  },
);

/** One workflow running `n` no-op activities at once through `all`. */
export const fanOutWorkflow = defineWorkflow(
  {
    name: "bench.fanOut",
    input: z.object({ n: z.number().int().min(0) }),
    output: z.number(),
  },
  async function* (input) {
    const results = yield* all(Array.from({ length: input.n }, (_, i) => noop({ i })));
    return results.length;
  },
);

/** Wakes a parked run of `parkedWorkflow`. */
export const release = defineSignal("bench.release", z.object({}));

/** One step, then suspended on a signal: what a run waiting for a human looks like. */
export const parkedWorkflow = defineWorkflow(
  {
    name: "bench.parked",
    input: z.object({ id: z.number() }),
    output: z.number(),
    signals: [release],
  },
  async function* (input) {
    const { i } = yield* noop({ i: input.id });
    yield* release.wait();
    return i;
  },
);

/** The determinism-check subject: 20 sequential no-op steps. */
export const twentyStepWorkflow = defineWorkflow(
  {
    name: "bench.twentySteps",
    input: z.object({ orderId: z.string() }),
    output: z.number(),
  },
  async function* () {
    let sum = 0;
    for (let i = 0; i < 20; i++) sum += (yield* noop({ i })).i;
    return sum;
  },
);
