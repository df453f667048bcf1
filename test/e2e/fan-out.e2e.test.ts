// Guards fan-out throughput bugs that are behaviour, not timing: a workflow task racing an eager completion of its own run (replayed, then discarded by the seq guard), and activity claims trickling in small rounds while slots are free.

import { all, ConflictError, defineActivity, defineWorkflow } from "spool";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type E2E, e2e } from "./support.ts";

let env: E2E | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const step = defineActivity(
  { name: "fan.step", input: z.object({ i: z.number() }), output: z.number() },
  async ({ i }) => i,
);

const pair = defineWorkflow(
  { name: "fan.pair", input: z.object({}), output: z.number() },
  async function* () {
    const [a, b] = yield* all([step({ i: 1 }), step({ i: 2 })]);
    return a + b;
  },
);

const wide = defineWorkflow(
  { name: "fan.wide", input: z.object({ n: z.number() }), output: z.number() },
  async function* ({ n }) {
    const results = yield* all(Array.from({ length: n }, (_, i) => step({ i })));
    return results.length;
  },
);

/** Counts commitActivation calls the backend rejected with ConflictError (nothing written, work redone). */
function countConflicts(e: E2E): { conflicts: number } {
  const counter = { conflicts: 0 };
  const commit = e.backend.commitActivation.bind(e.backend);
  e.backend.commitActivation = async (req) => {
    try {
      return await commit(req);
    } catch (err) {
      if (ConflictError.is(err)) counter.conflicts++;
      throw err;
    }
  };
  return counter;
}

describe("fan-out", () => {
  it("a workflow task claimed while an eager completion of its run is committing continues from that commit", async () => {
    // The first completion takes the eager path and is held just before its commit; the second
    // lands in the inbox and wakes the workflow task; once that task is claimed (its run record
    // read before the eager commit), the eager commit goes ahead. The task must then continue
    // from the eager commit's executor; replaying history as of its claim loses the seq guard.
    let release = () => {};
    const holding = new Promise<void>((r) => {
      release = r;
    });
    let claims = 0; // the first claim starts the run; the second is the task the inbox woke
    let held = false;
    env = await e2e({
      workflows: [pair],
      activities: [step],
      faultHook: async (point, info) => {
        if (point === "workflow.after-claim" && ++claims === 2) release();
        if (point === "workflow.before-commit" && info.eager === true && !held && claims < 2) {
          held = true;
          await holding;
        }
      },
    });
    const counter = countConflicts(env);
    const h = await env.client.start(pair, {}, { id: "pair" });
    expect(await h.result({ timeout: 10_000 })).toBe(3);
    expect(held, "the eager commit was held until the workflow task was claimed").toBe(true);
    expect(claims).toBeGreaterThanOrEqual(2);
    expect(counter.conflicts, "no activation was computed and then discarded").toBe(0);
    const types = (await h.history()).map((e) => e.type);
    expect(types.filter((t) => t === "ActivityCompleted")).toHaveLength(2);
    expect(types.at(-1)).toBe("WorkflowCompleted");
  });

  it("activity tasks made ready at once are claimed in rounds that grow past 16, never past the free slots", async () => {
    const max = 200;
    env = await e2e({
      workflows: [wide],
      activities: [step],
      maxConcurrentActivities: max,
      eagerActivities: 0,
    });
    // Claims issued together share one transaction: the largest number in flight at once is the
    // largest round.
    let inFlight = 0;
    let largestRound = 0;
    let mostRunning = 0;
    const claim = env.backend.claimActivityTask.bind(env.backend);
    env.backend.claimActivityTask = async (req) => {
      inFlight++;
      largestRound = Math.max(largestRound, inFlight);
      try {
        return await claim(req);
      } finally {
        inFlight--;
        mostRunning = Math.max(mostRunning, env?.worker.stats().runningActivities ?? 0);
      }
    };
    const h = await env.client.start(wide, { n: 300 }, { id: "wide" });
    expect(await h.result({ timeout: 30_000 })).toBe(300);
    expect(largestRound).toBeGreaterThan(16);
    expect(largestRound).toBeLessThanOrEqual(max);
    expect(mostRunning).toBeLessThanOrEqual(max);
    const completed = (await h.history()).filter((e) => e.type === "ActivityCompleted");
    expect(new Set(completed.map((e) => e.step)).size).toBe(300);
  });
});
