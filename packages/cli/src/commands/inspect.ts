/**
 * Read-only commands: list, describe, history, stats. They use the backend's inspection
 * interface and the client's decoding, and never write.
 */
import { Client, type PendingActivityDescription, type RunDescription } from "@spool/client";
import { type Backend, describeEvent, type RunStatus } from "@spool/core";
import { type CliIo, table, toJson, UsageError } from "../io.ts";
import { cut, eventPayloadSummary } from "../payload-summary.ts";

const STATUSES: RunStatus[] = ["running", "blocked", "completed", "failed", "cancelled", "continued"];

/** `spool list`: runs newest first, with filters and paging. */
export async function listCommand(
  backend: Backend,
  io: CliIo,
  o: {
    status?: string;
    workflow?: string;
    idPrefix?: string;
    limit?: string;
    cursor?: string;
    json?: boolean;
  },
): Promise<number> {
  const status = o.status?.split(",").map((s) => s.trim()) as RunStatus[] | undefined;
  for (const s of status ?? []) {
    if (!STATUSES.includes(s))
      throw new UsageError(`unknown status "${s}"; use one of ${STATUSES.join(", ")}`);
  }
  const limit = o.limit === undefined ? 20 : Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError("--limit takes a whole number ≥ 1");
  const client = new Client({ backend });
  const page = await client.list(
    { status, workflowName: o.workflow, workflowIdPrefix: o.idPrefix },
    { limit, cursor: o.cursor ?? null },
  );
  if (o.json) {
    io.out(toJson(page));
    return 0;
  }
  if (page.runs.length === 0) {
    io.out("no runs match");
    return 0;
  }
  const rows = page.runs.map((r) => [
    r.workflowId,
    r.runId,
    r.workflowName,
    r.status,
    String(r.historyLength),
    r.createdAt.toISOString(),
    pendingCell(r.pendingActivities),
    r.blockedReason ?? (r.error ? cut(r.error.message) : ""),
  ]);
  for (const l of table(
    ["WORKFLOW ID", "RUN ID", "WORKFLOW", "STATUS", "EVENTS", "CREATED", "PENDING", "NOTE"],
    rows,
  ))
    io.out(l);
  if (page.nextCursor) io.out(`more: --cursor ${page.nextCursor}`);
  return 0;
}

/** Pending steps `spool describe` prints (the JSON has all). */
const PENDING_SHOWN = 10;

/** `spool describe <workflowId>`. */
export async function describeCommand(
  backend: Backend,
  io: CliIo,
  workflowId: string,
  o: { run?: string; json?: boolean },
): Promise<number> {
  const d: RunDescription = await new Client({ backend }).getHandle(workflowId, o.run).describe();
  if (o.json) {
    io.out(toJson(d));
    return 0;
  }
  const lines: [string, string][] = [
    ["workflow id", d.workflowId],
    ["run id", d.runId],
    ["workflow", d.workflowName],
    ["status", d.status],
    ["version", d.version ?? "-"],
    ["created", d.createdAt.toISOString()],
    ["updated", d.updatedAt.toISOString()],
    ["closed", d.closedAt?.toISOString() ?? "-"],
    ["history", `${d.historyLength} events`],
  ];
  if (d.parent) lines.push(["parent", `${d.parent.workflowId} (run ${d.parent.runId})`]);
  if (d.continuedFromRunId) lines.push(["continued from", d.continuedFromRunId]);
  if (d.continuedToRunId) lines.push(["continued to", d.continuedToRunId]);
  if (d.blockedReason) lines.push(["blocked", d.blockedReason]);
  if (d.error) lines.push(["error", `${d.error.name}: ${d.error.message}`]);
  // A wide fan-out would bury the rest: the steps with the most attempts, and a count of the others.
  const shown = [...d.pendingActivities]
    .sort((a, b) => b.attempt - a.attempt || a.step - b.step)
    .slice(0, PENDING_SHOWN)
    .sort((a, b) => a.step - b.step);
  for (const p of shown) lines.push(["pending", pendingLine(p)]);
  if (d.pendingActivities.length > shown.length) {
    lines.push([
      "pending",
      `... and ${d.pendingActivities.length - shown.length} more step(s) (--json lists all)`,
    ]);
  }
  for (const [k, v] of lines) io.out(`${k.padEnd(15)} ${v}`);
  return 0;
}

/**
 * One pending activity step: where it is, its attempts, and its last error — what makes a run
 * stuck on a failing step visible while its status is still `running`.
 */
function pendingLine(p: PendingActivityDescription): string {
  const what = `step ${p.step} activity "${p.activityName}"`;
  const state =
    p.state === "running"
      ? `attempt ${p.attempt} running`
      : p.state === "backoff"
        ? `attempt ${p.attempt} failed; attempt ${p.attempt + 1} at ${p.nextAttemptAt?.toISOString()}`
        : p.attempt === 0
          ? `waiting for a worker since ${p.nextAttemptAt?.toISOString()} (not attempted yet)`
          : `waiting for a worker since ${p.nextAttemptAt?.toISOString()} (${p.attempt} attempt(s) so far)`;
  const error = p.lastError ? `; last error ${p.lastError.name}: ${p.lastError.message}` : "";
  return `${what}: ${state}${error}`;
}

/** The list's PENDING cell: the step with the most attempts, and how many more steps are pending. */
function pendingCell(pending: readonly PendingActivityDescription[]): string {
  if (pending.length === 0) return "";
  const worst = pending.reduce((a, b) => (b.attempt > a.attempt ? b : a));
  const state = worst.state === "backoff" ? "retrying" : worst.state === "running" ? "running" : "waiting";
  const error = worst.lastError ? ` ${worst.lastError.name}: ${worst.lastError.message}` : "";
  const more = pending.length > 1 ? ` (+${pending.length - 1} more)` : "";
  return cut(`${worst.activityName} #${worst.attempt} ${state}${error}`, 50) + more;
}

/** `spool history <workflowId>`. */
export async function historyCommand(
  backend: Backend,
  io: CliIo,
  workflowId: string,
  o: { run?: string; json?: boolean },
): Promise<number> {
  const events = await new Client({ backend }).getHandle(workflowId, o.run).history();
  if (o.json) {
    io.out(toJson(events));
    return 0;
  }
  const rows = events.map((e) => [
    String(e.seq),
    new Date(e.ts).toISOString(),
    e.type,
    describeEvent(e),
    eventPayloadSummary(e),
  ]);
  for (const l of table(["SEQ", "TIME", "TYPE", "WHAT", "PAYLOAD"], rows)) io.out(l);
  return 0;
}

/** `spool stats`. */
export async function statsCommand(backend: Backend, io: CliIo, o: { json?: boolean }): Promise<number> {
  const s = await backend.inspect.stats();
  if (o.json) {
    io.out(toJson(s));
    return 0;
  }
  for (const st of STATUSES) io.out(`${`runs ${st}`.padEnd(28)} ${s.runsByStatus[st] ?? 0}`);
  io.out(`${"ready workflow tasks".padEnd(28)} ${s.readyWorkflowTasks}`);
  io.out(`${"ready activity tasks".padEnd(28)} ${s.readyActivityTasks}`);
  io.out(`${"running activity tasks".padEnd(28)} ${s.runningActivityTasks}`);
  io.out(`${"activity tasks in back-off".padEnd(28)} ${s.backoffActivityTasks}`);
  io.out(`${"pending timers".padEnd(28)} ${s.pendingTimers}`);
  return 0;
}
