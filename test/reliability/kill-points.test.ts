// Guards against lost or doubled work when a worker process is SIGKILLed at any dangerous moment: mid-activity, between steps, inside and after an activation commit, before an ack.
import { afterAll, describe, expect, it } from "vitest";
import { baseSeed, cleanScratch, KILL_POINTS, lanes, runCampaign, summary } from "./harness.ts";

afterAll(cleanScratch);

// Two campaigns at a time (each runs up to three worker processes): both CPUs busy, not swamped.
const lane = lanes(2);

describe("SIGKILL at every fault point (fast tier: 10 kills each)", () => {
  for (const [i, point] of KILL_POINTS.entries()) {
    it.concurrent(`loses nothing and records nothing twice across 10 kills at ${point}`, async () => {
      const r = await lane(() =>
        runCampaign({
          name: `kill-${point}`,
          point,
          faults: 10,
          concurrency: 2,
          hitMax: point.startsWith("sqlite.write") ? 12 : 4,
          initialRuns: 8,
          runsPerFault: 1,
          maxRuns: 16,
          steps: 3,
          seed: baseSeed + i * 1000,
        }),
      );
      console.log(summary(r));
      expect(r.injected).toBeGreaterThanOrEqual(10);
    }, 90_000);
  }
});
