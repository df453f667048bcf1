/**
 * The SQLite backend's default clock kept in step with the file: every time stored in the file is
 * on the anchor recorded in its `clock_anchor` row. A wall-clock step (NTP, `date -s`) is noticed
 * when the clock is read and reconciled at the start of the next write batch: every pending time —
 * timer due times, task visibility, leases, worker heartbeats — is moved by the step, once for all
 * processes on the machine (they see the same step; the first to get there applies it, the others
 * find the anchor already moved and adopt it). History keeps the times it recorded.
 *
 * Absolute times a caller computed from `now()` before an anchor change (retry times, timer due
 * times) are on the old anchor: the frame shifts adopted since let a write correct them (see
 * {@link ClockSync.shiftSince}). Not used with an injected clock.
 */
import { AnchoredClock, monotonicMs, STEP_MS } from "./anchored-clock.ts";
import { selfIdentity } from "./process-identity.ts";
import type { Statements } from "./statements.ts";

/** The clock state a write batch may change, kept to undo it when the batch rolls back. */
export interface ClockSnapshot {
  offset: number;
  baseline: number;
  unrecorded: boolean;
}

/** A reconciled step's warning: told once the batch that moved the file's times has committed. */
export type ClockWarning = [message: string, fields: Record<string, unknown>];

/** The anchored clock of one backend, and its reconciliation with the file's anchor. */
export class ClockSync {
  private readonly clock = new AnchoredClock();
  /** The warning of a step reconciled by the running batch, told once the batch commits. */
  private warning: ClockWarning | undefined;
  /** Every anchor change adopted by this process, in order (their sum corrects late absolute times). */
  private readonly frameShifts: number[] = [];
  /** A wall-clock step was seen and not yet reconciled with the file's anchor. */
  private stepPending = false;
  /** The file has no anchor for this boot yet: the first write batch records it (moving nothing). */
  private anchorUnrecorded = false;

  /**
   * @param readAnchor reads the file's anchor row outside a transaction (undefined when it cannot).
   * @param requestWrite schedules a write batch, in which a noticed step is reconciled.
   */
  constructor(
    private readonly stmts: Statements,
    private readonly path: string,
    readAnchor: () => { boot_id: string | null; offset_ms: number } | undefined,
    private readonly requestWrite: () => void,
  ) {
    // Read-only, like opening a migrated file: adopt the file's anchor when it is this boot's; a
    // step since then shows as soon as the clock is read. Otherwise (a new file, another boot)
    // the first write records this boot's anchor.
    const row = readAnchor();
    if (row !== undefined && row.boot_id !== null && row.boot_id === selfIdentity.bootId) {
      // Times in the file are on its anchor. If the wall clock shows another offset, it stepped
      // while this process was not looking: treat that as a step of its own, reconciled (the
      // file's pending times moved) at the first write.
      this.clock.offset = row.offset_ms;
      this.clock.wallBaseline = row.offset_ms;
      if (this.clock.localStep() !== 0) this.stepPending = true;
    } else {
      this.anchorUnrecorded = true;
    }
  }

  /** Wall time on the adopted anchor; a step is noticed here and reconciled soon. */
  now(): number {
    if (!this.stepPending && this.clock.localStep() !== 0) {
      this.stepPending = true;
      // Reconciled at the start of the next write batch: make sure there is one.
      this.requestWrite();
    }
    return this.clock.now();
  }

  /** A step was seen and not yet reconciled (a read then adopts one another process applied). */
  get pending(): boolean {
    return this.stepPending;
  }

  /** The count of anchor changes so far: a write remembers it when it is requested. */
  get generation(): number {
    return this.frameShifts.length;
  }

  /** How far the anchor moved since `generation`: added to absolute times computed back then. */
  shiftSince(generation: number): number {
    let shift = 0;
    for (let i = generation; i < this.frameShifts.length; i++) shift += this.frameShifts[i]!;
    return shift;
  }

