/**
 * Loads a user's module and collects the workflow and activity definitions it exports (directly
 * or in exported arrays/objects), for `spool worker` and `spool replay`.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ActivityDefinition, WorkflowDefinition } from "@spool/core";
import { UsageError } from "./io.ts";

/** The definitions a module exports. */
export interface LoadedDefinitions {
  workflows: WorkflowDefinition[];
  activities: ActivityDefinition[];
}

/** Imports `path` (TypeScript works when the CLI runs under tsx) and collects its definitions. */
export async function loadDefinitions(path: string): Promise<LoadedDefinitions> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`cannot load module ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const workflows = new Map<string, WorkflowDefinition>();
  const activities = new Map<string, ActivityDefinition>();
  const visit = (v: unknown, depth: number) => {
    if (v === null || v === undefined || depth > 2) return;
    const kind = (v as { kind?: unknown }).kind;
    if (kind === "workflow") workflows.set((v as WorkflowDefinition).name, v as WorkflowDefinition);
    else if (kind === "activity") activities.set((v as ActivityDefinition).name, v as ActivityDefinition);
    else if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
    else if (typeof v === "object") for (const x of Object.values(v)) visit(x, depth + 1);
  };
  for (const v of Object.values(mod)) visit(v, 0);
  if (workflows.size === 0 && activities.size === 0) {
    throw new UsageError(`module ${path} exports no workflow or activity definitions`);
  }
  return { workflows: [...workflows.values()], activities: [...activities.values()] };
}
