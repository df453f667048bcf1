/**
 * `spool workers`: the worker registry — every worker that registered with this store, whether it
 * is live, presumed dead (its leases released) or stopped cleanly, where it runs and what it hosts.
 * The operator's answer to "is anything running this?" when runs wait.
 */
import type { Backend, WorkerInfo } from "@spool/core";
import { type CliIo, table, toJson } from "../io.ts";

/** Prints the registry, live workers first, then the most recently heard from. */
export async function workersCommand(
  backend: Backend,
  io: CliIo,
  o: { json?: boolean; all?: boolean },
): Promise<number> {
  const order = { live: 0, dead: 1, stopped: 2 } as const;
  const all = (await backend.inspect.workers()).sort(
    (a, b) => order[a.status] - order[b.status] || b.heartbeatAt - a.heartbeatAt,
  );
  // Stopped workers pile up over deploys: shown only when asked for.
  const shown = o.all ? all : all.filter((w) => w.status !== "stopped");
  if (o.json) {
    io.out(toJson(shown));
    return 0;
  }
  if (shown.length === 0) {
    io.out(
      all.length === 0
        ? "no worker has registered with this store"
        : `no live or dead worker (${all.length} stopped cleanly; --all lists them)`,
    );
    return 0;
  }
  const now = backend.now();
  io.out(
    table(
      ["WORKER", "STATUS", "HOST", "PID", "LAST HEARTBEAT", "WORKFLOWS", "ACTIVITIES"],
      shown.map((w) => [
        w.workerId,
        w.status,
        w.host ?? "-",
        w.pid === null ? "-" : String(w.pid),
        ago(now - w.heartbeatAt),
        names(w.workflowNames),
        names(w.activityNames),
      ]),
    ).join("\n"),
  );
  const hidden = all.length - shown.length;
  if (hidden > 0) io.out(`(${hidden} stopped cleanly; --all lists them)`);
  return 0;
}

function ago(ms: number): string {
  if (ms < 1000) return "just now";
  const s = Math.round(ms / 1000);
  return s < 120
    ? `${s} s ago`
    : s < 7200
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 3600)} h ago`;
}

function names(list: WorkerInfo["workflowNames"]): string {
  if (list.length === 0) return "-";
  return list.length <= 3 ? list.join(", ") : `${list.slice(0, 3).join(", ")} +${list.length - 3}`;
}
