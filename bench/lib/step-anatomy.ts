/**
 * Where the time of one sequential step goes, measured in an untimed pass. A step is the interval
 * from one activity starting to the next one starting (what `step latency` times); on the eager
 * path it passes, in order:
 *
 * - `engine`: the no-op activity, its output check, and the activation it triggers (the event
 *   applied to the cached executor, the workflow code run to its next step, the events encoded) —
 *   up to the `commitActivation` call;
 * - `queue + BEGIN`: waiting for the group commit's turn of the event loop, and `BEGIN IMMEDIATE`;
 * - `statements`: the activation's SQL inside the transaction;
 * - `COMMIT`: the commit — WAL frames written and, at `full`, fsync'd;
 * - `to next step`: the caller told, the claimed activity started, its input decoded.
 *
 * Stamps come from the backend's (test-only) fault points and a wrapper around `commitActivation`
 * on the instance. Only steps within one run whose every stamp is in order count; the median of each phase is
 * reported (the medians need not add up to the median step).
 */
import type { SqliteBackend, SqliteFaultPoint } from "@spool/sqlite";
import type { ActivityInfo } from "spool";
import { percentile } from "./stats.ts";

/** Phase medians in µs, and how many steps they are taken from. */
export type StepAnatomy = Record<string, number>;

/** A recorder: give `faultHook` to the backend, call `attach` on it, feed `onStep` from the activity. */
export function stepAnatomy(): {
  faultHook: (point: SqliteFaultPoint) => void;
  attach(backend: SqliteBackend): void;
  onStep(info: ActivityInfo): void;
  result(): StepAnatomy;
} {
  const phases = {
    engine: [] as number[],
    "queue + BEGIN": [] as number[],
    statements: [] as number[],
    COMMIT: [] as number[],
    "to next step": [] as number[],
    step: [] as number[],
  };
  // Stamps of the step in flight; reset when a step starts.
  let start = 0;
  let workflowId = "";
  let call = 0;
  let begin = 0;
  let end = 0;
  let after = 0;
  return {
    faultHook(point) {
      const now = performance.now();
      if (point === "sqlite.write.begin" && call > 0 && begin === 0) begin = now;
      else if (point === "sqlite.commit.end" && begin > 0 && end === 0) end = now;
      else if (point === "sqlite.commit.after" && end > 0 && after === 0) after = now;
    },
    attach(backend) {
      const commit = backend.commitActivation.bind(backend);
      backend.commitActivation = (req) => {
        if (start > 0 && call === 0) call = performance.now();
        return commit(req);
      };
    },
    onStep(info) {
      const now = performance.now();
      // The first step of a workflow follows the previous one's close and this one's start: not a step.
      const sameRun = info.workflowId === workflowId;
      if (
        sameRun &&
        start > 0 &&
        start < call &&
        call <= begin &&
        begin <= end &&
        end <= after &&
        after <= now
      ) {
        phases.engine.push(call - start);
        phases["queue + BEGIN"].push(begin - call);
        phases.statements.push(end - begin);
        phases.COMMIT.push(after - end);
        phases["to next step"].push(now - after);
        phases.step.push(now - start);
      }
      start = now;
      workflowId = info.workflowId;
      call = begin = end = after = 0;
    },
    result() {
      const out: StepAnatomy = { steps: phases.step.length };
      for (const [name, list] of Object.entries(phases)) {
        out[`${name} (µs, median)`] = Math.round(percentile(list, 50) * 1000 * 10) / 10;
      }
      return out;
    },
  };
}
