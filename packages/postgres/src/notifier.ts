/**
 * Wake-ups across machines with LISTEN/NOTIFY. Each transaction collects what it made ready in an
 * {@link Outbox}; the backend sends it with `pg_notify` inside that transaction (PostgreSQL
 * delivers a notification only when, and only if, its transaction commits) and hands it to this
 * process's listeners right after COMMIT returns. The {@link Notifier} keeps one dedicated
 * connection LISTENing on the schema's channel and passes other processes' notifications to this
 * process's listeners (its own are skipped: they were delivered locally already).
 *
 * Notifications are hints, never the source of truth: a lost one only delays work until the
 * worker's next poll. When the LISTEN connection drops it is re-opened with back-off, and once it
 * is back every listener is told to look for work, since anything sent meanwhile was missed.
 */
import type { BackendNotification } from "@spool/core";
import { Outbox as SharedOutbox } from "@spool/sql-store";
import type pg from "pg";
import { quoteIdent } from "./sql/statement.ts";

/** PostgreSQL's limit is 8000 bytes per payload; stay clear of it. */
const MAX_PAYLOAD_BYTES = 7_500;

/**
 * What one transaction wants to tell listeners once it has committed (sql-store's outbox), and its
 * NOTIFY payloads for other processes.
 */
export class Outbox extends SharedOutbox {
  /**
   * NOTIFY payloads (compact JSON, split to stay under PostgreSQL's size limit) carrying the
   * sender's id so the sending process can skip its own.
   */
  payloads(sender: string): string[] {
    const kinds = `${this.workflowTask ? "w" : ""}${this.activityTask ? "a" : ""}${this.timer ? "t" : ""}`;
    const out: string[] = [];
    let cur: WirePayload = { s: sender, k: kinds };
    let size = Buffer.byteLength(JSON.stringify(cur));
    const flush = () => {
      out.push(JSON.stringify(cur));
      cur = { s: sender, k: "" };
      size = Buffer.byteLength(JSON.stringify(cur));
    };
    for (const taskId of this.cancelled) {
      const add = Buffer.byteLength(JSON.stringify(taskId)) + 8;
      if (size + add > MAX_PAYLOAD_BYTES) flush();
      cur.c ??= [];
      cur.c.push(taskId);
      size += add;
    }
    for (const c of this.closed) {
      const pair: [string, string] = [c.runId, c.workflowId];
      const add = Buffer.byteLength(JSON.stringify(pair)) + 8;
      if (size + add > MAX_PAYLOAD_BYTES) flush();
      cur.r ??= [];
      cur.r.push(pair);
      size += add;
    }
    if (cur.k !== "" || cur.c !== undefined || cur.r !== undefined || out.length === 0) flush();
    return out;
  }
}

/** The JSON sent with NOTIFY. */
interface WirePayload {
  /** Sender: the backend instance that committed. */
  s: string;
  /** Kinds made ready: w(orkflow task), a(ctivity task), t(imer). */
  k: string;
  /** Activity attempts cancelled while running. */
  c?: string[];
  /** Runs closed: [runId, workflowId]. */
  r?: [string, string][];
}

/** Parses a NOTIFY payload; null when it is not one of ours. */
export function parsePayload(
  text: string | undefined,
): { sender: string; notes: BackendNotification[] } | null {
  if (text === undefined) return null;
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof p !== "object" || p === null) return null;
  const w = p as Partial<WirePayload>;
  if (typeof w.s !== "string" || typeof w.k !== "string") return null;
  const notes: BackendNotification[] = [];
  if (w.k.includes("w")) notes.push({ kind: "workflow-task" });
  if (w.k.includes("a")) notes.push({ kind: "activity-task" });
  if (w.k.includes("t")) notes.push({ kind: "timer" });
  for (const taskId of Array.isArray(w.c) ? w.c : []) {
    if (typeof taskId === "string") notes.push({ kind: "activity-cancelled", taskId });
  }
  for (const pair of Array.isArray(w.r) ? w.r : []) {
    if (Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "string") {
      notes.push({ kind: "run-closed", runId: pair[0], workflowId: pair[1] });
    }
  }
  return { sender: w.s, notes };
}

