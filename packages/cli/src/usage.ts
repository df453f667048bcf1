/**
 * The CLI's help: one entry per command (its usage line, what it does, its options), the overview
 * page `spool --help` prints, the page `spool <command> --help` prints, and the one line shown
 * after a usage error — so a mistake is answered with the line that fixes it, not the whole page.
 */

/** Help of one command. */
export interface CommandHelp {
  /** The usage line, without the leading `spool `. */
  usage: string;
  /** What it does, one line. */
  summary: string;
  /** Options and notes, one per line. */
  details: string[];
  /** True when the command opens a store (every command but `replay`). */
  store: boolean;
}

/** Every command, in the order the overview lists them. */
export const COMMANDS: Readonly<Record<string, CommandHelp>> = {
  list: {
    usage:
      "list [--status running,blocked] [--workflow name] [--id-prefix p] [--limit n] [--cursor c] [--json]",
    summary: "runs, newest first, with their pending activity attempts and last errors",
    details: [
      "--status s1,s2      running, blocked, completed, failed, cancelled, continued",
      "--workflow name     only runs of this workflow",
      "--id-prefix p       only workflow ids starting with p",
      "--limit n           runs per page (default 20); --cursor c continues a listing",
      "--json              the page as JSON",
    ],
    store: true,
  },
  describe: {
    usage: "describe <workflowId> [--run id] [--json]",
    summary:
      "status, ids, version and error of the latest run, and each pending activity's attempt, error and next attempt",
    details: [
      "--run id            a given run of the workflow id",
      "--json              the description as JSON",
    ],
    store: true,
  },
  history: {
    usage: "history <workflowId> [--run id] [--json]",
    summary: "the run's history events, each with a short summary of its payload",
    details: [
      "--run id            a given run of the workflow id",
      "--json              the decoded events as JSON",
    ],
    store: true,
  },
  export: {
    usage: "export <workflowId> [--run id] [--out file]",
    summary: "the run's history file (replayHistory and 'spool replay' read it)",
    details: ["--out file          write to a file instead of stdout"],
    store: true,
  },
  replay: {
    usage: "replay <file> --module <file> [--strict]",
    summary: "replay a history file with the current code; exit 1 on divergence (a pre-deploy check)",
    details: [
      "--module file       the module exporting the workflow definitions",
      "--strict            compare activity inputs with history too",
    ],
    store: false,
  },
  start: {
    usage: "start <workflow> --module <file> [--input json] [--id workflowId] [--json]",
    summary:
      "start a run of a workflow the module exports (the same id with the same input attaches to its run)",
    details: [
      "--module file       the module exporting the workflow definition (its schema checks the input)",
      "--input json        the workflow's input (default {})",
      "--id workflowId     the run's workflow id (default: a new id); starting it again with the same input attaches, a different input is refused",
    ],
    store: true,
  },
  signal: {
    usage: "signal <workflowId> <name> [--payload json] [--request-id key] [--module <file>]",
    summary: "send a signal to the open run",
    details: [
      "--payload json      the signal's payload (default {})",
      "--request-id key    delivers this request once, however often it is sent",
      "--module file       check the payload against the workflow's signal schema",
    ],
    store: true,
  },
  query: {
    usage: "query <workflowId> <query> --module <file> [--json]",
    summary: "answer a query from the run's current state (its history replayed with the module's code)",
    details: ["--module file       the module exporting the workflow definition that answers the query"],
    store: true,
  },
  cancel: {
    usage: "cancel <workflowId> [--reason text]",
    summary: "request cancellation: the workflow runs its clean-up",
    details: ["--reason text       recorded with the cancellation"],
    store: true,
  },
  terminate: {
    usage: "terminate <workflowId> [--reason text]",
    summary: "end the open run at once without running its code (for blocked runs)",
    details: ["--reason text       recorded with the termination"],
    store: true,
  },
  stats: {
    usage: "stats [--json]",
    summary: "run counts by status and queue depths, activity tasks in retry back-off included",
    details: ["--json              the counts as JSON"],
    store: true,
  },
  workers: {
    usage: "workers [--all] [--json]",
    summary:
      "the worker registry: live and dead workers, where they run, their last heartbeat, what they host",
    details: [
      "--all               also the workers that stopped cleanly",
      "--json              the registry as JSON",
    ],
    store: true,
  },
  doctor: {
    usage: "doctor [--json]",
    summary:
      "check the store: SQLite quick_check and every row's checksum; exit 1 if damaged, saying what to do",
    details: [
      "--json              the report as JSON",
      "on PostgreSQL every row's checksum is checked; the server's own page checks are its own",
    ],
    store: true,
  },
  worker: {
    usage: "worker --module <file> [--concurrency n] [--log-level debug|info|warn|error]",
    summary: "run a worker for a module's definitions until Ctrl+C (which drains)",
    details: [
      "--module file       the module exporting the workflow and activity definitions",
      "--concurrency n     activity attempts at once, a whole number ≥ 1 (default 100)",
      "--log-level level   debug, info (default), warn or error",
    ],
    store: true,
  },
};

const CONNECTION =
  "connection: --db <file> (SQLite; default ./spool.db or $SPOOL_DB) | --pg <url> [--schema name] ($SPOOL_PG_URL)";

/** The overview page (`spool --help`). */
export const USAGE = [
  "usage: spool <command> [options]    (spool <command> --help for a command's options)",
  "",
  "commands:",
  ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
  "",
  CONNECTION,
  "JSON output (--json) is the only thing printed on stdout: from a checkout run `pnpm -s spool ...`",
  "(-s keeps pnpm's script banner out), from an installed package `npx spool ...`.",
].join("\n");

/** The page of one command (`spool <command> --help`). */
export function commandHelp(name: string): string {
  const c = COMMANDS[name];
  if (!c) return USAGE;
  return [
    `usage: spool ${c.usage}`,
    "",
    c.summary,
    "",
    ...c.details.map((d) => `  ${d}`),
    ...(c.store ? ["", CONNECTION] : []),
  ].join("\n");
}

/** The one line shown after a usage error. */
export function shortUsage(name: string | undefined): string {
  const c = name ? COMMANDS[name] : undefined;
  return c
    ? `usage: spool ${c.usage}   (spool ${name} --help for details)`
    : `usage: spool <command> [options]   (commands: ${Object.keys(COMMANDS).join(", ")}; spool --help for details)`;
}
