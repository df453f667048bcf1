/**
 * Who a process is, in terms another process on the same machine can check: host name, boot id
 * (Linux: /proc/sys/kernel/random/boot_id), PID namespace, process id and the process's start time
 * (Linux: field 22 of /proc/<pid>/stat, in clock ticks since boot). With them a worker can tell at
 * once that a lease holder on this machine is dead — its process id no longer exists, or now
 * belongs to a younger process (pid reuse) — without waiting for a heartbeat to go stale.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";

/** The identity of one process, as recorded in the `workers` table. */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /** Null where the platform has no boot id (then liveness falls back to heartbeats). */
  bootId: string | null;
  /** Null where PID namespaces cannot be read; two processes in different namespaces cannot check each other's pids. */
  pidNs: string | null;
  /** Null where /proc is missing. */
  startTicks: string | null;
}

function readOr(path: string, read: (p: string) => string): string | null {
  try {
    return read(path).trim();
  } catch {
    return null;
  }
}

/** Start time of `pid` (clock ticks since boot), or null when it cannot be read (no /proc, gone). */
export function processStartTicks(pid: number): string | null {
  const stat = readOr(`/proc/${pid}/stat`, (p) => readFileSync(p, "utf8"));
  if (stat === null) return null;
  // The command name (field 2) is in parentheses and may contain spaces: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? null; // field 22 overall: starttime
}

/** This process's identity (read once; none of it changes while the process lives). */
export const selfIdentity: ProcessIdentity = {
  pid: process.pid,
  host: hostname(),
  bootId: readOr("/proc/sys/kernel/random/boot_id", (p) => readFileSync(p, "utf8")),
  pidNs: readOr("/proc/self/ns/pid", readlinkSync),
  startTicks: processStartTicks(process.pid),
};

/**
 * What a process on this machine can tell about a recorded process without its heartbeat:
 * `dead` (the machine rebooted since, its pid is gone, or the pid now belongs to another process),
 * `alive` (same pid, same start time), or `unknown` (another machine or PID namespace, or no /proc
 * to compare start times with: the heartbeat decides).
 */
export function processState(
  rec: {
    pid: number | null;
    host: string | null;
    bootId: string | null;
    pidNs: string | null;
    startTicks: string | null;
  },
  self: ProcessIdentity = selfIdentity,
): "alive" | "dead" | "unknown" {
  if (rec.pid === null || rec.host !== self.host) return "unknown";
  if (rec.bootId !== null && self.bootId !== null && rec.bootId !== self.bootId) return "dead";
  if (rec.pidNs !== self.pidNs) return "unknown";
  try {
    process.kill(rec.pid, 0);
  } catch (err) {
    // EPERM: the pid exists but belongs to another user (still a process: compare start times).
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return "dead";
  }
  if (rec.startTicks === null) return "unknown";
  const now = processStartTicks(rec.pid);
  if (now === null) return "unknown";
  return now === rec.startTicks ? "alive" : "dead";
}
