/**
 * The options of `SqliteBackend`, their defaults and their checks. Parsed once in the constructor,
 * before the file is opened, so a bad option fails without touching the database.
 */
import { InvalidOptionsError } from "@spool/core";
import { positiveIntOption } from "@spool/sql-store";

/** Options of `SqliteBackend`. */
export interface SqliteBackendOptions {
  /** Database file, created if missing; `":memory:"` for a private in-memory store (tests). */
  path: string;
  /**
   * `"full"` (default): `synchronous=FULL`, every acknowledged write survives power loss.
   * `"normal"`: `synchronous=NORMAL`, faster; survives process crashes but the newest commits may
   * be lost on power loss or an OS crash.
   */
  durability?: "full" | "normal";
  /** How long a write waits for another connection's write lock before failing (default 5000). */
  busyTimeoutMs?: number;
  /**
   * Milliseconds since the epoch; every lease, due time and timestamp is read from it. Default: the
   * wall clock, advanced by the machine's monotonic clock and guarded against steps — when the wall
   * clock steps (NTP, `date -s`), every pending timer, back-off and lease in the file is moved by
   * the step, once, so sleeps and leases keep their durations, and a warning says so. An injected
   * clock is used as it is.
   */
  clock?: () => number;
  /** Where the backend reports what an operator must know (a wall-clock step). Default: console.warn. */
  onWarning?: (message: string, fields: Record<string, unknown>) => void;
  /** Lease used by `claimWorkflowTask` when the request's `leaseMs` is not positive (default 30000). */
  workflowLeaseMs?: number;
  /**
   * Lease of an activity attempt that has neither a heartbeat timeout nor an attempt timeout
   * (default 300000). When it runs out the attempt is offered to another worker, so an activity
   * without timeouts that runs longer than this should heartbeat.
   */
  activityLeaseMs?: number;
  /**
   * Most signals a run may hold unconsumed — delivered, not yet taken by its code with
   * `signal.wait()` — before a new one is refused with SignalBufferFullError (default 1000).
   * Without a cap, signals a workflow never waits for grow its history until the run fails at
   * the history limit; the cap turns that into an error the sender sees.
   */
  maxBufferedSignals?: number;
  /**
   * Test-only fault points, called synchronously at named moments of an activation commit:
   * `sqlite.commit.mid` (inside the transaction, after the history rows — written, or queued for
   * the batch's multi-row insert before COMMIT), `sqlite.commit.end`
   * (inside, after every statement) and `sqlite.commit.after` (committed, before the caller hears).
   * Every write, activations included, passes `sqlite.write.begin` (inside the transaction, before
   * its first statement) and `sqlite.write.end` (inside, after its statements); every other write
   * transaction (claims, completions, timers, starts...) passes `sqlite.write.after` (committed).
   * `info` names the run of an activation. Crash tests SIGKILL the process there, or throw, stall
   * or sleep; the benchmark times the phases of a step with them; never set it in production.
   */
  faultHook?: (point: SqliteFaultPoint, info?: { runId?: string }) => void;
}

/** The fault points of {@link SqliteBackendOptions.faultHook}. */
export type SqliteFaultPoint =
  | "sqlite.write.begin"
  | "sqlite.commit.mid"
  | "sqlite.commit.end"
  | "sqlite.commit.after"
  | "sqlite.write.end"
  | "sqlite.write.after";

/** {@link SqliteBackendOptions} checked, with every default filled in. */
export interface SqliteSettings {
  path: string;
  durability: "full" | "normal";
  busyTimeoutMs: number;
  workflowLeaseMs: number;
  activityLeaseMs: number;
  maxBufferedSignals: number;
  /** The injected clock, or undefined for the anchored default. */
  clock: (() => number) | undefined;
  onWarning: (message: string, fields: Record<string, unknown>) => void;
  faultHook: SqliteBackendOptions["faultHook"];
}

/**
 * Checks the options and fills in the defaults.
 * @throws InvalidOptionsError naming the first bad option.
 */
export function parseSqliteOptions(options: SqliteBackendOptions): SqliteSettings {
  const durability = options.durability ?? "full";
  if (durability !== "full" && durability !== "normal") {
    throw new InvalidOptionsError(
      `SqliteBackend: durability must be "full" or "normal", got "${durability}"`,
    );
  }
  const int = (name: string, value: number | undefined, fallback: number, allowZero = false) =>
    positiveIntOption("SqliteBackend", name, value, fallback, allowZero);
  const busyTimeoutMs = int("busyTimeoutMs", options.busyTimeoutMs, 5000, true);
  const workflowLeaseMs = int("workflowLeaseMs", options.workflowLeaseMs, 30_000);
  const activityLeaseMs = int("activityLeaseMs", options.activityLeaseMs, 300_000);
  const maxBufferedSignals = int("maxBufferedSignals", options.maxBufferedSignals, 1000);
  if (typeof options.path !== "string" || options.path === "") {
    throw new InvalidOptionsError('SqliteBackend: path must be a file path or ":memory:"');
  }
  return {
    path: options.path,
    durability,
    busyTimeoutMs,
    workflowLeaseMs,
    activityLeaseMs,
    maxBufferedSignals,
    clock: options.clock,
    onWarning: options.onWarning ?? ((message) => console.warn(`[spool] WARN ${message}`)),
    faultHook: options.faultHook,
  };
}
