/**
 * The `ctx` object handed to workflow code: identity, workflow time, seeded randomness, the
 * replay-aware logger, run info and query registration. Everything it returns is derived from the
 * run's state, so it is as deterministic as the history.
 */

import type { QueryDefinition } from "../definitions/query.ts";
import type { WorkflowContext, WorkflowLogger } from "../definitions/workflow.ts";
import { WorkflowCodeError } from "../errors.ts";
import type { WorkflowLogEntry } from "./executor-options.ts";
import { seededRandom } from "./random.ts";
import type { RunState } from "./run-state.ts";

/** Builds the context of a run. */
export function makeContext(s: RunState): WorkflowContext {
  const rng = seededRandom(s.runId);
  const logAt =
    (level: WorkflowLogEntry["level"]) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (s.isReplaying || !s.opts.log) return;
      s.opts.log({ level, message, fields, workflowId: s.workflowId, runId: s.runId, ts: s.nowTs });
    };
  const log: WorkflowLogger = {
    debug: logAt("debug"),
    info: logAt("info"),
    warn: logAt("warn"),
    error: logAt("error"),
  };
  return {
    workflowId: s.workflowId,
    runId: s.runId,
    now: () => new Date(s.nowTs),
    random: () => rng.random(),
    uuid: () => rng.uuid(),
    get isReplaying() {
      return s.isReplaying;
    },
    get cancelRequested() {
      return s.cancelRequested;
    },
    log,
    get info() {
      const st = s.started;
      return {
        workflowName: s.definition.name,
        version: st?.version,
        startedAt: new Date(st?.ts ?? 0),
        parent: st?.parent ? { workflowId: st.parent.workflowId, runId: st.parent.runId } : undefined,
        continuedFrom: st?.continuedFrom,
        historyLength: s.lastSeq,
      };
    },
    onQuery<T>(query: QueryDefinition<T>, handler: () => T): void {
      if (typeof handler !== "function") {
        throw new WorkflowCodeError(`ctx.onQuery("${query.name}") needs a function`);
      }
      s.queryHandlers.set(query.name, handler);
    },
  };
}
