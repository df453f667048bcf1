/**
 * Worlds: everything outside the workflow code that a run can meet, as shrinkable plain data —
 * the workflow input, each activity's attempts and result (per activity name, in scheduling
 * order), child workflow outcomes, signals and when they arrive, the order in which concurrent
 * completions are delivered (and which are delivered together in one activation), and an optional
 * cancellation. fast-check generates and shrinks worlds; the simulator plays them.
 */
import type { ActivityDefinition, Schema, SignalDefinition, WorkflowDefinition } from "@spool/core";
import fc from "fast-check";
import type { DefinitionCatalog } from "./step-observer.ts";
import { type SchemaArbitraries, zodArbitrary } from "./zod-arbitrary.ts";

/** How an activity's last attempt ends. */
export type ActivityEnd = "completes" | "fails" | "times-out";

/** The attempts of one scheduled activity. */
export interface ActivityScript {
  /** Attempts that fail with a retryable error before the last one. */
  failures: number;
  /** `fails`: the last attempt throws NonRetryableError; `times-out`: the attempts time out. */
  end: ActivityEnd;
  /** The result when it completes (generated from the activity's output schema). */
  value: unknown;
  /** How long each attempt takes (workflow time), before retry back-off. */
  durationMs: number;
}

/** The outcome of one child workflow. */
export interface ChildScript {
  end: "completes" | "fails";
  value: unknown;
  durationMs: number;
}

/** A signal sent to the run. */
export interface SignalArrival {
  name: string;
  payload: unknown;
  /** When it is sent, relative to the start of the run. */
  atMs: number;
}

/** One generated world. */
export interface World {
  input: unknown;
  /** Scripts per activity name, used in the order that activity is scheduled. */
  activities: Record<string, ActivityScript[]>;
  /** Scripts per child workflow name. */
  children: Record<string, ChildScript[]>;
  signals: SignalArrival[];
  /**
   * One entry per activation: `[pick, extra]`. Candidates (completions, due timers, signals) are
   * sorted by when they would naturally happen; `pick` (mod count) chooses which is delivered
   * next (0 = the natural order) and `extra` how many more arrive in the same activation.
   */
  choices: [number, number][];
  /** Deliver a cancellation request at this activation (null: never). */
  cancelAfter: number | null;
}

/** What worlds are made of. */
export interface WorldSpec {
  input: fc.Arbitrary<unknown>;
  catalog: DefinitionCatalog;
  signals: readonly SignalDefinition[];
  /** Arbitraries by activity, signal or child workflow name (activity output, payload, child output). */
  byName: Readonly<Record<string, fc.Arbitrary<unknown>>>;
  bySchema: SchemaArbitraries;
  /** Generate failures, retries and timeouts (default true). */
  faults: boolean;
  cancellation: boolean;
}

/** A weighted choice that shrinks towards its first option (the plain case). */
const weighted = <T>(...pairs: [number, fc.Arbitrary<T>][]) =>
  fc.oneof({ withCrossShrink: true }, ...pairs.map(([weight, arbitrary]) => ({ weight, arbitrary })));

function valueArb(spec: WorldSpec, name: string, schema: Schema, what: string): fc.Arbitrary<unknown> {
  return spec.byName[name] ?? zodArbitrary(schema, what, spec.bySchema);
}

/** The arbitrary of one activity script. */
export function activityScriptArb(spec: WorldSpec, def: ActivityDefinition): fc.Arbitrary<ActivityScript> {
  const value = valueArb(spec, def.name, def.outputSchema, `output of activity "${def.name}"`);
  return fc.record({
    failures: spec.faults
      ? weighted([5, fc.constant(0)], [1, fc.integer({ min: 1, max: 3 })])
      : fc.constant(0),
    end: spec.faults
      ? weighted<ActivityEnd>(
          [8, fc.constant("completes")],
          [1, fc.constant("fails")],
          [1, fc.constant("times-out")],
        )
      : fc.constant<ActivityEnd>("completes"),
    value,
    durationMs: weighted(
      [3, fc.integer({ min: 0, max: 120_000 })],
      [1, fc.integer({ min: 0, max: 3 * 86_400_000 })],
    ),
  });
}

/** The arbitrary of one child script. */
export function childScriptArb(spec: WorldSpec, def: WorkflowDefinition): fc.Arbitrary<ChildScript> {
  return fc.record({
    end: spec.faults
      ? weighted<"completes" | "fails">([6, fc.constant("completes")], [1, fc.constant("fails")])
      : fc.constant<"completes" | "fails">("completes"),
    value: valueArb(spec, def.name, def.outputSchema, `output of child workflow "${def.name}"`),
    durationMs: fc.integer({ min: 0, max: 86_400_000 }),
  });
}

