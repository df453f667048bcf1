/**
 * Read-only commands: list, describe, history, stats. They use the backend's inspection
 * interface and the client's decoding, and never write.
 */
import { Client, type RunDescription } from "@spool/client";
import { type Backend, describeEvent, type RunStatus } from "@spool/core";
import { type CliIo, table, toJson, UsageError } from "../io.ts";

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
    r.blockedReason ?? (r.error ? r.error.message.slice(0, 60) : ""),
  ]);
  for (const l of table(["WORKFLOW ID", "RUN ID", "WORKFLOW", "STATUS", "EVENTS", "CREATED", "NOTE"], rows))
    io.out(l);
  if (page.nextCursor) io.out(`more: --cursor ${page.nextCursor}`);
  return 0;
}

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
  for (const [k, v] of lines) io.out(`${k.padEnd(15)} ${v}`);
  return 0;
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
  const rows = events.map((e) => [String(e.seq), new Date(e.ts).toISOString(), e.type, describeEvent(e)]);
  for (const l of table(["SEQ", "TIME", "TYPE", "WHAT"], rows)) io.out(l);
  return 0;
}

/** `spool stats`. */
export async function statsCommand(backend: Backend, io: CliIo, o: { json?: boolean }): Promise<number> {
  const s = await backend.inspect.stats();
  if (o.json) {
    io.out(toJson(s));
    return 0;
  }
  for (const st of STATUSES) io.out(`${`runs ${st}`.padEnd(24)} ${s.runsByStatus[st] ?? 0}`);
  io.out(`${"ready workflow tasks".padEnd(24)} ${s.readyWorkflowTasks}`);
  io.out(`${"ready activity tasks".padEnd(24)} ${s.readyActivityTasks}`);
  io.out(`${"running activity tasks".padEnd(24)} ${s.runningActivityTasks}`);
  io.out(`${"pending timers".padEnd(24)} ${s.pendingTimers}`);
  return 0;
}
