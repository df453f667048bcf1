// Guards against lost or doubled work when a worker process is SIGKILLed at any dangerous moment: mid-activity, between steps, inside and after an activation commit, before an ack.
import { afterAll, describe, expect, it } from "vitest";
import { baseSeed, cleanScratch, runCampaign, summary } from "./harness.ts";

afterAll(cleanScratch);

/** Every named fault point, and the moment it stands for. */
export const KILL_POINTS = [
  "activity.start", // an attempt claimed, its function not yet called
  "activity.mid", // the side effect happened, the function has not returned
  "activity.before-complete", // the attempt finished, its completion not yet written
  "workflow.after-claim", // between steps: a workflow task claimed, nothing decided
  "workflow.before-commit", // the activation computed, not committed
  "sqlite.commit.mid", // inside the commit transaction, after the history rows
  "sqlite.commit.end", // inside the commit transaction, after every statement
  "sqlite.commit.after", // committed, before the worker heard of it (the ack)
  "workflow.after-commit", // committed, eager activities claimed but not started
  "sqlite.write.end", // inside any other write (claim, completion, timer, release)
  "sqlite.write.after", // any other write committed, before its caller heard
] as const;

describe("SIGKILL at every fault point (fast tier: 10 kills each)", () => {
  for (const [i, point] of KILL_POINTS.entries()) {
    it(`loses nothing and records nothing twice across 10 kills at ${point}`, async () => {
      const r = await runCampaign({
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
      });
      console.log(summary(r));
      expect(r.injected).toBeGreaterThanOrEqual(10);
    }, 90_000);
  }
});