  /**
   * Reconciles this process's clock with the file's anchor, inside a write transaction. When the
   * wall clock shows another offset (a step), every pending time is moved by the step and the new
   * offset recorded. At open, a file anchored on another boot (or with no boot id to compare) is
   * re-anchored without moving anything: the monotonic clock restarted, so the offset says nothing
   * about a step.
   */
  syncInTransaction(): void {
    const clock = this.clock;
    const atOpen = this.anchorUnrecorded;
    this.stepPending = false;
    this.anchorUnrecorded = false;
    const s = this.stmts;
    const wall = clock.wallOffset();
    const boot = selfIdentity.bootId;
    const row = s.readClockAnchor.get();
    if (row === undefined || row.boot_id !== boot || (boot === null && atOpen)) {
      s.writeClockAnchor.run(boot, wall);
      this.adoptOffset(wall);
      clock.wallBaseline = wall;
      return;
    }
    // What other processes applied since this one last synced, and what this one saw itself.
    const movedBy = row.offset_ms - clock.offset;
    const step = clock.localStep();
    clock.wallBaseline = wall;
    if (step === 0 || Math.abs(movedBy - step) <= STEP_MS) {
      // No step of its own, or the one it saw was applied already: follow the file.
      this.adoptOffset(row.offset_ms);
      return;
    }
    const delta = step;
    const timers = s.shiftTimers.run(delta).changes;
    const workflowTasks = s.shiftWorkflowTasks.run(delta, delta).changes;
    const activityTasks = s.shiftActivityTasks.run(delta, delta).changes;
    s.shiftWorkers.run(delta);
    const anchor = row.offset_ms + delta;
    s.writeClockAnchor.run(boot, anchor);
    const before = row.offset_ms + monotonicMs();
    this.adoptOffset(anchor);
    // Reported once the transaction has committed (what it says was moved is then true).
    this.warning = [
      `the wall clock stepped by ${delta > 0 ? "+" : ""}${delta} ms (from ${new Date(before).toISOString()} ` +
        `to ${new Date(clock.now()).toISOString()}) against the machine's monotonic clock. Spool moved ` +
        `${timers} timer(s) and ${workflowTasks + activityTasks} task time(s) and lease(s) in ${this.path} by ` +
        "the same amount, so sleeps, back-offs and leases keep their durations (a sleepUntil() target moves " +
        "with them); history keeps the times it recorded. If the step was not expected, check the time " +
        "service (NTP/chrony should slew, not step).",
      { stepMs: delta, timers, tasks: workflowTasks + activityTasks, path: this.path },
    ];
  }

  /** Outside a transaction: adopt a step another process already applied (read-only). */
  adoptAppliedStep(readAnchor: () => { offset_ms: number } | undefined): void {
    const clock = this.clock;
    const row = readAnchor();
    const step = clock.localStep();
    if (row !== undefined && Math.abs(row.offset_ms - clock.offset - step) <= STEP_MS) {
      this.adoptOffset(row.offset_ms);
      clock.wallBaseline = clock.wallOffset();
      this.stepPending = false;
    }
  }

  /** The state a batch may change; see {@link revert}. */
  snapshot(): ClockSnapshot {
    return {
      offset: this.clock.offset,
      baseline: this.clock.wallBaseline,
      unrecorded: this.anchorUnrecorded,
    };
  }

  /** A batch that synced the clock rolled back: so did the anchor, so the step is still pending. */
  revert(before: ClockSnapshot): void {
    this.warning = undefined;
    this.anchorUnrecorded = before.unrecorded;
    this.clock.wallBaseline = before.baseline;
    if (this.clock.localStep() !== 0) this.stepPending = true;
    if (this.clock.offset === before.offset) return;
    this.frameShifts.push(before.offset - this.clock.offset);
    this.clock.offset = before.offset;
  }

  /** The warning of the batch that just committed, once. */
  takeWarning(): ClockWarning | undefined {
    const w = this.warning;
    this.warning = undefined;
    return w;
  }

  /** Moves this process onto another anchor, remembering by how much (see shiftSince). */
  private adoptOffset(offset: number): void {
    if (offset === this.clock.offset) return;
    this.frameShifts.push(offset - this.clock.offset);
    this.clock.offset = offset;
  }
}
