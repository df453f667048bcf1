/**
 * Commands that change state or run code: signal, cancel, terminate, export, replay, worker.
 */
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Client } from "@spool/client";
import {
  type Backend,
  defineSignal,
  exportHistory,
  NonDeterminismError,
  parseHistoryFile,
  RunNotFoundError,
  replay,
  type SignalDefinition,
} from "@spool/core";
import { consoleLogger, type LogLevel, Worker } from "@spool/worker";
import { z } from "zod";
import { type CliIo, UsageError } from "../io.ts";
import { loadDefinitions } from "../load-module.ts";

/**
 * `spool signal <workflowId> <signal> [--payload json] [--request-id key] [--module defs]`: sends a
 * signal to the open run. With `--module`, the payload is checked against the signal's schema and
 * the signal must be one the workflow declares; without it the payload is sent as given.
 */
export async function signalCommand(
  backend: Backend,
  io: CliIo,
  workflowId: string,
  name: string | undefined,
  o: { payload?: string; "request-id"?: string; module?: string },
): Promise<number> {
  if (!name) {
    throw new UsageError(
      `spool signal needs a workflow id and a signal name, e.g. spool signal ${workflowId} approve --payload '{"by":"ana"}'`,
    );
  }
  let payload: unknown = {};
  if (o.payload !== undefined) {
    try {
      payload = JSON.parse(o.payload);
    } catch (err) {
      throw new UsageError(`--payload is not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  const workflows = o.module ? (await loadDefinitions(o.module)).workflows : [];
  const client = new Client({ backend, workflows });
  const handle = client.getHandle(workflowId);
  let signal: SignalDefinition = defineSignal(name, z.unknown());
  if (o.module) {
    const { workflowName } = await handle.describe();
    const def = workflows.find((w) => w.name === workflowName);
    if (!def) {
      throw new UsageError(
        `module ${o.module} does not export workflow "${workflowName}" (it exports: ${workflows.map((w) => w.name).join(", ") || "none"})`,
      );
    }
    const declared = def.signals?.find((s) => s.name === name);
    if (declared) signal = declared;
  }
  const requestId = o["request-id"];
  await handle.signal(signal, payload, requestId !== undefined ? { requestId } : {});
  io.out(
    `signal "${name}" sent to ${workflowId}${requestId !== undefined ? ` (request id ${requestId})` : ""}`,
  );
  if (!o.module) {
    // Without the code, neither the name nor the payload could be checked here. The worker checks
    // both at delivery; a signal it refuses is recorded as SignalRejected, never delivered.
    io.err(
      `note: not checked against the workflow's code (pass --module to check the signal name and payload now); ` +
        `a worker records a signal the workflow refuses as SignalRejected: see spool history ${workflowId}`,
    );
  }
  return 0;
}

/** `spool cancel <workflowId>`: requests cancellation; a finished run is a no-op that says so. */
export async function cancelCommand(
  backend: Backend,
  io: CliIo,
  workflowId: string,
  o: { reason?: string },
): Promise<number> {
  const r = await new Client({ backend }).getHandle(workflowId).cancel(o.reason ?? "cancelled from the CLI");
  io.out(
    r.outcome === "requested"
      ? `cancellation requested for ${workflowId}`
      : `${workflowId} had already finished (${r.status}); nothing to cancel`,
  );
  return 0;
}

/**
 * `spool terminate <workflowId>`: ends the open run at once, without running workflow code. A run
 * that has already closed is a no-op that says so (as `spool cancel` does), not an error.
 */
export async function terminateCommand(
  backend: Backend,
  io: CliIo,
  workflowId: string,
  o: { reason?: string },
): Promise<number> {
  const handle = new Client({ backend }).getHandle(workflowId);
  try {
    const { runId } = await handle.terminate(o.reason ?? "terminated from the CLI");
    io.out(`terminated ${workflowId} (run ${runId})`);
  } catch (err) {
    if (!RunNotFoundError.is(err)) throw err;
    // No open run: either there is no run at all (describe says so with RunNotFoundError), or
    // the latest one has closed.
    const d = await handle.describe();
    if (d.status === "running" || d.status === "blocked") throw err;
    io.out(`${workflowId} is already closed (${d.status}, run ${d.runId}); nothing to terminate`);
  }
  return 0;
}

/** `spool export <workflowId>`: writes the run's history as a history file. */
export async function exportCommand(
  backend: Backend,
  io: CliIo,
  workflowId: string,
  o: { run?: string; out?: string },
): Promise<number> {
  const handle = new Client({ backend }).getHandle(workflowId, o.run);
  const d = await handle.describe();
  const text = exportHistory(await handle.history(), {
    workflowId: d.workflowId,
    runId: d.runId,
    workflowName: d.workflowName,
  });
  if (o.out) {
    writeFileSync(o.out, text);
    io.out(`wrote ${d.historyLength} events of ${workflowId} (run ${d.runId}) to ${o.out}`);
  } else {
    io.out(text);
  }
  return 0;
}

/**
 * `spool replay <file> --module <defs>`: replays a history file with the current code. Exit 0
 * when it replays cleanly, 1 with the divergence when it does not (a pre-deploy check).
 */
export async function replayCommand(
  io: CliIo,
  file: string,
  o: { module?: string; strict?: boolean },
): Promise<number> {
  if (!o.module)
    throw new UsageError("spool replay needs --module <file exporting the workflow definitions>");
  const parsed = parseHistoryFile(await readFile(file, "utf8"));
  const { workflows } = await loadDefinitions(o.module);
  const def = workflows.find((w) => w.name === parsed.workflowName);
  if (!def) {
    throw new UsageError(
      `module ${o.module} does not export workflow "${parsed.workflowName}" (it exports: ${workflows.map((w) => w.name).join(", ") || "none"})`,
    );
  }
  try {
    const r = await replay(def, undefined, parsed.events, {
      workflowId: parsed.workflowId,
      runId: parsed.runId,
      strict: o.strict,
    });
    io.out(
      `ok: ${parsed.events.length} events of ${parsed.workflowId} replay with the current code (status ${r.status}` +
        `${r.newEvents.length > 0 ? `, ${r.newEvents.length} new command(s) beyond the history` : ""})`,
    );
    return 0;
  } catch (err) {
    if (NonDeterminismError.is(err)) {
      io.err(`DIVERGES at step ${err.step}, history event #${err.seq}`);
      io.err(`  recorded: ${err.recorded}`);
      io.err(`  produced: ${err.produced}`);
      io.err(err.message);
      return 1;
    }
    io.err(`replay failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    return 1;
  }
}

/**
 * `spool worker --module <defs> [--concurrency n] [--log-level level]`: runs a worker until
 * SIGTERM/SIGINT, then drains. The flags were checked by main (a concurrency of 0 or less would
 * start a worker that never runs anything).
 */
export async function workerCommand(
  backend: Backend,
  io: CliIo,
  o: { module?: string; concurrency?: string; "log-level"?: string },
): Promise<number> {
  if (!o.module) throw new UsageError("spool worker needs --module <file exporting definitions>");
  const defs = await loadDefinitions(o.module);
  const concurrency = o.concurrency === undefined ? undefined : Number(o.concurrency);
  const worker = new Worker({
    backend,
    ...defs,
    logger: consoleLogger((o["log-level"] ?? "info") as LogLevel),
    ...(concurrency !== undefined ? { maxConcurrentActivities: concurrency } : {}),
  });
  await worker.start();
  const names = (list: { name: string }[]) => list.map((d) => d.name).join(", ") || "none";
  io.out(
    `worker ${worker.workerId} running ${defs.workflows.length} workflow(s) (${names(defs.workflows)}) and ` +
      `${defs.activities.length} activity(ies) (${names(defs.activities)}); Ctrl+C drains and stops`,
  );
  await new Promise<void>((resolve) => worker.handleSignals(resolve));
  io.out("worker stopped");
  return 0;
}
