/**
 * The live-run cache: executors with their suspended generators, keyed by run id, least recently
 * used evicted first, each with the run record it is current for. A cached run continues from
 * memory; an evicted one is replayed from history, with the same result either way. An evicted
 * executor is simply dropped (its generator is not closed: running its `finally` blocks would
 * execute workflow code outside any activation).
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
  evictions = 0;
  constructor(readonly capacity: number) {}

  /** Takes the entry out of the cache: the caller owns the executor until it puts it back. */
  take(runId: string): CachedRun | undefined {
    const entry = this.map.get(runId);
    if (entry) this.map.delete(runId);
    return entry;
  }

  /** Looks without taking (queries). */
  peek(runId: string): CachedRun | undefined {
    return this.map.get(runId);
  }

  /** Puts an entry back as most recently used, evicting the oldest beyond capacity. */
  put(entry: CachedRun): void {
    if (this.capacity <= 0) return;
    const runId = entry.run.runId;
    this.map.delete(runId);
    this.map.set(runId, entry);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.evictions++;
    }
  }

  delete(runId: string): void {
    this.map.delete(runId);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
