// Worker options: each mistake a user can make at `new Worker()` is refused with an
// InvalidOptionsError (still a ConfigurationError) that names the option, before any storage is touched.
import { ConfigurationError, defineActivity, defineWorkflow, InvalidOptionsError } from "@spool/core";
import { SqliteBackend } from "@spool/sqlite";
import { Worker, type WorkerOptions } from "@spool/worker";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";

const echo = defineActivity({ name: "echo", input: z.string(), output: z.string() }, async (s) => s);
const flow = defineWorkflow({ name: "flow", input: z.string(), output: z.string() }, async function* (s) {
  return s;
});

const backends: SqliteBackend[] = [];
afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
});

function backend(): SqliteBackend {
  const b = new SqliteBackend({ path: ":memory:" });
  backends.push(b);
  return b;
}

function refusal(options: unknown): Error {
  try {
    new Worker(options as WorkerOptions);
  } catch (err) {
    return err as Error;
  }
  throw new Error("new Worker() accepted the options");
}

describe("new Worker() options", () => {
  it.each([
    ["no backend", () => ({ workflows: [flow] }), /needs \{ backend \}/],
    ["no definitions", () => ({ backend: backend() }), /at least one workflow or activity/],
    [
      "a workflow not made by defineWorkflow",
      () => ({ backend: backend(), workflows: [{ name: "x" }] }),
      /defineWorkflow/,
    ],
    [
      "an activity registered twice",
      () => ({ backend: backend(), activities: [echo, echo] }),
      /"echo" is registered twice/,
    ],
    [
      "a workflow registered twice",
      () => ({ backend: backend(), workflows: [flow, flow] }),
      /"flow" is registered twice/,
    ],
    [
      "a liveness interval that is not positive",
      () => ({ backend: backend(), workflows: [flow], liveness: { heartbeatIntervalMs: 0 } }),
      /liveness\.heartbeatIntervalMs must be a positive number/,
    ],
  ])("refuses %s with an InvalidOptionsError naming it", (_, options, message) => {
    const err = refusal(options());
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect((err as InvalidOptionsError).code).toBe("SPOOL_INVALID_OPTIONS");
    expect(err.message).toMatch(message);
  });

  it("refuses a second start()", async () => {
    const worker = new Worker({ backend: backend(), workflows: [flow], activities: [echo] });
    await worker.start();
    try {
      await expect(worker.start()).rejects.toThrow(InvalidOptionsError);
    } finally {
      await worker.shutdown();
    }
  });
});
