/**
 * Child processes for scenarios that need real processes (memory probes, multi-process workers):
 * forked with tsx as the loader, talking JSON messages over the IPC channel. Every wait has a
 * deadline so a stuck child ends the scenario with a reason instead of hanging the run.
 */
import { type ChildProcess, fork } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The monorepo root: children run from there so `--import tsx` resolves. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A message between the harness and a child: a `type` and any JSON fields. */
export interface ChildMessage {
  type: string;
  [key: string]: unknown;
}

/** A running child process. */
export interface Child {
  readonly pid: number;
  send(msg: ChildMessage): void;
  /** Resolves with the next message of this type (or rejects when the child exits or time runs out). */
  next(type: string, timeoutMs: number): Promise<ChildMessage>;
  /** Resolves when the child exits, with its code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends SIGKILL to this child (only if still running). */
  kill(): void;
}

/**
 * Forks `script` (a .ts file) with tsx, extra Node flags (e.g. `--expose-gc`) and arguments.
 * The child's stdout and stderr go to this process's stderr, so they never mix with the table.
 */
export function startChild(script: string, args: string[], nodeFlags: string[] = []): Child {
  const proc: ChildProcess = fork(script, args, {
    cwd: repoRoot,
    execArgv: [...nodeFlags, "--import", "tsx"],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  proc.stdout?.pipe(process.stderr);
  proc.stderr?.pipe(process.stderr);
  const inbox: ChildMessage[] = [];
  const waiters: { type: string; resolve: (m: ChildMessage) => void; reject: (e: Error) => void }[] = [];
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  proc.on("message", (raw) => {
    const msg = raw as ChildMessage;
    const i = waiters.findIndex((w) => w.type === msg.type);
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(msg);
    else inbox.push(msg);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on("exit", (code, signal) => {
      exitInfo = { code, signal };
      for (const w of waiters.splice(0)) {
        w.reject(
          new Error(`child ${script} exited (code ${code}, signal ${signal}) before sending "${w.type}"`),
        );
      }
      resolve(exitInfo);
    });
  });

  return {
    pid: proc.pid ?? -1,
    send(msg) {
      if (proc.connected) proc.send(msg);
    },
    next(type, timeoutMs) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as ChildMessage);
      if (exitInfo) {
        return Promise.reject(
          new Error(`child ${script} has exited (code ${exitInfo.code}); no "${type}" came`),
        );
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          type,
          resolve: (m: ChildMessage) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        const timer = setTimeout(() => {
          const k = waiters.indexOf(waiter);
          if (k >= 0) waiters.splice(k, 1);
          reject(new Error(`child ${script} sent no "${type}" within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    exited,
    kill() {
      if (exitInfo === null) proc.kill("SIGKILL");
    },
  };
}

/** In a child: sends a message to the parent. */
export function sendToParent(msg: ChildMessage): void {
  process.send?.(msg);
}

/** In a child: resolves with the next message of this type from the parent. */
export function fromParent(type: string): Promise<ChildMessage> {
  return new Promise((resolve) => {
    const onMessage = (raw: unknown) => {
      const msg = raw as ChildMessage;
      if (msg.type !== type) return;
      process.off("message", onMessage);
      resolve(msg);
    };
    process.on("message", onMessage);
  });
}
