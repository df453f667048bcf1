// Guards against losses that only show under load: hundreds of concurrent ten-step workflows (thousands in the soak tier) while worker processes are SIGKILLed at random fault points all complete, with nothing lost or recorded twice.
import { afterAll, describe, expect, it } from "vitest";
import { baseSeed, cleanScratch, KILL_POINTS, runCampaign, summary } from "./harness.ts";

afterAll(cleanScratch);

describe("load with random worker kills (fast tier: 200 workflows)", () => {
  it("200 concurrent workflows of 10 steps, worker processes killed at random points: all complete", async () => {
    const r = await runCampaign({
      name: "load-200",
      point: "",
      points: KILL_POINTS,
      faults: 6,
      concurrency: 2,
      hitMax: 150,
      initialRuns: 200,
      runsPerFault: 0,
      maxRuns: 200,
      steps: 7, // + a two-way fan-out + a child's step = 10 activity steps
      initialSignals: 100,
      signalsPerFault: 20,
      seed: baseSeed + 77,
      roundTimeoutMs: 8000,
      cleanWorkers: 2,
      finishTimeoutMs: 90_000,
    });
    console.log(summary(r));
    expect(r.injected).toBeGreaterThanOrEqual(6);
    expect(r.runs).toBe(400);
  }, 150_000);
});
