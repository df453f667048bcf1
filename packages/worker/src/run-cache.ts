/**
 * The live-run cache: executors with their suspended generators, keyed by run id, least recently
 * used evicted first. A cached run continues from memory; an evicted one is replayed from history,
 * with the same result either way. An evicted executor is simply dropped (its generator is not
 * closed: running its `finally` blocks would execute workflow code outside any activation).
 */
import type { WorkflowExecutor } from "@spool/core";

/** A bounded LRU of live executors. */
export class RunCache {
  private readonly map = new Map<string, WorkflowExecutor>();
  evictions = 0;
  constructor(readonly capacity: number) {}

  /** Takes the executor out of the cache (the caller owns it until it puts it back). */
  take(runId: string): WorkflowExecutor | undefined {
    const ex = this.map.get(runId);
    if (ex) this.map.delete(runId);
    return ex;
  }

  /** Looks without taking (queries). */
  peek(runId: string): WorkflowExecutor | undefined {
    return this.map.get(runId);
  }

  /** Puts an executor back as most recently used, evicting the oldest beyond capacity. */
  put(runId: string, ex: WorkflowExecutor): void {
    if (this.capacity <= 0) return;
    this.map.delete(runId);
    this.map.set(runId, ex);
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