/** The arbitrary of whole worlds for the definitions known so far. */
export function worldArbitrary(spec: WorldSpec): fc.Arbitrary<World> {
  const activities: Record<string, fc.Arbitrary<ActivityScript[]>> = {};
  for (const [name, def] of [...spec.catalog.activities].sort(([a], [b]) => a.localeCompare(b))) {
    activities[name] = fc.array(activityScriptArb(spec, def), { maxLength: 24 });
  }
  const children: Record<string, fc.Arbitrary<ChildScript[]>> = {};
  for (const [name, def] of [...spec.catalog.children].sort(([a], [b]) => a.localeCompare(b))) {
    children[name] = fc.array(childScriptArb(spec, def), { maxLength: 8 });
  }
  const signal =
    spec.signals.length === 0
      ? null
      : fc.oneof(
          ...spec.signals.map((s) =>
            fc.record({
              name: fc.constant(s.name),
              payload: valueArb(spec, s.name, s.schema, `payload of signal "${s.name}"`),
              atMs: weighted(
                [2, fc.integer({ min: 0, max: 3_600_000 })],
                [1, fc.integer({ min: 0, max: 3 * 86_400_000 })],
              ),
            }),
          ),
        );
  return fc.record({
    input: spec.input,
    activities: fc.record(activities),
    children: fc.record(children),
    signals: signal ? fc.array(signal, { maxLength: 4 }) : fc.constant([]),
    choices: fc.array(
      fc.tuple(
        weighted([2, fc.constant(0)], [1, fc.nat({ max: 7 })]),
        weighted([5, fc.constant(0)], [1, fc.integer({ min: 1, max: 2 })]),
      ),
      { maxLength: 40 },
    ),
    cancelAfter: spec.cancellation
      ? fc.option(fc.nat({ max: 12 }), { nil: null, freq: 3 })
      : fc.constant(null),
  });
}

/** Where the simulator gets scripts: the world, else a deterministic stand-in. */
export interface ScriptSource {
  activity(def: ActivityDefinition, occurrence: number): ActivityScript;
  child(def: WorkflowDefinition, occurrence: number): ChildScript;
  /** Names the world had no scripts for (found after the world arbitrary was built). */
  readonly late: Set<string>;
}

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/**
 * Scripts for occurrences beyond what the world holds (or for names discovered late): the
 * minimal script — first attempt completes at once with the simplest value the output schema
 * allows — so removing an entry while shrinking is the same as making it as plain as possible.
 * The simplest value is found by fast-check's own shrinker (a property that always fails).
 */
export class FallbackScripts {
  private readonly cache = new Map<string, unknown>();
  constructor(private readonly spec: WorldSpec) {}

  private minimal<T>(key: string, arb: fc.Arbitrary<T>): T {
    let v = this.cache.get(key) as T | undefined;
    if (v === undefined) {
      const details = fc.check(
        fc.property(arb, () => false),
        { seed: hash(key), numRuns: 1 },
      );
      v = details.counterexample?.[0] as T;
      this.cache.set(key, v);
    }
    return v;
  }

  activity(def: ActivityDefinition, _occurrence: number): ActivityScript {
    return this.minimal(`a:${def.name}`, activityScriptArb(this.spec, def));
  }

  child(def: WorkflowDefinition, _occurrence: number): ChildScript {
    return this.minimal(`c:${def.name}`, childScriptArb(this.spec, def));
  }
}

/** The scripts of one world, with fallbacks. */
export function worldScripts(world: World, fallbacks: FallbackScripts): ScriptSource {
  const late = new Set<string>();
  return {
    late,
    activity(def, occurrence) {
      const list = world.activities[def.name];
      if (!list) late.add(def.name);
      return list?.[occurrence] ?? fallbacks.activity(def, occurrence);
    },
    child(def, occurrence) {
      const list = world.children[def.name];
      if (!list) late.add(def.name);
      return list?.[occurrence] ?? fallbacks.child(def, occurrence);
    },
  };
}

/** Seeded floats in [0, 1) (mulberry32), for the "second process" Math.random and jitter. */
export function seededFloats(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stable number for a world (seeds its perturbations). */
export function worldSeed(world: World): number {
  return hash(`${world.choices.length}:${world.signals.length}:${JSON.stringify(world.choices)}`);
}
