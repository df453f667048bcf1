/**
 * `spool start <workflow> --module <defs> [--input json] [--id workflowId] [--json]`: starts a run
 * of a workflow the module exports. The module's definition checks the input against the
 * workflow's schema before anything is written; an id that already has a run attaches to it, as
 * `client.start` does.
 */
import { Client } from "@spool/client";
import type { Backend } from "@spool/core";
import { type CliIo, toJson, UsageError } from "../io.ts";
import { loadDefinitions } from "../load-module.ts";

/** Starts the run and prints its workflow id and run id. */
export async function startCommand(
  backend: Backend,
  io: CliIo,
  workflowName: string,
  o: { module?: string; input?: string; id?: string; json?: boolean },
): Promise<number> {
  if (!o.module) throw new UsageError("spool start needs --module <file exporting the workflow definition>");
  let input: unknown = {};
  if (o.input !== undefined) {
    try {
      input = JSON.parse(o.input);
    } catch (err) {
      throw new UsageError(`--input is not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  const { workflows } = await loadDefinitions(o.module);
  const def = workflows.find((w) => w.name === workflowName);
  if (!def) {
    throw new UsageError(
      `module ${o.module} does not export workflow "${workflowName}" (it exports: ${workflows.map((w) => w.name).join(", ") || "none"})`,
    );
  }
  const client = new Client({ backend, workflows });
  // Read before starting, to say whether the id already had this run (start attaches to it).
  const before = o.id !== undefined ? await backend.inspect.getLatestRun(o.id) : null;
  const handle = await client.start(def, input as never, o.id !== undefined ? { id: o.id } : {});
  const d = await handle.describe();
  const attached = before !== null && before.runId === d.runId;
  if (o.json) {
    io.out(
      toJson({
        workflowId: d.workflowId,
        runId: d.runId,
        workflowName: d.workflowName,
        status: d.status,
        created: !attached,
      }),
    );
    return 0;
  }
  io.out(
    `${attached ? "attached to existing run of" : "started"} ${d.workflowName} as ${d.workflowId} (run ${d.runId}, ${d.status})`,
  );
  return 0;
}
