/**
 * The worker's two back-offs: storage full (nothing is claimed until writes succeed again) and
 * blocked runs (a run whose code cannot continue is offered again later and later).
 */
import { StorageFullError } from "@spool/core";
import type { Logger } from "./logger.ts";

/**
 * A write failed for lack of space (SQLITE_FULL, quota): stop claiming for a back-off (200 ms
 * doubling to 5 s) rather than claim, run and fail again in a loop — an activity run now would
 * repeat its side effect once its unrecordable attempt is retried. When the back-off ends the
 * pump claims again; the first write that succeeds clears it.
 */
export class StorageBackoff {
  /** Nothing is claimed until this time (Date.now() scale); 0 = healthy. */
  blockedUntil = 0;
  private backoffMs = 0;

  constructor(
    private readonly log: Logger,
    private readonly workerId: string,
  ) {}

  /** True while storage is full: a claim round is a probe of one task, not a batch. */
  get probing(): boolean {
    return this.backoffMs > 0;
  }

  /** True while claims must wait. */
  isBlocked(): boolean {
    return Date.now() < this.blockedUntil;
  }

  /** Notes a failed write; anything but a StorageFullError is ignored. */
  full(err: unknown): void {
    if (!StorageFullError.is(err)) return;
    if (this.backoffMs === 0) {
      this.log.warn("storage is full: claiming paused until writes succeed again", { error: String(err) });
    }
    this.backoffMs = Math.min(5000, Math.max(200, this.backoffMs * 2));
    this.blockedUntil = Date.now() + this.backoffMs;
  }

  /** Notes a write that succeeded: claiming resumes at once. */
  ok(): void {
    if (this.backoffMs === 0) return;
    this.backoffMs = 0;
    this.blockedUntil = 0;
    this.log.info("storage writable again: claiming resumed", { workerId: this.workerId });
  }
}

/**
 * How long a run parked as blocked waits before it is offered again: `initialMs` doubling to
 * `maxMs` per consecutive block of the same run, reset when an activation of it commits.
 */
export class BlockedRunBackoff {
  private readonly attempts = new Map<string, number>();

  constructor(private readonly retry: { initialMs: number; maxMs: number }) {}

  /** The delay before the run's next offer, counting this block. */
  next(runId: string): number {
    const n = (this.attempts.get(runId) ?? 0) + 1;
    this.attempts.set(runId, n);
    const { initialMs, maxMs } = this.retry;
    return Math.min(maxMs, initialMs * 2 ** Math.min(n - 1, 30));
  }

  /** The run made progress: its next block starts from the initial delay. */
  clear(runId: string): void {
    this.attempts.delete(runId);
  }
}
