/**
 * `spool query <workflowId> <query> --module <defs>`: answers a query from the run's current state.
 * The CLI holds no live worker, so the answer comes from replaying the run's recorded history with
 * the module's workflow code (what `handle.query` does when no worker in its process has the run):
 * the state as of the last recorded event, with nothing written.
 */
import { Client } from "@spool/client";
import { type Backend, defineQuery } from "@spool/core";
import { type CliIo, toJson, UsageError } from "../io.ts";
import { loadDefinitions } from "../load-module.ts";

/** Prints the query's answer as JSON. */
export async function queryCommand(
  backend: Backend,
  io: CliIo,
  workflowId: string,
  queryName: string,
  o: { module?: string },
): Promise<number> {
  if (!o.module) throw new UsageError("spool query needs --module <file exporting the workflow definition>");
  const { workflows } = await loadDefinitions(o.module);
  const handle = new Client({ backend, workflows }).getHandle(workflowId);
  const { workflowName } = await handle.describe();
  if (!workflows.some((w) => w.name === workflowName)) {
    throw new UsageError(
      `module ${o.module} does not export workflow "${workflowName}" (it exports: ${workflows.map((w) => w.name).join(", ") || "none"})`,
    );
  }
  const answer = await handle.query(defineQuery(queryName));
  io.out(answer === undefined ? "null" : toJson(answer));
  return 0;
}
