/**
 * What one step costs the storage, measured in an untimed pass: backend calls per step (by
 * method) and SQLite commits and WAL pages per step. Timed rounds never run with these counters.
 */
import { countBackendCalls, perStep } from "./backend-calls.ts";
import type { BenchEnv } from "./bench-env.ts";
import { watchWalCommits } from "./wal-commits.ts";

/** Per-step costs, as recorded in the JSON and printed under the table. */
export interface StepCosts {
  sqliteCommitsPerStep: number | string;
  walPagesPerStep: number | string;
  backendCallsPerStep: Record<string, { hits: number; empty: number }>;
}

/** Starts counting on an open stack; `stop(steps)` returns the costs divided by `steps`. */
export function measureStepCosts(env: BenchEnv): { stop(steps: number): StepCosts } {
  const calls = countBackendCalls(env.backend);
  const wal = watchWalCommits(env.db.path);
  return {
    stop(steps) {
      const w = wal.stop();
      calls.restore();
      const r3 = (n: number) => Math.round((n / steps) * 1000) / 1000;
      return {
        sqliteCommitsPerStep: "unknown" in w ? w.unknown : r3(w.commits),
        walPagesPerStep: "unknown" in w ? w.unknown : r3(w.pages),
        backendCallsPerStep: perStep(calls.counts, steps),
      };
    },
  };
}
