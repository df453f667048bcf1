/**
 * The worker's entry in the backend's worker registry: registering at start, a heartbeat that
 * proves it alive, a sweep that releases the leases of workers found dead (so their runs resume
 * without waiting for the leases to run out), and unregistering at shutdown.
 */
import { type Backend, newId, type WorkerRegistration } from "@spool/core";
import type { Logger } from "./logger.ts";
import type { LivenessSettings } from "./options.ts";

/** What the registry needs to know about its worker. */
export interface RegistryIdentity {
  workerId: string;
  workflowNames: string[];
  activityNames: string[];
  liveness: LivenessSettings;
}

/** Keeps one worker registered and alive in the backend's registry. */
export class WorkerRegistry {
  /** New per Worker object: tells the registry this is not an earlier process with the same id. */
  private readonly incarnation = newId();
  private timers: ReturnType<typeof setInterval>[] = [];
  private heartbeating = false;
  private sweeping = false;
  private active = false;

  /**
   * @param onDeadWorkersReleased - called when a sweep freed leases (work may be claimable now).
   */
  constructor(
    private readonly backend: Backend,
    private readonly log: Logger,
    private readonly identity: RegistryIdentity,
    private readonly onDeadWorkersReleased: () => void,
  ) {}

  /** What this worker tells the registry: who it is and the names it hosts. */
  registration(): WorkerRegistration {
    const { workerId, workflowNames, activityNames, liveness } = this.identity;
    return {
      workerId,
      incarnation: this.incarnation,
      workflowNames,
      activityNames,
      heartbeatIntervalMs: liveness.heartbeatIntervalMs,
      deadAfterMs: liveness.deadAfterMs,
    };
  }

  /** Registers the worker (before it claims anything). */
  async register(): Promise<void> {
    await this.backend.registerWorker(this.registration());
  }

  /**
   * Starts the heartbeat and the sweep, then sweeps once at once: a worker restarted after a
   * crash frees what its predecessor (or any dead worker) held before its first claim, rather
   * than a sweep interval later.
   */
  async start(): Promise<void> {
    this.active = true;
    const { heartbeatIntervalMs, sweepIntervalMs } = this.identity.liveness;
    this.timers = [
      setInterval(() => void this.heartbeat(), heartbeatIntervalMs),
      setInterval(() => void this.sweepDeadWorkers(), sweepIntervalMs),
    ];
    for (const t of this.timers) t.unref?.();
    await this.sweepDeadWorkers();
  }

  /** Stops the heartbeat and the sweep (the worker is draining). */
  stop(): void {
    this.active = false;
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Removes the worker from the registry (it has stopped); failures are ignored. */
  async unregister(): Promise<void> {
    await this.backend.unregisterWorker(this.identity.workerId).catch(() => undefined);
  }

  /** Proves this worker alive; if the others presumed it dead (a long stall), registers again. */
  private async heartbeat(): Promise<void> {
    if (this.heartbeating || !this.active) return;
    this.heartbeating = true;
    try {
      if (await this.backend.heartbeatWorker(this.identity.workerId)) return;
      if (!this.active) return;
      this.log.warn(
        "this worker was presumed dead by the others (no heartbeat for longer than " +
          `${this.identity.liveness.deadAfterMs} ms: was the process stalled?); the leases it held were released and ` +
          "its attempts still running will be rejected. Registering again.",
        { workerId: this.identity.workerId },
      );
      await this.backend.registerWorker(this.registration());
    } catch {
      // A heartbeat that fails (storage busy or down) is tried again next interval.
    } finally {
      this.heartbeating = false;
    }
  }

  /** Releases the leases of workers found dead, so their runs resume now rather than when leases run out. */
  private async sweepDeadWorkers(): Promise<void> {
    if (this.sweeping || !this.active) return;
    this.sweeping = true;
    try {
      const swept = await this.backend.releaseDeadWorkers();
      if (swept.workers.length === 0) return;
      this.log.warn(
        `worker(s) ${swept.workers.join(", ")} found dead: released ${swept.workflowTasks} workflow task and ` +
          `${swept.activityTasks} activity task lease(s) for other workers to take over`,
        { workerId: this.identity.workerId, dead: swept.workers, ...swept },
      );
      this.onDeadWorkersReleased();
    } catch {
      // Tried again next interval.
    } finally {
      this.sweeping = false;
    }
  }
}
