/**
 * The Worker's options: what can be passed to `new Worker()`, and their validation and defaults.
 * Everything the parts of a worker read comes from the one {@link ResolvedWorkerOptions} built
 * here, so a default is decided in one place.
 */
import {
  type ActivityDefinition,
  type Backend,
  InvalidOptionsError,
  newId,
  type PayloadCodec,
  type WorkflowDefinition,
} from "@spool/core";
import { consoleLogger, type Logger } from "./logger.ts";

/** Options of a Worker. */
export interface WorkerOptions {
  backend: Backend;
  // biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
  workflows?: readonly WorkflowDefinition<any, any>[];
  // biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
  activities?: readonly ActivityDefinition<any, any>[];
  /** A stable id for logs and leases (default: a new ULID). */
  workerId?: string;
  /** Workflow activations processed at once (default 10). */
  maxConcurrentWorkflowTasks?: number;
  /** Activity attempts running at once (default 100). */
  maxConcurrentActivities?: number;
  /** Live runs kept in memory (default 1,000); 0 replays every activation from history. */
  maxCachedRuns?: number;
  /** Lease of a workflow task (default 30 s). */
  workflowTaskLeaseMs?: number;
  /**
   * Polling back-off bounds for work added by other processes (default 20 ms to 1 s; to 5 s when
   * the backend's notifications reach every process, as PostgreSQL's do).
   */
  pollIntervalMs?: { min: number; max: number };
  /** How long shutdown() waits for in-flight work (default 10 s). */
  shutdownGraceMs?: number;
  /** Wraps every stored payload (e.g. aesGcmCodec); must match the client's. */
  codec?: PayloadCodec;
  /** Largest encoded payload accepted (default 2 MiB). */
  maxPayloadBytes?: number;
  logger?: Logger;
  /** Compare activity inputs with history on replay too (default false). */
  strictDeterminism?: boolean;
  /** Activity tasks an activation claims for this worker at once, to run without a round trip (default 10). */
  eagerActivities?: number;
  /** Back-off for re-offering blocked runs (default 1 s doubling to 5 min). */
  blockedRetry?: { initialMs: number; maxMs: number };
  /**
   * How often to look for ready work that no worker claims because this worker (and, it seems,
   * every other) lacks its code, and how old such work must be to be reported (default 30 s each).
   */
  unknownWorkCheck?: { intervalMs: number; minAgeMs: number };
  /**
   * History length at which a run logs a warning (default 10,000) and at which it fails with a
   * message telling the author to continue as new (default 50,000).
   */
  historyLimits?: { historyWarnAt?: number; historyLimit?: number };
  /**
   * How this worker proves it is alive (see the worker registry in the backends' HOW_IT_WORKS.md):
   * it heartbeats every `heartbeatIntervalMs` (default 1 s) and is presumed dead by the other
   * workers after `deadAfterMs` without one (default 5 s; on SQLite a worker on the same machine
   * is known dead at once, when its process is gone). Every `sweepIntervalMs` (default 250 ms) it
   * looks for dead workers and releases their leases, so their runs resume without waiting for
   * the leases to run out. A worker whose event loop is blocked for longer than `deadAfterMs` may be
   * presumed dead while alive: its leases are then taken over (activities run at least once; its
   * late results are rejected by the fences).
   */
  liveness?: { heartbeatIntervalMs?: number; deadAfterMs?: number; sweepIntervalMs?: number };
  /**
   * When a failed activity attempt that will be retried is logged at WARN (otherwise DEBUG): from
   * the `after`-th consecutive failure of a step, then every `every` failures (default 3 and 10:
   * attempts 3, 13, 23...). Each line names the activity, the run, the attempt, the error and the
   * next attempt's time. A step that fails for ever (retries are unlimited by default) is then
   * visible in the logs, not only in `spool describe`.
   */
  activityFailureWarn?: { after: number; every: number };
  /** Fault points, for crash tests only: called at named moments with details. */
  faultHook?: (point: string, info: Record<string, unknown>) => Promise<void> | void;
}

/** The liveness settings after defaults (see WorkerOptions.liveness). */
export interface LivenessSettings {
  heartbeatIntervalMs: number;
  deadAfterMs: number;
  sweepIntervalMs: number;
}

