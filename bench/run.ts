/**
 * `pnpm bench`: measures Spool and, in the same run, the physical floor of its storage. Prints a
 * table and writes bench/results/<date>-<machine>.json and bench/results/latest.json with the
 * machine's description and every figure's samples, median, min and max over the rounds.
 *
 *   pnpm bench                         all scenarios, 5 rounds
 *   pnpm bench --quick                 1 round, smaller sizes (checks the harness runs)
 *   pnpm bench --only concurrent,floor one or more scenarios
 *   pnpm bench --durability full       SQLite scenarios at one durability only
 *   pnpm bench --rounds 3              rounds per figure
 *   pnpm bench --cpu-prof --only concurrent --durability full
 *                                      re-runs itself under `node --cpu-prof` (profile in
 *                                      bench/results/profiles/, figures in a -cpuprof.json, not
 *                                      latest.json), then prints the top self-time functions
 *   pnpm bench --note "idle machine"   free-text conditions recorded in the JSON
 *   pnpm bench --markdown              also print the table as Markdown (for bench/README.md)
 *
 * The harness reports; it never asserts. A scenario that cannot run here is reported as
 * "unavailable: <reason>", one that throws as "error: <message>", and the others still run.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./lib/child-process.ts";
import { describeMachine, finishMachine } from "./lib/machine.ts";
import {
  type BenchOptions,
  type Durability,
  type Figure,
  type Scenario,
  ScenarioContext,
  type ScenarioReport,
  Unavailable,
} from "./lib/scenario.ts";
import type { StepCosts } from "./lib/step-costs.ts";
import { formatNumber, renderMarkdown, renderTable } from "./lib/table.ts";
import { type CpuProfile, formatSummary, resolveProfilePath, summariseProfile } from "./lib/top-functions.ts";
import concurrent from "./scenarios/concurrent.ts";
import determinism from "./scenarios/determinism.ts";
import fanOut from "./scenarios/fan-out.ts";
import floor from "./scenarios/floor.ts";
import memory from "./scenarios/memory.ts";
import postgres from "./scenarios/postgres.ts";
import replay from "./scenarios/replay.ts";
import sequential from "./scenarios/sequential.ts";
import sqliteProcesses from "./scenarios/sqlite-processes.ts";

const scenarios: Scenario[] = [
  sequential,
  concurrent,
  floor,
  replay,
  memory,
  fanOut,
  determinism,
  postgres,
  sqliteProcesses,
];

const resultsDir = join(repoRoot, "bench", "results");
const profilesDir = join(resultsDir, "profiles");
const PROFILED_ENV = "SPOOL_BENCH_PROFILED";

interface Args {
  quick: boolean;
  rounds: number | undefined;
  only: string[] | undefined;
  durabilities: Durability[];
  cpuProf: boolean;
  note: string | undefined;
  markdown: boolean;
  pgUrl: string;
}

function usage(problem: string): never {
  console.error(
    `${problem}\n\nscenarios: ${scenarios.map((s) => s.name).join(", ")}\nsee the header of bench/run.ts`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    quick: false,
    rounds: undefined,
    only: undefined,
    durabilities: ["full", "normal"],
    cpuProf: false,
    note: undefined,
    markdown: false,
    pgUrl: process.env.SPOOL_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    if (arg === "--")
      continue; // `pnpm bench -- --quick` passes the separator through
    else if (arg === "--quick") a.quick = true;
    else if (arg === "--rounds") a.rounds = Number(value());
    else if (arg === "--only") a.only = value().split(",");
    else if (arg === "--durability") a.durabilities = value().split(",") as Durability[];
    else if (arg === "--cpu-prof") a.cpuProf = true;
    else if (arg === "--note") a.note = value();
    else if (arg === "--markdown") a.markdown = true;
    else if (arg === "--pg-url") a.pgUrl = value();
    else if (arg === "--help" || arg === "-h") usage("usage: pnpm bench [options]");
    else usage(`unknown option ${arg}`);
  }
  for (const name of a.only ?? []) {
    if (!scenarios.some((s) => s.name === name)) usage(`unknown scenario "${name}"`);
  }
  for (const d of a.durabilities) if (d !== "full" && d !== "normal") usage(`unknown durability "${d}"`);
  if (a.rounds !== undefined && !(Number.isInteger(a.rounds) && a.rounds > 0))
    usage("--rounds takes a positive integer");
  return a;
}

/** `--cpu-prof`: runs the same command under `node --cpu-prof`, then summarises the profile. */
function runProfiled(argv: string[]): never {
  mkdirSync(profilesDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const name = `bench-${stamp}.cpuprofile`;
  const rest = argv.filter((x) => x !== "--cpu-prof");
  const r = spawnSync(
    process.execPath,
    [
      "--cpu-prof",
      "--cpu-prof-dir",
      profilesDir,
      "--cpu-prof-name",
      name,
      "--import",
      "tsx",
      join(repoRoot, "bench", "run.ts"),
      ...rest,
    ],
    { cwd: repoRoot, stdio: "inherit", env: { ...process.env, [PROFILED_ENV]: join(profilesDir, name) } },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
  const file = resolveProfilePath(join(profilesDir, name));
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  console.log(`\n${formatSummary(summariseProfile(profile, 30), file)}`);
  process.exit(0);
}

/**
 * Spool's steps/s divided by the floors, and its sequential step latency divided by one commit's
 * time, per durability, when both were measured in this run.
 */
function ratios(reports: ScenarioReport[]): Figure[] {
  const find = (scenario: string, name: string, d: Durability) =>
    reports.find((r) => r.name === scenario)?.figures.find((f) => f.name === name && f.durability === d);
  const out: Figure[] = [];
  for (const d of ["full", "normal"] as const) {
    for (const [scenario, label] of [
      ["concurrent", "concurrent"],
      ["sequential", "sequential"],
    ] as const) {
      const spool = find(scenario, "steps/s", d);
      if (!spool) continue;
      for (const [floorName, floorLabel] of [
        ["per-commit floor", "per-commit floor"],
        ["group-commit floor", "group-commit floor"],
      ] as const) {
        const f = find("floor", floorName, d);
        if (!f) continue;
        out.push({
          name: `${label} steps/s ÷ ${floorLabel}`,
          unit: "ratio",
          durability: d,
          better: "higher",
          samples: [],
          median: spool.median / f.median,
          min: spool.min / f.max,
          max: spool.max / f.min,
        });
      }
    }
    // The sequential target is stated this way: a step's latency against one fsync'd commit's
    // (1 / per-commit floor). Lower is better; 1 would be one commit's time per step.
    const latency = find("sequential", "step latency p50", d);
    const perCommit = find("floor", "per-commit floor", d);
    if (latency && perCommit) {
      const commitMs = (commitsPerSecond: number) => 1000 / commitsPerSecond;
      out.push({
        name: "sequential step latency p50 ÷ one commit",
        unit: "×",
        durability: d,
        better: "lower",
        samples: [],
        median: latency.median / commitMs(perCommit.median),
        min: latency.min / commitMs(perCommit.min),
        max: latency.max / commitMs(perCommit.max),
      });
    }
  }
  return out;
}

function tableRows(reports: ScenarioReport[]): { rows: string[][]; trailer: string[] } {
  const rows: string[][] = [];
  const trailer: string[] = [];
  for (const r of reports) {
    if (r.status !== "ok") {
      rows.push([r.name, `${r.status}: ${r.reason ?? ""}`, "", "", "", "", ""]);
      continue;
    }
    r.figures.forEach((f, i) => {
      rows.push([
        i === 0 ? r.name : "",
        f.name,
        f.durability ?? "",
        formatNumber(f.median),
        formatNumber(f.min),
        formatNumber(f.max),
        f.unit,
      ]);
    });
    for (const n of r.notes) trailer.push(`${r.name}: ${n}`);
  }
  return { rows, trailer };
}

/** One line: commits and pages per step, then backend calls per step (empty calls in brackets). */
function formatCosts(c: StepCosts): string {
  const calls = Object.entries(c.backendCallsPerStep)
    .map(([m, n]) => `${m} ${n.hits}${n.empty > 0 ? ` (+${n.empty} empty)` : ""}`)
    .join(", ");
  return `SQLite commits/step ${c.sqliteCommitsPerStep}, WAL pages/step ${c.walPagesPerStep}; backend calls/step: ${calls}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  if (args.cpuProf && !process.env[PROFILED_ENV]) runProfiled(argv);

  const options: BenchOptions = {
    quick: args.quick,
    rounds: args.rounds ?? (args.quick ? 1 : 5),
    durabilities: args.durabilities,
    pgUrl: args.pgUrl,
    diagnostics: !process.env[PROFILED_ENV],
  };
  const selected = args.only ? scenarios.filter((s) => args.only?.includes(s.name)) : scenarios;
  const machine = describeMachine();
  const startedAt = new Date();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(
    `spool bench: ${selected.map((s) => s.name).join(", ")} — ${options.rounds} round(s)` +
      `${options.quick ? ", quick" : ""}; ${machine.cpuModel}, ${machine.cores} cores, load ${machine.loadAverageAtStart.join(" ")}`,
  );

  const reports: ScenarioReport[] = [];
  for (const scenario of selected) {
    const ctx = new ScenarioContext(scenario, options, log);
    const t0 = performance.now();
    let status: ScenarioReport["status"] = "ok";
    let reason: string | undefined;
    try {
      await scenario.run(ctx);
    } catch (err) {
      if (err instanceof Unavailable) {
        status = "unavailable";
        reason = err.message;
      } else {
        status = "error";
        reason = err instanceof Error ? err.message : String(err);
        log(`[${scenario.name}] error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
    const report: ScenarioReport = {
      name: scenario.name,
      title: scenario.title,
      status,
      figures: ctx.figures(),
      settings: ctx.settings,
      details: ctx.details,
      notes: ctx.notes,
      wallMs: Math.round(performance.now() - t0),
    };
    if (reason !== undefined) report.reason = reason;
    const pgVersion = ctx.details["postgres server version"];
    if (typeof pgVersion === "string" && status === "ok") machine.postgres = pgVersion;
    reports.push(report);
    log(
      `[${scenario.name}] ${status}${reason ? `: ${reason}` : ""} (${(report.wallMs / 1000).toFixed(1)} s)`,
    );
  }
  const derived = ratios(reports);
  if (derived.length > 0) {
    reports.push({
      name: "vs floor",
      title:
        "Spool's steps/s divided by the storage floor, and its sequential step latency divided by one commit's time (median ÷ median; min/max are the extreme pairings)",
      status: "ok",
      figures: derived,
      settings: {},
      details: {},
      notes: [],
      wallMs: 0,
    });
  }
  finishMachine(machine);

  const headers = ["scenario", "figure", "durability", "median", "min", "max", "unit"];
  const right = new Set([3, 4, 5]);
  const { rows, trailer } = tableRows(reports);
  console.log("");
  console.log(renderTable(headers, rows, right));
  const costLines = reports.flatMap((r) =>
    Object.entries(r.details)
      .filter(([k]) => k.startsWith("step costs"))
      .map(([k, v]) => `${r.name}: ${k}: ${formatCosts(v as StepCosts)}`),
  );
  const anatomyLines = reports.flatMap((r) =>
    Object.entries(r.details)
      .filter(([k]) => k.startsWith("step anatomy"))
      .map(
        ([k, v]) =>
          `${r.name}: ${k}: ${Object.entries(v as Record<string, number>)
            .map(([phase, n]) => `${phase.replace(" (µs, median)", "")} ${n}`)
            .join(", ")} (µs, medians)`,
      ),
  );
  costLines.push(...anatomyLines);
  if (costLines.length > 0) console.log(`\n${costLines.join("\n")}`);
  for (const line of trailer) console.log(line);
  console.log(
    `\n${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB; node ${machine.node}, ` +
      `better-sqlite3 ${machine.betterSqlite3}, SQLite ${machine.sqlite}` +
      `${machine.postgres ? `, PostgreSQL ${machine.postgres}` : ""}; ` +
      `load ${machine.loadAverageAtStart.join(" ")} → ${machine.loadAverageAtEnd?.join(" ")}`,
  );
  if (args.markdown) console.log(`\n${renderMarkdown(headers, rows, right)}`);

  const result = {
    schema: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: {
      quick: options.quick,
      rounds: options.rounds,
      only: args.only ?? null,
      durabilities: options.durabilities,
      cpuProfile: process.env[PROFILED_ENV] ?? null,
    },
    conditions: args.note ?? null,
    machine,
    scenarios: reports,
  };
  mkdirSync(resultsDir, { recursive: true });
  const stamp = startedAt
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  const host = machine.hostname.replace(/[^A-Za-z0-9_.-]/g, "_");
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (process.env[PROFILED_ENV]) {
    // Figures measured under the profiler are slower than real: keep them out of latest.json.
    const file = join(resultsDir, `${stamp}-${host}-cpuprof.json`);
    writeFileSync(file, json);
    console.log(`\nwrote ${file} (profiled: latest.json left as it was)`);
  } else {
    const file = join(resultsDir, `${stamp}-${host}.json`);
    writeFileSync(file, json);
    writeFileSync(join(resultsDir, "latest.json"), json);
    console.log(`\nwrote ${file} and bench/results/latest.json`);
  }
}

await main();
