/**
 * `replayHistory`: replays a recorded history (events, a history file, or its path) with the
 * workflow code as it is now, and reports the first divergence — the check behind golden-history
 * tests ("would this deploy break runs recorded by the last release?") and the CLI.
 */
import fs from "node:fs";
import {
  type ExecutorStatus,
  type HistoryEvent,
  type HistoryFile,
  InvalidOptionsError,
  isInbound,
  type ParsedHistory,
  parseHistoryDocument,
  parseHistoryFile,
  type WorkflowDefinition,
  WorkflowExecutor,
} from "@spool/core";
import { HistoryFileError } from "./errors.ts";
import { fromEngineError } from "./replay-checks.ts";

/** A history to replay: events, history-file JSON text, a path to a history file, or a parsed file. */
export type HistorySource = readonly HistoryEvent[] | string | HistoryFile | ParsedHistory;

/** Options of {@link replayHistory}. */
export interface ReplayHistoryOptions {
  /** Also compare activity/child inputs and timer durations (default false, as workers do by default). */
  strict?: boolean;
  /** The run's ids (taken from a history file when given; `ctx.random()` is seeded from the run id). */
  workflowId?: string;
  runId?: string;
}

/** The code replays the history. */
export interface ReplaySuccess {
  ok: true;
  /** The run's state after the history: `running` for a history of a run still in flight. */
  status: ExecutorStatus;
  result: unknown;
  error: unknown;
  /** Events replayed. */
  events: number;
  /** Commands the code produces beyond the history (for a run in flight: what it would do next). */
  newCommands: HistoryEvent[];
}

/** The code does not replay the history. */
export interface ReplayFailure {
  ok: false;
  /** `non-determinism`: a different step; `await`: an await on something that is not a step; `code-error`: it threw. */
  kind: "non-determinism" | "await" | "code-error";
  /** The engine's error (NonDeterminismError, WorkflowAwaitError, or the code's own). */
  error: Error;
  seq: number | undefined;
  step: number | undefined;
  recorded: string | undefined;
  produced: string | undefined;
  message: string;
}

/** The outcome of {@link replayHistory}. */
export type ReplayOutcome = ReplaySuccess | ReplayFailure;

function load(source: HistorySource, options: ReplayHistoryOptions): ParsedHistory {
  if (Array.isArray(source)) {
    const events = source as readonly HistoryEvent[];
    const first = events[0];
    if (first?.type !== "WorkflowStarted") {
      throw new HistoryFileError("replayHistory: a history must start with a WorkflowStarted event");
    }
    return {
      workflowId: options.workflowId ?? "replay",
      runId: options.runId ?? "replay",
      workflowName: first.workflowName,
      events: events.slice(),
    };
  }
  if (typeof source === "string") {
    const text = source.trimStart().startsWith("{") ? source : readFile(source);
    return parseHistoryFile(text);
  }
  if ("format" in source) return parseHistoryDocument(source);
  return source as ParsedHistory;
}

function readFile(path: string): string {
  try {
    return fs.readFileSync(path, "utf8");
  } catch (err) {
    throw new HistoryFileError(`cannot read history file ${path}: ${(err as Error).message}`);
  }
}

/**
 * Replays `history` with `workflow` as the code is now and reports the first divergence.
 *
 * @returns `{ ok: true, status, result, newCommands }` when it replays; `{ ok: false, kind, error,
 *   seq, recorded, produced, message }` with the engine's error (a NonDeterminismError naming the
 *   history position, the recorded step and the step the code produced) when it does not.
 * @throws HistoryFileError for an unreadable file; InvalidOptionsError when the history belongs to
 *   another workflow.
 * @example
 * ```ts
 * import { replayHistory } from "@spool/testing";
 *
 * const r = await replayHistory(order, "test/histories/order-v1.json");
 * if (!r.ok) console.error(r.message); // non-determinism at step 2 (history event #4): ...
 * ```
 */
export async function replayHistory(
  // biome-ignore lint/suspicious/noExplicitAny: any workflow definition
  workflow: WorkflowDefinition<any, any>,
  history: HistorySource,
  options: ReplayHistoryOptions = {},
): Promise<ReplayOutcome> {
  const h = load(history, options);
  if (h.workflowName !== workflow.name) {
    throw new InvalidOptionsError(
      `replayHistory: the history is of workflow "${h.workflowName}" but the definition is "${workflow.name}"`,
    );
  }
  const ex = new WorkflowExecutor(workflow as WorkflowDefinition, {
    workflowId: options.workflowId ?? h.workflowId,
    runId: options.runId ?? h.runId,
    strict: options.strict ?? false,
  });
  try {
    await ex.replayHistory(h.events);
  } catch (err) {
    const d = fromEngineError(err);
    const error = err instanceof Error ? err : new Error(String(err));
    return {
      ok: false,
      kind: d.kind === "divergence" ? "non-determinism" : d.kind === "await" ? "await" : "code-error",
      error,
      seq: d.seq,
      step: d.step,
      recorded: d.kind === "divergence" ? d.recorded : undefined,
      produced: d.kind === "divergence" ? d.produced : undefined,
      message: error.message,
    };
  }
  return {
    ok: true,
    status: ex.status,
    result: ex.result,
    error: ex.error,
    events: h.events.length,
    newCommands: ex.takeNewEvents().filter((e) => !isInbound(e)),
  };
}

/**
 * Like {@link replayHistory}, but throws the engine's error (a NonDeterminismError naming the
 * history position, recorded and produced step) when the code does not replay the history.
 *
 * @example
 * ```ts
 * import { assertReplays } from "@spool/testing";
 * import { it } from "vitest";
 *
 * it("replays the v1 golden history", async () => {
 *   await assertReplays(order, "test/histories/order-v1.json");
 * });
 * ```
 */
export async function assertReplays(
  // biome-ignore lint/suspicious/noExplicitAny: any workflow definition
  workflow: WorkflowDefinition<any, any>,
  history: HistorySource,
  options: ReplayHistoryOptions = {},
): Promise<ReplaySuccess> {
  const r = await replayHistory(workflow, history, options);
  if (!r.ok) throw r.error;
  return r;
}
