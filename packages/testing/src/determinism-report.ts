/**
 * The words of `checkDeterminism`: what it found, as data (`DeterminismFailure`) and as the
 * readable report a developer sees when a test fails — the trapped calls with their source lines,
 * the first divergence (sequence number, recorded vs produced step, where the code was), the shrunk
 * world as a script, the recorded history, and the seed and path to reproduce it.
 */
import type { HistoryEvent } from "@spool/core";
import { formatOffset, formatValue } from "./format-value.ts";
import type { TrapHit } from "./nondeterminism-traps.ts";
import type { Divergence } from "./replay-checks.ts";
import type { World } from "./world.ts";
import {
  describeHistory,
  type Exercised,
  type ScriptLine,
  type SimulationOutcome,
} from "./world-simulator.ts";

/** Where a divergence was found. */
export interface LocatedDivergence extends Divergence {
  /** How the history was re-run when it diverged, in words. */
  phase: string;
  /** Events replayed before continuing (the crash point), for prefix replays. */
  cut: number | undefined;
  /** The line of workflow code (the last `yield*`, or where it threw). */
  site: string | undefined;
}

/**
 * Everything `checkDeterminism` knows about a failure (`DeterminismCheckError.failure`).
 *
 * @example
 * ```ts
 * const err = (await checkDeterminism(order).catch((e: unknown) => e)) as DeterminismCheckError;
 * const { seed, path } = err.failure; // checkDeterminism(order, { seed, path }) replays the same world
 * ```
 */
export interface DeterminismFailure {
  workflow: string;
  kind: "non-determinism" | "coverage";
  /** Calls to trapped APIs (wall clock, randomness, timers, env, I/O) from workflow code. */
  hits: TrapHit[];
  divergence: LocatedDivergence | undefined;
  /** The shrunk world, its script and history (non-determinism only). */
  world: World | undefined;
  script: ScriptLine[];
  history: HistoryEvent[];
  outcome: SimulationOutcome | undefined;
  /** fast-check's seed and path: pass them back as options to replay exactly this world. */
  seed: number;
  path: string | undefined;
  /** Worlds run before the failure, and shrink steps taken. */
  runs: number;
  shrinks: number;
  /** Coverage problems (kind "coverage"). */
  coverage: string[];
}

const HINTS: [RegExp, string][] = [
  [
    /^(Date\.now|new Date|Date|performance\.now)\(\)$/,
    "The wall clock reads differently on every replay. Use ctx.now() (workflow time), or record the value once with sideEffect(() => Date.now()).",
  ],
  [/^Math\.random\(\)$/, "Use ctx.random(): it is seeded from the run, so replay sees the same numbers."],
  [
    /^crypto\./,
    "A fresh random value on every replay. Use ctx.uuid() / ctx.random(), or sideEffect(() => crypto.randomUUID()).",
  ],
  [
    /^set(Timeout|Interval|Immediate)\(\)$/,
    "Timers do not survive a restart or replay. Use `yield* sleep(...)`.",
  ],
  [
    /^process\.env$/,
    "Environment variables differ between processes and deploys, so a replay can take another path. Read them in an activity, or pass the value in the workflow input.",
  ],
  [/^fs\./, "Files can change between replays. Read them in an activity."],
  [/^fetch\(\)$/, "Real I/O belongs in an activity (defineActivity), called with `yield*`."],
];

function hintFor(api: string): string {
  for (const [re, hint] of HINTS) if (re.test(api)) return hint;
  return "Move it into an activity or sideEffect().";
}

function describeHit(h: TrapHit): string[] {
  const what = h.api === "process.env" && h.detail ? `read process.env.${h.detail}` : `called ${h.api}`;
  const where = h.site ? ` at ${h.site}` : " (source line unknown)";
  const via = h.via ? ` (via ${h.via})` : "";
  return [`✗ Workflow code ${what}${where}${via}.`, `  ${hintFor(h.api)}`];
}