/** Everything a listener should check after notifications may have been missed. */
const LOOK_FOR_WORK: readonly BackendNotification[] = [
  { kind: "workflow-task" },
  { kind: "activity-task" },
  { kind: "timer" },
];

/** What the notifier needs from its backend. */
export interface NotifierOptions {
  /** The NOTIFY channel (one per schema). */
  channel: string;
  /** This backend's id, carried in its payloads. */
  sender: string;
  /** Whether to LISTEN at all (false: in-process notifications only, other processes poll). */
  listen: boolean;
  /** A new, unconnected client for the LISTEN connection. */
  newClient(): pg.Client;
  /** Reports a dropped LISTEN connection (it is re-opened by itself). */
  onError(err: Error): void;
  /** Reconnect back-off bounds in ms (default 100 to 5000). */
  backoff?: { min: number; max: number };
}

/**
 * Delivers notifications to this process's listeners: synchronously for this process's own
 * commits ({@link Notifier.emit}), and from the LISTEN connection for other processes' commits.
 * The LISTEN connection is opened when the first listener subscribes (a process that only starts
 * workflows never holds one) and kept until {@link Notifier.close}.
 */
export class Notifier {
  private readonly listeners = new Set<(n: BackendNotification) => void>();
  private client: pg.Client | null = null;
  private state: "idle" | "connecting" | "listening" | "waiting" | "closed" = "idle";
  private delay: number;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connectedOnce = false;
  private readonly backoff: { min: number; max: number };
  /** Times the LISTEN connection was (re)established; for tests and monitoring. */
  connects = 0;

  constructor(private readonly opts: NotifierOptions) {
    this.backoff = opts.backoff ?? { min: 100, max: 5_000 };
    this.delay = this.backoff.min;
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.state === "listening";
  }

  /** Adds a listener; the first one opens the LISTEN connection. Returns the unsubscribe function. */
  subscribe(listener: (n: BackendNotification) => void): () => void {
    this.listeners.add(listener);
    if (this.state === "idle" && this.opts.listen) void this.connect();
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Calls every listener with each notification; a throwing listener is ignored. */
  emit(notes: readonly BackendNotification[]): void {
    if (this.listeners.size === 0) return;
    for (const note of notes) {
      for (const listener of [...this.listeners]) {
        try {
          listener(note);
        } catch {
          // A listener's failure must not turn a committed write into a rejected call.
        }
      }
    }
  }

  /** Closes the LISTEN connection and drops every listener. */
  async close(): Promise<void> {
    this.state = "closed";
    this.listeners.clear();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    this.state = "connecting";
    const client = this.opts.newClient();
    this.client = client;
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, new Error("the LISTEN connection ended")));
    client.on("notification", (msg) => {
      if (msg.channel !== this.opts.channel) return;
      const parsed = parsePayload(msg.payload);
      if (parsed === null || parsed.sender === this.opts.sender) return;
      this.emit(parsed.notes);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.opts.channel)}`);
    } catch (err) {
      this.lost(client, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.client !== client || this.state !== "connecting") {
      await client.end().catch(() => undefined);
      return;
    }
    this.state = "listening";
    this.connects++;
    this.delay = this.backoff.min;
    // Anything other processes committed while this connection was down was not heard: make every
    // listener look. (Not on the first connect: the subscriber has just looked for itself.)
    if (this.connectedOnce) this.emit(LOOK_FOR_WORK);
    this.connectedOnce = true;
  }

  private lost(client: pg.Client, err: Error): void {
    if (client !== this.client) return;
    this.client = null;
    client.removeAllListeners("notification");
    client.on("error", () => undefined);
    void client.end().catch(() => undefined);
    if (this.state === "closed") return;
    this.opts.onError(err);
    this.state = "waiting";
    const wait = this.delay * (0.75 + Math.random() * 0.5);
    this.delay = Math.min(this.backoff.max, this.delay * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.state === "waiting") void this.connect();
    }, wait);
    this.retryTimer.unref?.();
  }
}
