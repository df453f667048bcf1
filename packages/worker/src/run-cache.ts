/**
 * The live-run cache: executors with their suspended generators, keyed by run id, least recently
 * used evicted first, each with the run record it is current for. A cached run continues from
 * memory; an evicted one is replayed from history, with the same result either way. An evicted
 * executor is simply dropped (its generator is not closed: running its `finally` blocks would
 * execute workflow code outside any activation).
 *
 * An executor taken out is checked out until its holder puts it back (`put`) or drops it
 * (`delete`); a workflow task of the run can wait for it (`takeOrWait`) instead of replaying the
 * whole history while an eager completion holds it.
 */
import type { RunRecord, WorkflowExecutor } from "@spool/core";

/** A cached run: the executor and the run record as of its last committed activation. */
export interface CachedRun {
  executor: WorkflowExecutor;
  run: RunRecord;
}

/** A bounded LRU of live executors. */
export class RunCache {
  private readonly map = new Map<string, CachedRun>();
  /** Runs whose executor is taken out, with whoever waits for it (first come, first served). */
  private readonly checkedOut = new Map<string, ((entry: CachedRun | undefined) => void)[]>();
  evictions = 0;
  constructor(readonly capacity: number) {}

  /** Takes the entry out of the cache: the caller owns the executor until it puts it back or deletes it. */
  take(runId: string): CachedRun | undefined {
    const entry = this.map.get(runId);
    if (entry) {
      this.map.delete(runId);
      this.checkedOut.set(runId, []);
    }
    return entry;
  }

  /**
   * Takes the entry, or — when another holder has it checked out — waits until it is put back and
   * takes it then (handed over directly, so no other `take` can get in between). Resolves
   * undefined when nothing is cached, when the holder dropped the executor, or after `maxWaitMs`
   * (a holder that hangs must not hang the caller too: it can replay from history instead).
   */
  takeOrWait(runId: string, maxWaitMs: number): Promise<CachedRun | undefined> {
    const entry = this.take(runId);
    const waiters = this.checkedOut.get(runId);
    if (entry || !waiters) return Promise.resolve(entry);
    return new Promise((resolve) => {
      const waiter = (e: CachedRun | undefined) => {
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        const at = waiters.indexOf(waiter);
        if (at >= 0) waiters.splice(at, 1);
        resolve(undefined);
      }, maxWaitMs);
      timer.unref?.();
      waiters.push(waiter);
    });
  }

  /** Looks without taking (queries). */
  peek(runId: string): CachedRun | undefined {
    return this.map.get(runId);
  }

  /** Puts an entry back (to the first waiter, else as most recently used, evicting the oldest beyond capacity). */
  put(entry: CachedRun): void {
    const runId = entry.run.runId;
    const waiters = this.checkedOut.get(runId);
    this.checkedOut.delete(runId);
    const next = waiters?.shift();
    if (next && waiters) {
      this.checkedOut.set(runId, waiters);
      next(entry);
      return;
    }
    if (this.capacity <= 0) return;
    this.map.delete(runId);
    this.map.set(runId, entry);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.evictions++;
    }
  }

  /** Drops the run's executor (cached or checked out); whoever waits for it gets nothing. */
  delete(runId: string): void {
    this.map.delete(runId);
    const waiters = this.checkedOut.get(runId);
    this.checkedOut.delete(runId);
    for (const w of waiters ?? []) w(undefined);
  }

  clear(): void {
    this.map.clear();
    for (const runId of [...this.checkedOut.keys()]) this.delete(runId);
  }

  get size(): number {
    return this.map.size;
  }
}
