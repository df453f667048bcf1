/**
 * Why a test environment's wait failed, in words a test author can act on: the awaited run is
 * blocked (its code cannot replay its history), or nothing progressed — then the report lists the
 * open runs, what each waits for, and the usual causes (an unregistered definition, a mock that
 * never settles).
 */
import type { Client } from "@spool/client";
import { DataConverter, decodeHistory } from "@spool/core";
import type { SqliteBackend } from "@spool/sqlite";
import type { Worker } from "@spool/worker";
import { TestEnvError } from "./errors.ts";
import { PendingSteps } from "./pending-steps.ts";

const dc = new DataConverter();

/** Throws a TestEnvError when the latest run of `workflowId` is blocked; returns otherwise. */
export async function throwIfBlocked(
  backend: SqliteBackend,
  client: Client,
  workflowId: string,
): Promise<void> {
  const run = await backend.inspect.getLatestRun(workflowId);
  if (run?.status !== "blocked") return;
  const d = await client.getHandle(workflowId, run.runId).describe();
  throw new TestEnvError(
    `run "${workflowId}" (${run.workflowName}) is blocked: ${d.blockedReason ?? "a replay error"}. A worker parks a ` +
      "run when its code cannot replay the history (non-determinism) or throws a code error; fix the code or " +
      "guard the change with patched().",
    { cause: d.error ?? undefined },
  );
}

/** What a stalled wait was doing, for {@link stallReport}. */
export interface StallContext {
  backend: SqliteBackend;
  /** The worker running now. */
  worker: Worker;
  /** Virtual time now. */
  now: number;
  timeSkipping: "auto" | "manual";
  /** What the test was waiting for, e.g. `the result of "order-1"`. */
  what: string;
  stallMs: number;
}

/** The message of the TestEnvError a stalled wait throws: the open runs and what each waits for. */
export async function stallReport(c: StallContext): Promise<string> {
  const { backend, now, what, stallMs } = c;
  const lines = [
    `test environment: nothing progressed for ${stallMs} ms (real time) while waiting for ${what}.`,
    `Virtual time is ${new Date(now).toISOString()}; time skipping is ${
      c.timeSkipping === "auto" ? "on" : "off (use env.advance())"
    }.`,
  ];
  const page = await backend.inspect.listRuns({ status: ["running", "blocked"] }, { limit: 20 });
  if (page.runs.length === 0) lines.push("No run is open.");
  else lines.push("Open runs:");
  for (const run of page.runs) {
    lines.push(
      `  - "${run.workflowId}" (${run.workflowName}, run ${run.runId}): ${run.status}, ${run.lastSeq} event(s)`,
    );
    if (run.blockedReason) lines.push(`      blocked: ${run.blockedReason}`);
    try {
      const raws = await backend.inspect.getHistory(run.runId);
      const events = await decodeHistory(raws, dc, run.runId);
      for (const l of PendingSteps.of(events).describe(now)) lines.push(`      waits for: ${l}`);
    } catch (err) {
      lines.push(`      (history unreadable: ${String(err)})`);
    }
  }
  const s = c.worker.stats();
  if (s.runningActivities > 0) {
    lines.push(
      `The worker has ${s.runningActivities} activity attempt(s) running: a mock or activity that never settles?`,
    );
  }
  const next = await backend.nextWakeAt();
  if (next !== null && next <= now) {
    lines.push(
      "Some work is ready that the worker does not take: a workflow or activity that is not registered with the env?",
    );
  }
  lines.push(
    "Signal the run, register the missing definition, or raise stallTimeoutMs for slow real activities.",
  );
  return lines.join("\n");
}
