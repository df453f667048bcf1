/**
 * One world of `checkDeterminism`: run it on the pure engine with the nondeterminism traps on, then
 * replay every crash point of its history in a "second process" and re-run it live with different
 * microtask timing; a divergence is located (phase, crash point, source line) for the report.
 */
import { type HistoryEvent, isInbound, type WorkflowDefinition } from "@spool/core";
import type { LocatedDivergence } from "./determinism-report.ts";
import type { TrapHit, TrapWindow } from "./nondeterminism-traps.ts";
import {
  type Divergence,
  fromEngineError,
  isReplayableCut,
  replayLive,
  replayPrefix,
} from "./replay-checks.ts";
import { locateUserCode } from "./source-location.ts";
import { trackYieldSites } from "./step-observer.ts";
import {
  type FallbackScripts,
  seededFloats,
  type World,
  type WorldSpec,
  worldScripts,
  worldSeed,
} from "./world.ts";
import { type Simulation, simulate } from "./world-simulator.ts";

const SECOND_PROCESS_SHIFT = 400 * 86_400_000;

/** What checking one world found. */
export interface WorldCheck {
  sim: Simulation;
  hits: TrapHit[];
  divergence: LocatedDivergence | undefined;
  late: Set<string>;
  replays: number;
}

/** What every world of one checkDeterminism call shares. */
export interface CheckContext {
  workflow: WorkflowDefinition;
  spec: WorldSpec;
  fallbacks: FallbackScripts;
  strict: boolean;
  startTime: number;
  maxEvents: number;
  allow: ReadonlySet<string>;
  secondProcess: (() => void | (() => void)) | undefined;
}

const WORKFLOW_ID = "check";
const RUN_ID = "check-run";

/** Runs and replays one world; `diagnose` also locates a divergence in the source (slower). */
export async function checkWorld(ctx: CheckContext, world: World, diagnose: boolean): Promise<WorldCheck> {
  const hits: TrapHit[] = [];
  const seen = new Set<string>();
  const onHit = (h: TrapHit) => {
    const key = `${h.api}|${h.detail ?? ""}|${h.site ?? ""}`;
    if (seen.has(key) || hits.length >= 20) return;
    seen.add(key);
    hits.push(h);
  };
  const seed = worldSeed(world);
  const firstProcess: TrapWindow = {
    perturb: true,
    clockShiftMs: 0,
    random: seededFloats(seed ^ 0x1234567),
    allow: ctx.allow,
    onHit,
  };
  const secondProcess: TrapWindow = {
    perturb: true,
    clockShiftMs: SECOND_PROCESS_SHIFT + (Math.abs(seed) % 86_400) * 1000,
    random: seededFloats(seed ^ 0x9e3779b9),
    allow: ctx.allow,
    onHit,
  };
  const scripts = worldScripts(world, ctx.fallbacks);
  const simOptions = {
    catalog: ctx.spec.catalog,
    workflowId: WORKFLOW_ID,
    runId: RUN_ID,
    strict: ctx.strict,
    startTime: ctx.startTime,
    maxEvents: ctx.maxEvents,
    traps: firstProcess,
    gap: true,
  };
  const sim = await simulate(ctx.workflow, world, scripts, simOptions);
  const check: WorldCheck = { sim, hits, divergence: undefined, late: scripts.late, replays: 0 };

  if (sim.outcome === "engine-error") {
    const d = fromEngineError(sim.error);
    let site = d.kind === "code-error" ? locateUserCode((sim.error as Error)?.stack).site : undefined;
    if (diagnose && !site) {
      const traced = await trackYieldSites(() =>
        simulate(ctx.workflow, world, worldScripts(world, ctx.fallbacks), simOptions),
      );
      site = traced.site;
    }
    check.divergence = { ...d, phase: "during the first run of this world", cut: undefined, site };
    return check;
  }

  const history = sim.history;
  const base = { workflowId: WORKFLOW_ID, runId: RUN_ID, strict: ctx.strict, traps: secondProcess };
  const undo = ctx.secondProcess?.();
  const where = ctx.secondProcess ? " in a second process (options.secondProcess applied)" : "";
  try {
    for (const cut of crashPoints(history)) {
      check.replays++;
      const d = await replayPrefix(ctx.workflow, history, cut, base);
      if (d) {
        const site = diagnose
          ? await siteOf(() => replayPrefix(ctx.workflow, history, cut, base), d)
          : undefined;
        const phase =
          cut === history.length
            ? `replaying the whole history${where}`
            : `a worker that crashed after history event #${cut} replayed it${where}`;
        check.divergence = { ...d, phase, cut, site };
        return check;
      }
    }
    if (!history.some((e) => e.type === "SideEffect")) {
      const rng = seededFloats(seed ^ 0x51f15e);
      const live = { ...base, jitter: () => Math.floor(rng() * 64) };
      const d = await replayLive(ctx.workflow, history, live);
      if (d) {
        const again = {
          ...live,
          jitter: (() => {
            const r = seededFloats(seed ^ 0x51f15e);
            return () => Math.floor(r() * 64);
          })(),
        };
        const site = diagnose ? await siteOf(() => replayLive(ctx.workflow, history, again), d) : undefined;
        check.divergence = {
          ...d,
          phase: `re-running the recorded events live with a shifted clock, a reseeded Math.random and different microtask timing${where}`,
          cut: undefined,
          site,
        };
      }
    }
  } finally {
    if (typeof undo === "function") undo();
  }
  return check;
}

/** Histories up to this long have every crash point replayed; longer ones a spread of them. */
const ALL_CUTS_UP_TO = 150;

/**
 * The prefixes to replay: every point a worker can crash at, or for long histories (an endless
 * loop cut by maxEvents) the first 40 activation boundaries, 40 more spread over the rest and
 * the end — replay cost grows with the square of the length.
 */
function crashPoints(history: readonly HistoryEvent[]): number[] {
  const all: number[] = [];
  for (let cut = 1; cut <= history.length; cut++) if (isReplayableCut(history, cut)) all.push(cut);
  if (history.length <= ALL_CUTS_UP_TO) return all;
  const boundaries = all.filter((c) => c === history.length || isInbound(history[c] as HistoryEvent));
  const rest = boundaries.slice(40);
  const picked = new Set(boundaries.slice(0, 40));
  for (let i = 0; i < 40 && rest.length > 0; i++)
    picked.add(rest[Math.floor((i * rest.length) / 40)] as number);
  picked.add(history.length);
  return [...picked].sort((a, b) => a - b);
}

async function siteOf(run: () => Promise<Divergence | null>, d: Divergence): Promise<string | undefined> {
  if (d.kind === "code-error") return locateUserCode((d.error as Error)?.stack).site;
  const traced = await trackYieldSites(run);
  return traced.site;
}

/** Locates the source line of a world's divergence again, with the traps off. */
export async function locateAgain(ctx: CheckContext, check: WorldCheck): Promise<string | undefined> {
  const d = check.divergence;
  if (!d) return undefined;
  const history = check.sim.history;
  const base = { workflowId: WORKFLOW_ID, runId: RUN_ID, strict: ctx.strict, traps: null };
  const undo = ctx.secondProcess?.();
  try {
    if (d.cut !== undefined)
      return await siteOf(() => replayPrefix(ctx.workflow, history, d.cut as number, base), d);
    return await siteOf(() => replayLive(ctx.workflow, history, { ...base, jitter: () => 0 }), d);
  } finally {
    if (typeof undo === "function") undo();
  }
}

/** Whether the world trapped a call or diverged. */
export function failed(c: WorldCheck): boolean {
  return c.hits.length > 0 || c.divergence !== undefined;
}
