/**
 * The unknown-work check: runs and steps wait forever for a worker that has their code. Claims
 * are filtered by name, so such work never blocks others — and nobody would notice it either.
 * This check looks for ready work that no live worker hosts and says so, once per name every ten
 * minutes, naming the fix.
 */
import { type Backend, unhostedWork, type WorkerInfo, type WorkerRegistration } from "@spool/core";
import type { Logger } from "./logger.ts";

/** How often a name already reported may be reported again. */
const REPORT_EVERY_MS = 600_000;

/** Work of one name that no live worker hosts. */
export interface UnknownWork {
  kind: string;
  name: string;
  count: number;
}

/** Looks for ready work no live worker hosts, on a timer and on demand. */
export class UnknownWorkReporter {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly reported = new Map<string, number>();

  /**
   * @param self - this worker's registration: what it hosts counts as hosted even before the
   *   registry lists it.
   */
  constructor(
    private readonly backend: Backend,
    private readonly log: Logger,
    private readonly check: { intervalMs: number; minAgeMs: number },
    private readonly self: () => WorkerRegistration,
  ) {}

  /** Checks every `intervalMs` until stopped. */
  start(): void {
    this.timer = setInterval(() => void this.report(), this.check.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Checks now; logs each unhosted name not reported in the last ten minutes and returns them all. */
  async report(): Promise<UnknownWork[]> {
    const now = this.backend.now();
    let waiting: Awaited<ReturnType<Backend["inspect"]["waitingWork"]>>;
    try {
      waiting = await this.backend.inspect.waitingWork(now - this.check.minAgeMs);
    } catch {
      return [];
    }
    // Hosted: what this worker runs, and what every live worker registered (a name another live
    // worker hosts is only waiting its turn there).
    let workers: WorkerInfo[] = [];
    try {
      workers = await this.backend.inspect.workers();
    } catch {
      // Without the registry, judge by this worker's names alone.
    }
    const { workerId, workflowNames, activityNames } = this.self();
    const self: WorkerInfo = {
      workerId,
      workflowNames,
      activityNames,
      pid: null,
      host: null,
      startedAt: 0,
      heartbeatAt: 0,
      status: "live",
    };
    const unknown = unhostedWork(waiting, [self, ...workers]);
    for (const w of unknown) {
      const key = `${w.kind}:${w.name}`;
      if ((this.reported.get(key) ?? 0) > now - REPORT_EVERY_MS) continue;
      this.reported.set(key, now);
      this.log.warn(
        `${w.count} ${w.kind} task(s) of "${w.name}" have waited since ${new Date(w.oldestReadyAt).toISOString()} ` +
          `and no live worker hosts ${w.kind} "${w.name}". Register its definition with a worker ` +
          `(new Worker({ ${w.kind === "workflow" ? "workflows" : "activities"}: [...] })), or cancel those runs.`,
        { kind: w.kind, name: w.name, count: w.count, workerId },
      );
    }
    return unknown.map((w) => ({ kind: w.kind, name: w.name, count: w.count }));
  }
}
