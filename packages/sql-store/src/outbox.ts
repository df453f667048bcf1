/**
 * The outbox of one write transaction: what it wants to tell listeners once it has committed (a
 * notification sent before the commit could wake a worker that then finds nothing). Backends fill
 * it inside the transaction and turn it into {@link BackendNotification}s after COMMIT.
 */
import type { BackendNotification } from "@spool/core";

/** What one transaction wants to tell listeners once it has committed. */
export class Outbox {
  /** A workflow task became ready (a run was created, or something arrived in an inbox). */
  workflowTask = false;
  /** An activity task became claimable. */
  activityTask = false;
  /** A timer was created. */
  timer = false;
  /** Leased activity tasks that were withdrawn: their running attempts should stop. */
  readonly cancelled: string[] = [];
  /** Runs that ended. */
  readonly closed: { runId: string; workflowId: string }[] = [];

  /** True when there is nothing to announce. */
  get empty(): boolean {
    return (
      !this.workflowTask &&
      !this.activityTask &&
      !this.timer &&
      this.cancelled.length === 0 &&
      this.closed.length === 0
    );
  }

  /** The notifications for listeners, in a fixed order: tasks, timers, cancellations, closes. */
  notifications(): BackendNotification[] {
    const notes: BackendNotification[] = [];
    if (this.workflowTask) notes.push({ kind: "workflow-task" });
    if (this.activityTask) notes.push({ kind: "activity-task" });
    if (this.timer) notes.push({ kind: "timer" });
    for (const taskId of this.cancelled) notes.push({ kind: "activity-cancelled", taskId });
    for (const c of this.closed) notes.push({ kind: "run-closed", runId: c.runId, workflowId: c.workflowId });
    return notes;
  }
}
