/**
 * The `spool` command: inspect runs, export and replay histories, signal and cancel runs, run a worker.
 */
import { parseArgs } from "node:util";
import { SpoolError } from "@spool/core";
import {
  cancelCommand,
  exportCommand,
  replayCommand,
  signalCommand,
  terminateCommand,
  workerCommand,
} from "./commands/act.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { describeCommand, historyCommand, listCommand, statsCommand } from "./commands/inspect.ts";
import { type CliIo, processIo, UsageError } from "./io.ts";
import { openBackend } from "./open-backend.ts";

/** The help text. */
export const USAGE = `usage: spool <command> [options]

commands:
  list                     runs, newest first  [--status running,blocked] [--workflow name] [--id-prefix p]
                           [--limit n] [--cursor c] [--json]
  describe <workflowId>    status, ids, version and error of the latest run  [--run id] [--json]
  history <workflowId>     the run's history events  [--run id] [--json]
  export <workflowId>      the run's history file (replayHistory and 'spool replay' read it)  [--run id] [--out file]
  replay <file>            replay a history file with the current code; exit 1 on divergence
                           --module <file exporting the workflow>  [--strict]
  signal <workflowId> <name>  send a signal to the open run  [--payload json] [--request-id key]
                           [--module <file>: check the payload against the workflow's signal schema]
  cancel <workflowId>      request cancellation: the workflow runs its clean-up  [--reason text]
  terminate <workflowId>   end the open run at once without running its code (for blocked runs)  [--reason text]
  stats                    run and queue counts  [--json]
  doctor                   check the store: SQLite quick_check and every row's checksum; exit 1 if damaged  [--json]
  worker                   run a worker for a module's definitions until Ctrl+C  --module <file> [--concurrency n]

connection: --db <file> (SQLite; default ./spool.db or $SPOOL_DB) | --pg <url> [--schema name] ($SPOOL_PG_URL)`;

/** Runs the CLI with `argv` (without node and script); resolves the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  const [command, arg, arg2] = positionals;
  if (o.help || !command) {
    io.out(USAGE);
    return command || o.help ? 0 : 2;
  }
  const needArg = (what: string) => {
    if (!arg) throw new UsageError(`spool ${command} needs ${what}`);
    return arg;
  };
  try {
    if (command === "replay") return await replayCommand(io, needArg("a history file"), o);
    const backend = await openBackend(o);
    try {
      switch (command) {
        case "list":
          return await listCommand(backend, io, { ...o, idPrefix: o["id-prefix"] });
        case "describe":
          return await describeCommand(backend, io, needArg("a workflow id"), o);
        case "history":
          return await historyCommand(backend, io, needArg("a workflow id"), o);
        case "export":
          return await exportCommand(backend, io, needArg("a workflow id"), o);
        case "signal":
          return await signalCommand(backend, io, needArg("a workflow id"), arg2, o);
        case "cancel":
          return await cancelCommand(backend, io, needArg("a workflow id"), o);
        case "terminate":
          return await terminateCommand(backend, io, needArg("a workflow id"), o);
        case "stats":
          return await statsCommand(backend, io, o);
        case "doctor":
          return await doctorCommand(backend, io, o);
        case "worker":
          return await workerCommand(backend, io, o);
        default:
          throw new UsageError(`unknown command "${command}"`);
      }
    } finally {
      await backend.close();
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(
      SpoolError.is(err) ? `${err.name}: ${err.message}` : String(err instanceof Error ? err.stack : err),
    );
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      db: { type: "string" },
      pg: { type: "string" },
      schema: { type: "string" },
      run: { type: "string" },
      status: { type: "string" },
      workflow: { type: "string" },
      "id-prefix": { type: "string" },
      limit: { type: "string" },
      cursor: { type: "string" },
      json: { type: "boolean" },
      out: { type: "string" },
      module: { type: "string" },
      strict: { type: "boolean" },
      reason: { type: "string" },
      payload: { type: "string" },
      "request-id": { type: "string" },
      concurrency: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
