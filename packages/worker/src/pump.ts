/**
 * The pump: the one loop that claims work. It runs a round (fire due timers, claim each kind of
 * task) when woken — by the backend's notifications (immediately, in-process), when a slot frees
 * up, when the next timer or retry falls due — and otherwise at a bounded back-off poll for work
 * other processes added. While storage is full it claims nothing until the back-off ends.
 */
import type { Backend } from "@spool/core";
import type { StorageBackoff } from "./backoff.ts";
import type { Logger } from "./logger.ts";

/** What the pump needs: the round to run and when it may run. */
export interface PumpDeps {
  backend: Backend;
  log: Logger;
  storage: StorageBackoff;
  /** Polling back-off bounds (see WorkerOptions.pollIntervalMs). */
  pollIntervalMs: { min: number; max: number };
  /** One round of claiming; resolves true when it found work. */
  round: () => Promise<boolean>;
  /** False once the worker drains: the pump then stops. */
  isRunning: () => boolean;
}

/** Runs claim rounds when woken, and on its own at the poll delay. */
export class Pump {
  private pumping = false;
  private pumpAgain = false;
  private wakeTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeScheduled = false;
  private pollDelay: number;
  private lastError: unknown;

  constructor(private readonly deps: PumpDeps) {
    this.pollDelay = deps.pollIntervalMs.min;
  }

  /** True while a round runs or one is requested: the worker is not idle. */
  get busy(): boolean {
    return this.pumping || this.pumpAgain;
  }

  /** Runs a round soon (in this turn's setImmediate), or once more after the current one. */
  wake(): void {
    if (!this.deps.isRunning()) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    if (this.wakeScheduled) return;
    // setImmediate, not setTimeout(0): Node rounds a zero timeout up to 1 ms, a millisecond of idle per step.
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      void this.pump();
    });
  }

  /** Cancels the next scheduled poll (the worker is draining). */
  stop(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
  }

  private async pump(): Promise<void> {
    const { storage, log, isRunning } = this.deps;
    if (this.pumping || !isRunning()) return;
    this.pumping = true;
    this.wakeTimer = null;
    let found = false;
    try {
      do {
        this.pumpAgain = false;
        // Storage full: claim nothing whose outcome could not be recorded until the back-off ends.
        if (storage.isBlocked()) break;
        found = (await this.deps.round()) || found;
      } while (this.pumpAgain && isRunning());
      this.lastError = undefined;
    } catch (err) {
      storage.full(err);
      if (this.lastError === undefined || String(this.lastError) !== String(err)) {
        log.error("worker loop error; retrying with back-off", { error: String(err) });
      }
      this.lastError = err;
      found = false;
    } finally {
      this.pumping = false;
    }
    if (!isRunning()) return;
    await this.scheduleNext(found);
  }

  private async scheduleNext(found: boolean): Promise<void> {
    const { backend, storage, isRunning } = this.deps;
    const { min, max } = this.deps.pollIntervalMs;
    this.pollDelay = found ? min : Math.min(max, this.pollDelay * 2);
    let delay = this.pollDelay;
    try {
      const next = await backend.nextWakeAt();
      // Never sooner than the minimum poll when this round found nothing: a ready task of a name
      // this worker does not run (or one another worker is sweeping) would otherwise spin the loop.
      if (next !== null) delay = Math.min(delay, Math.max(found ? 0 : min, next - backend.now()));
    } catch {
      // The next poll will tell.
    }
    delay = Math.max(delay, storage.blockedUntil - Date.now());
    if (!isRunning()) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => void this.pump(), delay);
  }
}
