/**
 * The options that shape generated worlds, shared by `checkDeterminism` and `checkUpgrade`, and
 * what they turn into: the world spec (input, signals, arbitraries, faults) and the catalog of
 * activities and child workflows, completed by running a few seeded worlds.
 */
import type { ActivityDefinition, Schema, SignalDefinition, WorkflowDefinition } from "@spool/core";
import fc from "fast-check";
import type { z } from "zod";
import { DefinitionCatalog } from "./step-observer.ts";
import { FallbackScripts, type World, type WorldSpec, worldArbitrary, worldScripts } from "./world.ts";
import { simulate } from "./world-simulator.ts";
import { zodArbitrary } from "./zod-arbitrary.ts";

/** Options shared by checkDeterminism and checkUpgrade. */
export interface WorldOptions<I extends Schema = Schema> {
  /** Worlds to generate (default 100 for checkDeterminism, 50 for checkUpgrade). */
  numRuns?: number;
  /** fast-check seed, to re-run the same worlds (printed by a failure). */
  seed?: number;
  /** fast-check path, with `seed`, to replay one failing world directly (printed by a failure). */
  path?: string;
  /** Also compare activity/child inputs and timer durations on replay (default false). */
  strict?: boolean;
  /** The workflow input: a value, or a fast-check arbitrary (default: generated from the input schema). */
  input?: z.input<I> | fc.Arbitrary<z.input<I>>;
  /** Signals the world may send (default: the workflow's declared `signals`). */
  signals?: readonly SignalDefinition[];
  /** Activities the workflow may call: optional, they are also discovered by running it. */
  // biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
  activities?: readonly ActivityDefinition<any, any>[];
  /** Child workflows it may start: optional, they are also discovered. */
  // biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
  workflows?: readonly WorkflowDefinition<any, any>[];
  /**
   * Arbitraries by name, for schemas the zod converter cannot generate from: the output of an
   * activity or child workflow, or the payload of a signal, e.g. `{ "payments.charge": fc.record(...) }`.
   */
  arbitraries?: Readonly<Record<string, fc.Arbitrary<unknown>>>;
  /** Arbitraries for particular (nested) schemas, matched by identity. */
  schemaArbitraries?: readonly (readonly [Schema, fc.Arbitrary<unknown>])[];
  /** Generate activity failures, retries and timeouts and child failures (default true). */
  faults?: boolean;
  /** Also deliver cancellation requests (default false). */
  cancellation?: boolean;
  /** Workflow time of the start of every simulated run (default 2024-01-01T00:00:00Z). */
  startTime?: number;
  /** Stop a run after this many history events (default 1,000). */
  maxEvents?: number;
}

/** @internal Builds the world spec and catalog from options. */
export function worldSpecOf(workflow: WorkflowDefinition, o: WorldOptions): WorldSpec {
  const catalog = new DefinitionCatalog();
  for (const a of o.activities ?? []) catalog.activities.set(a.name, a as ActivityDefinition);
  for (const w of o.workflows ?? []) catalog.children.set(w.name, w as WorkflowDefinition);
  return {
    input: inputArbitrary(workflow, o.input),
    catalog,
    signals: o.signals ?? workflow.signals ?? [],
    byName: o.arbitraries ?? {},
    bySchema: new Map(o.schemaArbitraries?.map(([s, a]) => [s, a]) ?? []),
    faults: o.faults ?? true,
    cancellation: o.cancellation ?? false,
  };
}

function isArbitrary(v: unknown): v is fc.Arbitrary<unknown> {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as { generate?: unknown }).generate === "function" &&
    typeof (v as { shrink?: unknown }).shrink === "function"
  );
}

function inputArbitrary(workflow: WorkflowDefinition, input: unknown): fc.Arbitrary<unknown> {
  if (isArbitrary(input)) return input;
  if (input !== undefined) return fc.constant(input);
  return zodArbitrary(workflow.inputSchema, `input of workflow "${workflow.name}"`);
}

/** @internal Runs a few seeded worlds to find the activities and children the workflow uses. */
export async function discoverDefinitions(
  workflows: readonly WorkflowDefinition[],
  spec: WorldSpec,
  base: { startTime: number; maxEvents: number },
): Promise<void> {
  let quiet = 0;
  for (let round = 0; round < 16 && quiet < 3; round++) {
    const before = spec.catalog.size;
    const world = fc.sample(worldArbitrary(spec), { seed: 0x5eed + round, numRuns: 1 })[0] as World;
    for (const wf of workflows) {
      const scripts = worldScripts(world, new FallbackScripts(spec));
      await simulate(wf, world, scripts, {
        catalog: spec.catalog,
        workflowId: "check",
        runId: "check-run",
        strict: false,
        startTime: base.startTime,
        maxEvents: base.maxEvents,
        traps: null,
        gap: false,
      });
    }
    quiet = spec.catalog.size === before ? quiet + 1 : 0;
  }
}
