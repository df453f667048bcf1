import { Client, defineActivity, defineWorkflow, type Logger, Worker } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { closeAdmin } from "../postgres/pg-harness.ts";
import { storeCases, waitFor } from "./support.ts";

const attempts = new Map<string, number>();
/** Fails every attempt; retries are unlimited (the default). */
const flaky = defineActivity(
  { name: "vis.flaky", input: z.object({}), output: z.number() },
  async (_input, ctx) => {
    attempts.set(ctx.info.workflowId, ctx.attempt);
    throw new Error(`upstream 503 on attempt ${ctx.attempt}`);
  },
);
const flow = defineWorkflow(
  { name: "vis.flow", input: z.object({ intervalMs: z.number() }), output: z.number() },
  async function* ({ intervalMs }) {
    return yield* flaky({}, { retry: { initialInterval: intervalMs, backoffCoefficient: 1 } });
  },
);

interface Line {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown>;
}
function recordingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: Line["level"]) =>
    (message: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, message, fields });
  return { logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, lines };
}

// A SQLite file and PostgreSQL: the two stores with separate processes in mind.
const backends = storeCases(["sqlite-file", "postgres"]);
afterAll(closeAdmin);

describe.each(backends)("a step failing for ever is visible (%s)", (name, open) => {
  it("WARN from the 3rd consecutive failure and every Nth after, naming activity, attempt, error and next attempt", async () => {
    const { backend, teardown } = await open();
    const { logger, lines } = recordingLogger();
    const worker = new Worker({
      backend,
      workflows: [flow],
      activities: [flaky],
      logger,
      pollIntervalMs: { min: 5, max: 20 },
      activityFailureWarn: { after: 3, every: 2 },
    });
    try {
      await worker.start();
      const started = lines.find((l) => l.message === "worker started");
      expect(started?.level).toBe("info");
      expect(started?.fields).toMatchObject({ workflows: ["vis.flow"], activities: ["vis.flaky"] });

      const id = `vis-warn-${name}`;
      await new Client({ backend }).start(flow, { intervalMs: 5 }, { id });
      await waitFor(() => (attempts.get(id) ?? 0) >= 8, 30_000);
      await worker.shutdown();
      const failures = lines.filter((l) => l.message === "activity attempt failed; retrying");
      const warned = failures.filter((l) => l.level === "warn").map((l) => l.fields.attempt);
      const quiet = failures.filter((l) => l.level === "debug").map((l) => l.fields.attempt);
      expect(warned.slice(0, 3)).toEqual([3, 5, 7]);
      expect(quiet.slice(0, 3)).toEqual([1, 2, 4]);
      const w = failures.find((l) => l.level === "warn")!.fields;
      expect(w).toMatchObject({
        activity: "vis.flaky",
        workflowId: id,
        step: 1,
        attempt: 3,
        maxAttempts: "unlimited",
        error: "Error: upstream 503 on attempt 3",
      });
      expect(Date.parse(w.nextAttemptAt as string)).toBeGreaterThan(0);
    } finally {
      await worker.shutdown();
      await teardown();
    }
  });

  it("describe(), list() and stats show the attempt, last error and next attempt of a step in back-off", async () => {
    const { backend, teardown } = await open();
    const worker = new Worker({
      backend,
      workflows: [flow],
      activities: [flaky],
      logger: recordingLogger().logger,
      pollIntervalMs: { min: 5, max: 20 },
    });
    try {
      await worker.start();
      const client = new Client({ backend });
      const id = `vis-describe-${name}`;
      const handle = await client.start(flow, { intervalMs: 3_600_000 }, { id });
      await waitFor(async () => (await handle.describe()).pendingActivities[0]?.state === "backoff", 30_000);
      const d = await handle.describe();
      expect(d.status).toBe("running");
      expect(d.pendingActivities).toEqual([
        {
          step: 1,
          activityName: "vis.flaky",
          attempt: 1,
          state: "backoff",
          lastError: { name: "Error", message: "upstream 503 on attempt 1" },
          nextAttemptAt: expect.any(Date),
          scheduledAt: expect.any(Date),
        },
      ]);
      expect(d.pendingActivities[0]!.nextAttemptAt!.getTime() - Date.now()).toBeGreaterThan(50 * 60_000);
      const listed = await client.list({ workflowId: id });
      expect(listed.runs[0]!.pendingActivities[0]).toMatchObject({ attempt: 1, state: "backoff" });
      expect((await backend.inspect.stats()).backoffActivityTasks).toBe(1);
    } finally {
      await worker.shutdown();
      await teardown();
    }
  });
});
