/**
 * The generic poller, one per kind of task (workflow tasks, activity tasks): claims into free
 * concurrency slots, runs each task in a slot, and asks the pump for another round when a slot
 * frees up after claiming stopped for lack of one (starvation).
 */

/** One kind of task, as the poller sees it. */
export interface TaskKind<T> {
  /** Tasks of this kind running at once. */
  maxConcurrent: number;
  /** Most claims issued at once in one step of a round. */
  maxBatch: number;
  /** Claims one task; null when none is ready. */
  claim(): Promise<T | null>;
  /** Awaited before a claimed task takes its slot (a fault point for crash tests). */
  beforeRun?(task: T): Promise<void> | void;
  /** Runs a task to its end; the slot is freed when the promise settles (it must not reject). */
  run(task: T): Promise<unknown>;
}

/** Claims and runs the tasks of one kind in a bounded number of slots. */
export class TaskPoller<T> {
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Claiming stopped because every slot was busy; a freed slot must wake the pump. */
  private starved = false;

  /**
   * @param wake - asks the pump for a round.
   * @param canClaim - false once the worker drains.
   * @param probing - true while storage is full: a round claims one task, not a batch.
   */
  constructor(
    private readonly kind: TaskKind<T>,
    private readonly wake: () => void,
    private readonly canClaim: () => boolean,
    private readonly probing: () => boolean,
  ) {}

  /** Tasks running now. */
  get size(): number {
    return this.inFlight.size;
  }

  /** Slots free now. */
  get free(): number {
    return this.kind.maxConcurrent - this.inFlight.size;
  }

  /**
   * Claims into the free slots. One claim first; while every claim finds work the next step
   * doubles, up to `maxBatch` and the free slots — so the claims that find nothing are bounded
   * by those that found something, and a backend with group commit serves a step's claims in
   * one transaction. Resolves true when something was claimed.
   */
  async poll(): Promise<boolean> {
    let any = false;
    let batch = 1;
    while (this.canClaim()) {
      const free = Math.min(batch, this.free);
      if (free <= 0) {
        this.starved = true;
        break;
      }
      batch = Math.min(this.kind.maxBatch, batch * 2);
      const claimed = await Promise.all(Array.from({ length: free }, () => this.kind.claim()));
      let n = 0;
      for (const task of claimed) {
        if (task === null) continue;
        n++;
        if (this.kind.beforeRun) await this.kind.beforeRun(task);
        this.start(task);
      }
      if (n > 0) any = true;
      if (n < free) break;
      if (this.probing()) break; // storage full: a probe claims one task, not a batch
    }
    return any;
  }

  /** Runs a task in a slot: one claimed here, or one handed over (claimed eagerly by a commit). */
  start(task: T): void {
    const p: Promise<unknown> = this.kind.run(task).finally(() => {
      this.inFlight.delete(p);
      this.wakeIfStarved();
    });
    this.inFlight.add(p);
  }

  /** Resolves when every task running now has settled. */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.inFlight]);
  }

  /** A slot was freed: claim again, but only if claiming stopped for lack of slots. */
  private wakeIfStarved(): void {
    if (!this.starved) return;
    this.starved = false;
    this.wake();
  }
}