function describeDivergence(d: LocatedDivergence): string[] {
  const lines: string[] = [];
  if (d.kind === "await") {
    lines.push(`✗ Workflow code awaited something that is not a Spool step (${d.phase}).`);
    if (d.site) lines.push(`  Workflow code: ${d.site} (the last yield* before the await)`);
    lines.push(`  ${firstLine(d.error)}`);
    return lines;
  }
  if (d.kind === "code-error") {
    lines.push(`✗ Workflow code threw ${d.produced} (${d.phase}); a worker would park the run as blocked.`);
    if (d.site) lines.push(`  Workflow code: ${d.site}`);
    return lines;
  }
  if (d.kind === "result") {
    lines.push(`✗ Replay (${d.phase}) produced the same steps but a different ending:`);
  } else {
    lines.push(
      `✗ Replay diverged at history event #${d.seq ?? "?"}${d.step !== undefined ? ` (step ${d.step})` : ""} — ${d.phase}:`,
    );
  }
  lines.push(`    recorded: ${d.recorded}`, `    produced: ${d.produced}`);
  if (d.site) lines.push(`  Workflow code: ${d.site} (the last yield* before the divergence)`);
  return lines;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return msg.split("\n")[0] ?? msg;
}

/** Renders a world's script: the input, then one line per delivered event. */
export function formatScript(
  world: World | undefined,
  script: readonly ScriptLine[],
  outcome?: string,
): string[] {
  const out: string[] = [];
  if (world) out.push(`  input: ${formatValue(world.input, 100)}`);
  out.push("  #1   +0ms  run starts");
  for (const s of script) {
    const seq = s.seq === undefined ? "  – " : `#${s.seq}`.padEnd(4);
    const prefix = s.batched ? "  (same activation) " : "";
    out.push(`  ${seq} +${formatOffset(s.atMs)}  ${prefix}${s.text}`);
  }
  if (outcome) out.push(`  then: ${outcomeText(outcome)}`);
  return out;
}

function outcomeText(outcome: string): string {
  switch (outcome) {
    case "waiting":
      return "the run waits (nothing left in this world can wake it)";
    case "event-limit":
      return "stopped: the run exceeded the event limit";
    case "engine-error":
      return "the engine stopped with an error";
    default:
      return `the run ${outcome}`;
  }
}

/** Renders a failure as the message of a DeterminismCheckError. */
export function formatDeterminismFailure(f: DeterminismFailure): string {
  const lines: string[] = [];
  if (f.kind === "coverage") {
    lines.push(
      `checkDeterminism("${f.workflow}") ran ${f.runs} world(s) but did not exercise what it generated:`,
    );
    for (const c of f.coverage) lines.push(`  ✗ ${c}`);
    lines.push(
      "A check that never delivers a failure or a signal proves nothing about those paths. Raise numRuns, " +
        "declare the signals the workflow really waits for, or pass requireCoverage: false if this is intended.",
    );
    return lines.join("\n");
  }
  lines.push(
    `checkDeterminism("${f.workflow}") found non-determinism after ${f.runs} world(s)` +
      (f.shrinks > 0 ? ` (shrunk ${f.shrinks} time(s))` : "") +
      ".",
    "",
  );
  for (const h of f.hits) lines.push(...describeHit(h));
  if (f.divergence) lines.push(...describeDivergence(f.divergence));
  lines.push("", "World (shrunk):", ...formatScript(f.world, f.script, f.outcome));
  if (f.history.length > 0)
    lines.push("", "Recorded history:", ...describeHistory(f.history).map((l) => `  ${l}`));
  lines.push(
    "",
    `Reproduce: checkDeterminism(workflow, { ...options, seed: ${f.seed}${f.path ? `, path: ${JSON.stringify(f.path)}` : ""} })`,
  );
  return lines.join("\n");
}

/**
 * Statistics of a passing check.
 *
 * @example
 * ```ts
 * const report = await checkDeterminism(order);
 * expect(report.exercised.retries).toBeGreaterThan(0);
 * console.log(`${report.numRuns} worlds, ${report.replays} crash points in ${report.durationMs} ms`);
 * ```
 */
export interface DeterminismReport {
  ok: true;
  workflow: string;
  /** Worlds checked. */
  numRuns: number;
  /** fast-check seed (pass it back to re-run the same worlds). */
  seed: number;
  durationMs: number;
  /** How the simulated runs ended. */
  outcomes: Partial<Record<SimulationOutcome, number>>;
  /** Faults and orderings delivered across all worlds. */
  exercised: Exercised;
  /** Prefix replays performed (crash points checked). */
  replays: number;
  /** Activities or child workflows first seen during the main run (their scripts were not shrinkable). */
  lateDefinitions: string[];
}
