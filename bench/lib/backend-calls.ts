/**
 * Counts the calls a worker makes to its backend, split into calls that found work and calls that
 * came back empty (an empty claim writes no pages, so it costs no fsync). Used in an untimed pass
 * only, next to the WAL commit count (lib/wal-commits.ts): calls per step say how much work the
 * worker asks of the backend, commits per step how much of it reaches the disk separately (the
 * SQLite backend may group several calls into one transaction).
 */
import type { Backend } from "spool";

/** Backend methods that are worth counting, and how to tell an empty result. */
const METHODS: Record<string, ((result: unknown) => boolean) | null> = {
  startWorkflow: null,
  claimWorkflowTask: (r) => r === null,
  commitActivation: null,
  claimActivityTask: (r) => r === null,
  completeActivityTask: null,
  fireDueTimers: (r) => r === 0,
  releaseWorkflowTask: null,
  retryActivityTask: null,
  heartbeatActivityTask: null,
  getHistory: null,
  getInbox: null,
  nextWakeAt: null,
};

/** Calls per method: `hits` found or wrote something, `empty` came back empty. */
export type CallCounts = Record<string, { hits: number; empty: number }>;

/**
 * Wraps the counted methods of this backend instance (own properties shadowing the prototype's)
 * and returns the live counts and a function that removes the wrappers.
 */
export function countBackendCalls(backend: Backend): { counts: CallCounts; restore(): void } {
  const counts: CallCounts = {};
  const target = backend as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const wrapped: string[] = [];
  for (const [name, isEmpty] of Object.entries(METHODS)) {
    const original = target[name];
    if (typeof original !== "function") continue;
    const c = { hits: 0, empty: 0 };
    counts[name] = c;
    target[name] = async (...args: unknown[]) => {
      const result = await original.apply(backend, args);
      if (isEmpty?.(result)) c.empty++;
      else c.hits++;
      return result;
    };
    wrapped.push(name);
  }
  return {
    counts,
    restore() {
      for (const name of wrapped) delete target[name];
    },
  };
}

/** Per-step rates of the counts: `{ method: { hits, empty } }` divided by `steps`, rounded. */
export function perStep(counts: CallCounts, steps: number): Record<string, { hits: number; empty: number }> {
  const out: Record<string, { hits: number; empty: number }> = {};
  for (const [name, c] of Object.entries(counts)) {
    if (c.hits === 0 && c.empty === 0) continue;
    out[name] = { hits: round3(c.hits / steps), empty: round3(c.empty / steps) };
  }
  return out;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