/** Options after validation and defaults: what the parts of a worker are built from. */
export interface ResolvedWorkerOptions {
  backend: Backend;
  workerId: string;
  workflows: Map<string, WorkflowDefinition>;
  activities: Map<string, ActivityDefinition>;
  /** Names of the registered activities (fixed at construction; sent with every claim). */
  activityNames: string[];
  log: Logger;
  codec: PayloadCodec | undefined;
  maxPayloadBytes: number | undefined;
  maxCachedRuns: number;
  maxConcurrentWorkflowTasks: number;
  maxConcurrentActivities: number;
  workflowTaskLeaseMs: number;
  pollIntervalMs: { min: number; max: number };
  shutdownGraceMs: number;
  strictDeterminism: boolean;
  eagerActivities: number;
  blockedRetry: { initialMs: number; maxMs: number };
  unknownWorkCheck: { intervalMs: number; minAgeMs: number };
  historyLimits: WorkerOptions["historyLimits"];
  liveness: LivenessSettings;
  activityFailureWarn: WorkerOptions["activityFailureWarn"];
  faultHook: WorkerOptions["faultHook"];
}

/**
 * Checks the options of `new Worker()` and fills in the defaults.
 * @throws InvalidOptionsError for a missing backend, definitions not made by defineWorkflow() /
 *   defineActivity(), a name registered twice, no definition at all, or liveness settings that
 *   would make a live worker look dead.
 */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  if (!options?.backend) throw new InvalidOptionsError("new Worker() needs { backend }");
  const workflows = new Map<string, WorkflowDefinition>();
  const activities = new Map<string, ActivityDefinition>();
  for (const w of options.workflows ?? []) {
    if (w?.kind !== "workflow")
      throw new InvalidOptionsError("workflows: pass definitions made by defineWorkflow()");
    if (workflows.has(w.name)) throw new InvalidOptionsError(`workflow "${w.name}" is registered twice`);
    workflows.set(w.name, w);
  }
  for (const a of options.activities ?? []) {
    if (a?.kind !== "activity")
      throw new InvalidOptionsError("activities: pass definitions made by defineActivity()");
    if (activities.has(a.name)) throw new InvalidOptionsError(`activity "${a.name}" is registered twice`);
    activities.set(a.name, a);
  }
  if (workflows.size === 0 && activities.size === 0) {
    throw new InvalidOptionsError("new Worker() needs at least one workflow or activity definition");
  }
  return {
    backend: options.backend,
    workerId: options.workerId ?? `worker-${newId()}`,
    workflows,
    activities,
    activityNames: [...activities.keys()],
    log: options.logger ?? consoleLogger("info"),
    codec: options.codec,
    maxPayloadBytes: options.maxPayloadBytes,
    maxCachedRuns: options.maxCachedRuns ?? 1000,
    maxConcurrentWorkflowTasks: options.maxConcurrentWorkflowTasks ?? 10,
    maxConcurrentActivities: options.maxConcurrentActivities ?? 100,
    workflowTaskLeaseMs: options.workflowTaskLeaseMs ?? 30_000,
    // With notifications that cross processes (PostgreSQL) polling is only the fallback.
    pollIntervalMs: options.pollIntervalMs ?? {
      min: 20,
      max: options.backend.notifiesAcrossProcesses ? 5000 : 1000,
    },
    shutdownGraceMs: options.shutdownGraceMs ?? 10_000,
    strictDeterminism: options.strictDeterminism ?? false,
    eagerActivities: options.eagerActivities ?? 10,
    blockedRetry: options.blockedRetry ?? { initialMs: 1000, maxMs: 300_000 },
    unknownWorkCheck: options.unknownWorkCheck ?? { intervalMs: 30_000, minAgeMs: 30_000 },
    historyLimits: options.historyLimits,
    liveness: resolveLiveness(options.liveness),
    activityFailureWarn: options.activityFailureWarn,
    faultHook: options.faultHook,
  };
}

function resolveLiveness(liveness: WorkerOptions["liveness"]): LivenessSettings {
  const heartbeatIntervalMs = positiveMs(liveness?.heartbeatIntervalMs, 1000, "heartbeatIntervalMs");
  const resolved = {
    heartbeatIntervalMs,
    deadAfterMs: positiveMs(liveness?.deadAfterMs, 5 * heartbeatIntervalMs, "deadAfterMs"),
    sweepIntervalMs: positiveMs(liveness?.sweepIntervalMs, 250, "sweepIntervalMs"),
  };
  if (resolved.deadAfterMs < 2 * heartbeatIntervalMs) {
    throw new InvalidOptionsError(
      `liveness.deadAfterMs (${resolved.deadAfterMs}) must be at least twice heartbeatIntervalMs ` +
        `(${heartbeatIntervalMs}): one late heartbeat must not make a live worker look dead.`,
    );
  }
  return resolved;
}

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionsError(`liveness.${name} must be a positive number of milliseconds, got ${value}`);
  }
  return value;
}
