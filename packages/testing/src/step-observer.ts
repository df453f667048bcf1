/**
 * Watches the steps workflow code yields. History records only names, but the checker needs the
 * definitions behind them (to generate activity results from output schemas, child results from
 * child workflows) and, when explaining a failure, the line of the last `yield*`. Both come from
 * wrapping `Step.prototype[Symbol.iterator]`, which `yield*` calls from inside the workflow code.
 */
import {
  type ActivityDefinition,
  type ActivityStep,
  type ChildStep,
  type Schema,
  Step,
  type WorkflowDefinition,
} from "@spool/core";
import { captureStack, locateUserCode } from "./source-location.ts";

/** Definitions seen so far, by recorded name. */
export class DefinitionCatalog {
  readonly activities = new Map<string, ActivityDefinition>();
  readonly children = new Map<string, WorkflowDefinition>();

  /** Adds the definition behind a yielded step; returns true when it was new. */
  observe(step: Step<unknown>): boolean {
    if (step.kind === "activity") {
      const def = (step as ActivityStep<Schema, Schema>).definition as unknown as ActivityDefinition;
      if (this.activities.has(def.name)) return false;
      this.activities.set(def.name, def);
      return true;
    }
    if (step.kind === "child") {
      const def = (step as ChildStep<Schema, Schema>).definition as unknown as WorkflowDefinition;
      if (this.children.has(def.name)) return false;
      this.children.set(def.name, def);
      return true;
    }
    return false;
  }

  /** A fingerprint of the known names, to tell when discovery has found something new. */
  get size(): number {
    return this.activities.size + this.children.size;
  }
}

type IteratorFn = (this: Step<unknown>) => Generator<Step<unknown>, unknown, unknown>;

let installs = 0;
let original: IteratorFn | null = null;
let catalog: DefinitionCatalog | null = null;
let tracking = false;
let lastSite: string | undefined;

function observed(this: Step<unknown>): Generator<Step<unknown>, unknown, unknown> {
  catalog?.observe(this);
  if (tracking) {
    const where = locateUserCode(captureStack());
    if (where.site) lastSite = where.site;
  }
  return (original as IteratorFn).call(this);
}

/** Starts observing yielded steps into `into` (reference-counted; the newest catalog wins). */
export function installStepObserver(into: DefinitionCatalog): () => void {
  const proto = Step.prototype as unknown as Record<symbol, IteratorFn>;
  if (installs++ === 0) {
    original = proto[Symbol.iterator] as IteratorFn;
    proto[Symbol.iterator] = observed;
  }
  const previous = catalog;
  catalog = into;
  return () => {
    catalog = previous;
    if (--installs === 0 && original) {
      proto[Symbol.iterator] = original;
      original = null;
    }
  };
}

/**
 * Runs `fn` while recording the source line of every `yield*` (slow: a stack per step — used only
 * to explain a failure). Returns the last line seen before `fn` settled.
 */
export async function trackYieldSites<T>(
  fn: () => Promise<T>,
): Promise<{ value?: T; error?: unknown; site?: string }> {
  tracking = true;
  lastSite = undefined;
  try {
    const value = await fn();
    return { value, site: lastSite };
  } catch (error) {
    return { error, site: lastSite };
  } finally {
    tracking = false;
  }
}
