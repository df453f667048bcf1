/**
 * The `spool` command: inspect runs, export and replay histories, start, signal, query, cancel and
 * terminate runs, run a worker. Parses the command line, opens the store and dispatches; each
 * command lives in `commands/`, the help text in `usage.ts`.
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
import { queryCommand } from "./commands/query.ts";
import { startCommand } from "./commands/start.ts";
import { workersCommand } from "./commands/workers.ts";
import { CliError, type CliIo, processIo, UsageError } from "./io.ts";
import { openBackend } from "./open-backend.ts";
import { COMMANDS, commandHelp, shortUsage, USAGE } from "./usage.ts";

export { USAGE };

/** Commands that may create a SQLite file: making work is their point. */
const CREATES_STORE = new Set(["worker", "start"]);

/** Runs the CLI with `argv` (without node and script); resolves the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  // The command is the first word that is not an option, known before parsing so that an
  // option error can be answered with that command's usage line.
  const guess = argv.find((a) => !a.startsWith("-"));
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`spool: ${err instanceof Error ? err.message : String(err)}\n${shortUsage(guess)}`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  const [command, arg, arg2] = positionals;
  if (command === "help") {
    io.out(arg ? commandHelp(arg) : USAGE);
    return 0;
  }
  if (!command) {
    if (o.help) {
      io.out(USAGE);
      return 0;
    }
    io.err(`spool: no command given\n${shortUsage(undefined)}`);
    return 2;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    io.err(`spool: unknown command "${command}"\n${shortUsage(undefined)}`);
    return 2;
  }
  if (o.help) {
    io.out(commandHelp(command));
    return 0;
  }
  const needArg = (what: string) => {
    if (!arg) throw new UsageError(`spool ${command} needs ${what}`);
    return arg;
  };
  try {
    if (command === "replay") return await replayCommand(io, needArg("a history file"), o);
    // Check the arguments before opening (maybe creating) a store.
    if (command === "start") needArg("a workflow name");
    else if (!["list", "stats", "doctor", "workers", "worker"].includes(command)) needArg("a workflow id");
    if (command === "query" && !arg2)
      throw new UsageError("spool query needs a workflow id and a query name");
    if (["worker", "start", "query"].includes(command) && !o.module) {
      throw new UsageError(`spool ${command} needs --module <file exporting the definitions>`);
    }
    if (command === "worker") checkWorkerFlags(o);
    const backend = await openBackend(o, { create: CREATES_STORE.has(command) });
    try {
      switch (command) {
        case "list":
          return await listCommand(backend, io, { ...o, idPrefix: o["id-prefix"] });
        case "describe":
          return await describeCommand(backend, io, arg!, o);
        case "history":
          return await historyCommand(backend, io, arg!, o);
        case "export":
          return await exportCommand(backend, io, arg!, o);
        case "start":
          return await startCommand(backend, io, arg!, o);
        case "signal":
          return await signalCommand(backend, io, arg!, arg2, o);
        case "query":
          return await queryCommand(backend, io, arg!, arg2!, o);
        case "cancel":
          return await cancelCommand(backend, io, arg!, o);
        case "terminate":
          return await terminateCommand(backend, io, arg!, o);
        case "stats":
          return await statsCommand(backend, io, o);
        case "workers":
          return await workersCommand(backend, io, o);
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
      io.err(`spool: ${err.message}\n${shortUsage(command)}`);
      return 2;
    }
    if (err instanceof CliError) {
      io.err(`spool: ${err.message}`);
      return 1;
    }
    io.err(
      SpoolError.is(err) ? `${err.name}: ${err.message}` : String(err instanceof Error ? err.stack : err),
    );
    return 1;
  }
}

/** `--concurrency` and `--log-level` of `spool worker`: a bad value would start a worker that runs nothing. */
function checkWorkerFlags(o: { concurrency?: string; "log-level"?: string }): void {
  if (o.concurrency !== undefined && !/^[1-9][0-9]*$/.test(o.concurrency.trim())) {
    throw new UsageError(
      `--concurrency takes a whole number ≥ 1 (activity attempts run at once), got "${o.concurrency}"`,
    );
  }
  const level = o["log-level"];
  if (level !== undefined && !LOG_LEVELS.includes(level)) {
    throw new UsageError(`--log-level takes one of ${LOG_LEVELS.join(", ")}, got "${level}"`);
  }
}

const LOG_LEVELS = ["debug", "info", "warn", "error"];

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
      all: { type: "boolean" },
      out: { type: "string" },
      module: { type: "string" },
      strict: { type: "boolean" },
      reason: { type: "string" },
      payload: { type: "string" },
      "request-id": { type: "string" },
      input: { type: "string" },
      id: { type: "string" },
      concurrency: { type: "string" },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
