/**
 * The reliability harness: worker processes started and faulted on purpose, a ledger of what
 * clients were told, and the invariant check run afterwards on the database and the effects log.
 *
 * Every campaign prints its seed; `SPOOL_SEED=<seed> npx vitest run test/reliability -t '<name>'`
 * replays the same choices (which hit of a point kills, which runs are signalled when). Process
 * scheduling still varies between runs, so a seed reproduces the scenario, not every interleaving.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataConverter, decodeHistory, type HistoryEvent } from "@spool/core";
import Database from "better-sqlite3";
import { Client, SqliteBackend, silentLogger, Worker } from "spool";
import { expect } from "vitest";
import { mulberry32 } from "./fixtures/faults.ts";
import { activitiesOf, chaosFlow, type EffectLine, go, relChild, relStep } from "./fixtures/workflows.ts";

export const fixture = join(import.meta.dirname, "fixtures", "worker-process.ts");

/** The seed of this test process: SPOOL_SEED, or a fresh one (printed by each campaign). */
export const baseSeed = Number(process.env.SPOOL_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** A seeded PRNG. */
export function rng(seed: number): () => number {
  return mulberry32(seed);
}

/** Every named fault point, and the moment it stands for. */
export const KILL_POINTS = [
  "activity.start", // an attempt claimed, its function not yet called
  "activity.mid", // the side effect happened, the function has not returned
  "activity.before-complete", // the attempt finished, its completion not yet written
  "workflow.after-claim", // between steps: a workflow task claimed, nothing decided
  "workflow.before-commit", // the activation computed, not committed
  "sqlite.commit.mid", // inside the commit transaction, after the history rows
  "sqlite.commit.end", // inside the commit transaction, after every statement
  "sqlite.commit.after", // committed, before the worker heard of it (the ack)
  "workflow.after-commit", // committed, eager activities claimed but not started
  "sqlite.write.begin", // inside any write transaction, before its first statement
  "sqlite.write.end", // inside any write, after its statements (claims, completions, timers, releases)
  "sqlite.write.after", // any other write committed, before its caller heard
] as const;

// ── Files ──────────────────────────────────────────────────────────────────────────────────

const dirs: string[] = [];

/** A fresh temp dir with a database path and an empty effects log. */
export function scratch(prefix = "spool-rel-"): { dir: string; db: string; effects: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  const effects = join(dir, "effects.log");
  writeFileSync(effects, "");
  return { dir, db: join(dir, "spool.db"), effects };
}

/** Removes every scratch dir (call from afterAll); SPOOL_KEEP=1 keeps them for a post-mortem. */
export function cleanScratch(): void {
  if (process.env.SPOOL_KEEP) {
    console.log(`[reliability] kept (SPOOL_KEEP): ${dirs.splice(0).join(" ")}`);
    return;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function readEffects(path: string): EffectLine[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EffectLine);
}

// ── Worker processes ───────────────────────────────────────────────────────────────────────

/** A worker process and what became of it. */
export interface Proc {
  child: ChildProcess;
  pid: number;
  startedAt: number;
  env: Record<string, string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  ready: Promise<void>;
  stderr: () => string;
}

/** Forks a worker process on `db`; its env adds to (and overrides) the harness defaults. */
export function spawnWorker(db: string, effects: string, env: Record<string, string> = {}): Proc {
  const full = {
    SPOOL_EFFECTS: effects,
    SPOOL_WF_LEASE_MS: "400",
    SPOOL_POLL_MAX_MS: "50",
    ...env,
  };
  const child = fork(fixture, [db], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...full },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-8000);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    void exit.then(() => reject(new Error(`worker ${child.pid} exited before it was ready: ${err}`)));
  });
  ready.catch(() => undefined);
  return { child, pid: child.pid ?? -1, startedAt: Date.now(), env: full, exit, ready, stderr: () => err };
}

/** SIGTERM (graceful drain) and wait; SIGKILL if it has not exited after `ms`. */
export async function stop(
  p: Proc,
  ms = 15_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
  const t = setTimeout(() => p.child.kill("SIGKILL"), ms);
  const r = await p.exit;
  clearTimeout(t);
  return r;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until it holds (a wait, not a timing assertion). */
export async function waitFor(
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  what = "condition",
) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

// ── What clients were told ─────────────────────────────────────────────────────────────────

/** Starts and signals acknowledged to the client (the promises resolved), with their inputs. */
export class Ledger {
  readonly starts = new Map<string, { input: { base: number; steps: number }; signal?: number }>();
  readonly signals: { id: string; n: number }[] = [];
}

/** The chaosFlow runs a campaign drives. */
export class Runs {
  readonly ledger = new Ledger();
  private next = 0;
  private unsignalled: string[] = [];
  constructor(
    readonly client: Client,
    readonly prefix: string,
    readonly steps: number,
  ) {}

  /** Starts `n` more runs; records each acknowledged start. */
  async start(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const k = this.next++;
      const id = `${this.prefix}-${k}`;
      const input = { base: k + 1, steps: this.steps };
      await this.client.start(chaosFlow, input, { id });
      this.ledger.starts.set(id, { input });
      this.unsignalled.push(id);
    }
  }

  /** Signals up to `n` unsignalled runs, picked by `random`; records each acknowledged signal. */
  async signal(n: number, random: () => number): Promise<void> {
    for (let i = 0; i < n && this.unsignalled.length > 0; i++) {
      const [id] = this.unsignalled.splice(Math.floor(random() * this.unsignalled.length), 1);
      if (!id) break;
      const entry = this.ledger.starts.get(id)!;
      const payload = entry.input.base % 13;
      await this.client.getHandle<typeof chaosFlow>(id).signal(go, { n: payload });
      entry.signal = payload;
      this.ledger.signals.push({ id, n: payload });
    }
  }

  get pendingSignals(): number {
    return this.unsignalled.length;
  }

  get started(): number {
    return this.next;
  }
}

/**
 * The reference run: the same inputs and signals through an in-process worker on a private
 * in-memory database, no faults. Returns the result per workflow id.
 */
export async function referenceResults(ledger: Ledger): Promise<Map<string, number>> {
  const backend = new SqliteBackend({ path: ":memory:" });
  const worker = new Worker({
    backend,
    workflows: [chaosFlow, relChild],
    activities: [relStep],
    logger: silentLogger,
    pollIntervalMs: { min: 1, max: 20 },
  });
  await worker.start();
  const client = new Client({ backend });
  const out = new Map<string, number>();
  try {
    const handles = [];
    for (const [id, { input, signal }] of ledger.starts) {
      const h = await client.start(chaosFlow, input, { id });
      await h.signal(go, { n: signal ?? 0 });
      handles.push([id, h] as const);
    }
    for (const [id, h] of handles) out.set(id, await h.result({ timeout: 60_000 }));
  } finally {
    await worker.shutdown();
    await backend.close();
  }
  return out;
}

// ── Invariants ─────────────────────────────────────────────────────────────────────────────

/** What the invariant check measured. */
export interface Figures {
  runs: number;
  executions: number;
  steps: number;
  /** Executions per faulted process that were not the recorded attempt of their step. */
  extraPerFault: number[];
  /** Kill → the dead worker's orphaned work recorded elsewhere, ms (kills that orphaned some). */
  recoveryMs: number[];
  /** Kill → another process started the orphaned work again (a run: moved on), ms. */
  takeoverMs: number[];
  /** Extra executions by live, unfaulted workers whose lease ran out (starved) — told lease-lost. */
  leaseLost: number;
  faults: number;
  /** Acknowledged starts or signals not found completed/recorded (must be 0). */
  lost?: number;
  /** Seqs doubled or skipped, outcomes recorded twice (must be 0). */
  duplicates?: number;
}

/** Decoded histories of every run in the database, by run id. */
export async function allHistories(
  db: string,
): Promise<Map<string, { row: RunRowLite; events: HistoryEvent[] }>> {
  const raw = new Database(db, { readonly: true });
  const rows = raw
    .prepare("SELECT run_id, workflow_id, workflow_name, status, last_seq FROM runs")
    .all() as RunRowLite[];
  raw.close();
  const backend = new SqliteBackend({ path: db });
  const dc = new DataConverter();
  const out = new Map<string, { row: RunRowLite; events: HistoryEvent[] }>();
  try {
    for (const row of rows) {
      const raws = await backend.inspect.getHistory(row.run_id);
      out.set(row.run_id, { row, events: await decodeHistory(raws, dc, row.run_id) });
    }
  } finally {
    await backend.close();
  }
  return out;
}

export interface RunRowLite {
  run_id: string;
  workflow_id: string;
  workflow_name: string;
  status: string;
  last_seq: number;
}

/** `PRAGMA integrity_check` of the file must say ok. */
export function expectIntact(db: string): void {
  const raw = new Database(db, { readonly: true });
  try {
    expect(raw.pragma("integrity_check", { simple: true }), `${db}: integrity_check`).toBe("ok");
  } finally {
    raw.close();
  }
}

/** Leased rows left in the queues (nothing may stay claimed after a clean exit). */
export function leasedRows(db: string): { workflow: number; activity: number } {
  const raw = new Database(db, { readonly: true });
  try {
    const wf = raw
      .prepare("SELECT count(*) AS n FROM workflow_tasks WHERE lease_owner IS NOT NULL")
      .get() as {
      n: number;
    };
    const act = raw
      .prepare("SELECT count(*) AS n FROM activity_tasks WHERE lease_owner IS NOT NULL")
      .get() as {
      n: number;
    };
    return { workflow: wf.n, activity: act.n };
  } finally {
    raw.close();
  }
}

/** Workflow and activity tasks ready to be claimed now (the queue a recovering worker joins). */
export function readyBacklog(db: string): number {
  const raw = new Database(db, { readonly: true });
  try {
    const now = Date.now();
    const r = raw
      .prepare(
        `SELECT (SELECT count(*) FROM workflow_tasks WHERE visible_at <= ?)
              + (SELECT count(*) FROM activity_tasks WHERE visible_at <= ?) AS n`,
      )
      .get(now, now) as { n: number };
    return r.n;
  } finally {
    raw.close();
  }
}

/** One history's own invariants: gapless seqs, nothing recorded twice, every step resolved once. */
export function checkHistory(label: string, events: HistoryEvent[], lastSeq: number): void {
  expect(
    events.map((e) => e.seq),
    `${label}: seqs 1..n, none twice, none skipped`,
  ).toEqual(events.map((_, i) => i + 1));
  expect(events.length, `${label}: last_seq matches the history`).toBe(lastSeq);
  const seen = new Set<string>();
  for (const e of events) {
    if (!("step" in e)) continue;
    const key = `${e.type}/${e.step}`;
    expect(seen.has(key), `${label}: ${key} recorded twice`).toBe(false);
    seen.add(key);
  }
  const steps = (...types: string[]) =>
    events
      .filter((e) => types.includes(e.type))
      .map((e) => (e as { step: number }).step)
      .sort((a, b) => a - b);
  expect(
    steps("ActivityCompleted", "ActivityFailed", "ActivityCancelled"),
    `${label}: activities resolved once`,
  ).toEqual(steps("ActivityScheduled"));
  expect(steps("TimerFired", "TimerCancelled"), `${label}: each timer fired or cancelled once`).toEqual(
    steps("TimerStarted"),
  );
}

/**
 * Checks everything a campaign promises and returns its figures:
 * - every acknowledged start has a completed run whose result equals the reference run's;
 * - every acknowledged signal is in its run's history exactly once;
 * - every history is gapless, nothing recorded twice, every step and timer resolved once;
 * - no closed run left rows in the queues or the inbox;
 * - at least once, and no more: per step, the recorded attempt was executed; any other execution
 *   happened in a faulted process, was an earlier attempt, and carried the same idempotency key;
 * - the file passes integrity_check.
 */
export async function checkCampaign(opts: {
  db: string;
  effects: string;
  ledger: Ledger;
  client: Client;
  /** Upper bound of extra executions per faulted process (at-least-once, bounded by what was in flight). */
  maxExtraPerFault: number;
}): Promise<Figures> {
  const { db, ledger, client } = opts;
  expectIntact(db);
  const reference = await referenceResults(ledger);
  const histories = await allHistories(db);
  // Counted first (for the report), then asserted one by one (for the message).
  let lost = 0;
  let duplicates = 0;
  const results = new Map<string, unknown>();
  for (const [id] of ledger.starts) {
    const result = await client
      .getHandle<typeof chaosFlow>(id)
      .result({ timeout: 1000 })
      .catch((e: unknown) => e);
    results.set(id, result);
    if (result !== reference.get(id)) lost++;
  }
  const signalsOf = new Map<string, number[]>();
  for (const { row, events } of histories.values()) {
    duplicates += countDuplicates(events);
    signalsOf.set(
      row.workflow_id,
      events
        .filter((e) => e.type === "SignalReceived")
        .map((e) => (e as { payload: { n: number } }).payload.n),
    );
  }
  for (const { id, n } of ledger.signals) {
    const got = signalsOf.get(id) ?? [];
    if (!got.includes(n)) lost++;
    if (got.length > 1) duplicates += got.length - 1;
  }
  for (const [id] of ledger.starts) {
    expect(results.get(id), `${id}: result equals the reference run`).toBe(reference.get(id));
  }

  const byWorkflow = new Map<string, HistoryEvent[]>();
  for (const { row, events } of histories.values()) {
    checkHistory(`${row.workflow_id} (${row.run_id})`, events, row.last_seq);
    expect(row.status, `${row.workflow_id}: closed as completed`).toBe("completed");
    byWorkflow.set(row.workflow_id, events);
  }
  for (const { id, n } of ledger.signals) {
    const got = (byWorkflow.get(id) ?? []).filter((e) => e.type === "SignalReceived");
    expect(
      got.map((e) => (e as { payload: { n: number } }).payload.n),
      `${id}: the acknowledged signal recorded once`,
    ).toEqual([n]);
  }
  expect(histories.size, "every acknowledged start has its run (and its child)").toBe(ledger.starts.size * 2);

  const raw = new Database(db, { readonly: true });
  const leftovers = raw
    .prepare(
      `SELECT (SELECT count(*) FROM workflow_tasks) + (SELECT count(*) FROM activity_tasks)
            + (SELECT count(*) FROM timers) + (SELECT count(*) FROM inbox) AS n`,
    )
    .get() as { n: number };
  raw.close();
  expect(leftovers.n, "closed runs leave no tasks, timers or inbox rows").toBe(0);

  expect({ lost, duplicates }).toEqual({ lost: 0, duplicates: 0 });
  return { ...executionFigures(opts.effects, histories, opts.maxExtraPerFault), lost, duplicates };
}

/** Seqs recorded twice or skipped, and step outcomes recorded more than once, in one history. */
export function countDuplicates(events: HistoryEvent[]): number {
  let n = 0;
  const seqs = new Set<number>();
  for (const [i, e] of events.entries()) {
    if (seqs.has(e.seq) || e.seq !== i + 1) n++;
    seqs.add(e.seq);
  }
  const seen = new Set<string>();
  for (const e of events) {
    if (!("step" in e)) continue;
    const key = `${e.type}/${e.step}`;
    if (seen.has(key)) n++;
    seen.add(key);
  }
  return n;
}

/** The at-least-once check over the effects log, and the figures it yields. */
export function executionFigures(
  effectsPath: string,
  histories: Map<string, { row: RunRowLite; events: HistoryEvent[] }>,
  maxExtraPerFault: number,
): Figures {
  const lines = readEffects(effectsPath);
  const faults = lines.filter((l) => l.kind === "fault");
  const faulted = new Set(faults.map((l) => l.pid));
  const recorded = new Map<string, { attempt: number; ts: number }>();
  const runEvents = new Map<string, HistoryEvent[]>();
  for (const { row, events } of histories.values()) {
    runEvents.set(row.run_id, events);
    for (const e of events) {
      if (e.type === "ActivityCompleted" || e.type === "ActivityFailed") {
        recorded.set(`${row.workflow_id}/${e.step}`, { attempt: e.attempt, ts: e.ts });
      }
    }
  }
  const execs = lines.filter((l) => l.kind === "effect");
  const byStep = new Map<string, EffectLine[]>();
  for (const l of execs) {
    const key = `${l.workflowId}/${l.step}`;
    byStep.set(key, [...(byStep.get(key) ?? []), l]);
  }
  const extraByPid = new Map<number, EffectLine[]>();
  // Attempts of live workers whose lease ran out before they reported (a starved process): the
  // fence rejected the late completion and the worker aborted the attempt as lease-lost.
  const leaseLostAt = new Set(
    lines
      .filter((l) => l.kind === "abort" && /lease was lost/.test(l.reason ?? ""))
      .map((l) => `${l.pid}/${l.runId}/${l.step}/${l.attempt}`),
  );
  let leaseLost = 0;
  for (const [key, list] of byStep) {
    const rec = recorded.get(key);
    expect(rec, `${key} executed but never recorded`).toBeDefined();
    if (!rec) continue;
    expect(
      list.some((l) => l.attempt === rec.attempt),
      `${key}: the recorded attempt ${rec.attempt} was executed`,
    ).toBe(true);
    for (const l of list) {
      expect(l.key, `${key}: every attempt carries the same idempotency key`).toBe(key);
      if (l.attempt === rec.attempt) continue;
      expect(
        l.attempt!,
        `${key}: attempt ${l.attempt} ran after attempt ${rec.attempt} was recorded`,
      ).toBeLessThan(rec.attempt);
      if (!faulted.has(l.pid) && leaseLostAt.has(`${l.pid}/${l.runId}/${l.step}/${l.attempt}`)) {
        leaseLost++;
        continue;
      }
      expect(
        faulted.has(l.pid),
        `${key}: attempt ${l.attempt} ran in ${l.pid}, a process that was never faulted, was not recorded, ` +
          "and was never told its lease was lost",
      ).toBe(true);
      extraByPid.set(l.pid, [...(extraByPid.get(l.pid) ?? []), l]);
    }
  }
  const extraPerFault: number[] = [];
  const recoveryMs: number[] = [];
  const takeoverMs: number[] = [];
  const faultsByPid = new Map<number, number>();
  for (const f of faults) faultsByPid.set(f.pid, (faultsByPid.get(f.pid) ?? 0) + 1);
  for (const [pid, n] of faultsByPid) {
    const extras = extraByPid.get(pid)?.length ?? 0;
    // Each fault orphans at most what its process had in flight.
    expect(extras, `faulted process ${pid} (${n} faults): extra executions within bound`).toBeLessThanOrEqual(
      n * maxExtraPerFault,
    );
    extraPerFault.push(n === 1 ? extras : extras / n);
  }
  const recordedAt = new Map<string, number>();
  for (const { row, events } of histories.values()) {
    for (const e of events) {
      if (e.type === "ActivityCompleted" || e.type === "ActivityFailed")
        recordedAt.set(`${row.run_id}/${e.step}`, e.ts);
    }
  }
  for (const f of faults) {
    if (f.mode !== "kill" || f.t === undefined) continue;
    const t = f.t;
    // The work the dead worker held: attempts it ran but never recorded, and the step or run the
    // fault point names. Takeover: until another process started that work again (or, for a run,
    // until it moved on). Recovery: until all of it was recorded.
    const orphans = new Set((extraByPid.get(f.pid) ?? []).map((x) => `${x.runId}/${x.step}`));
    const runId = f.info?.runId as string | undefined;
    const step = f.info?.step as number | undefined;
    if (runId && step !== undefined) orphans.add(`${runId}/${step}`);
    if (runId && step === undefined) {
      // A workflow or commit point: steps of that run scheduled before the kill and first run
      // after it (by another process) were waiting on the dead worker (leased to it eagerly) or
      // behind it.
      for (const e of runEvents.get(runId) ?? []) {
        if (e.type !== "ActivityScheduled" || e.ts > t) continue;
        const first = execs.find((l) => l.runId === runId && l.step === e.step);
        if (first && (first.t ?? 0) >= t && first.pid !== f.pid) orphans.add(`${runId}/${e.step}`);
      }
    }
    let takeover = 0;
    let done = 0;
    for (const key of orphans) {
      const rec = recordedAt.get(key);
      if (rec === undefined) continue;
      const again = execs.find((l) => `${l.runId}/${l.step}` === key && l.pid !== f.pid && (l.t ?? 0) >= t);
      takeover = Math.max(takeover, again?.t ?? rec);
      done = Math.max(done, rec);
    }
    const committed = f.point === "sqlite.commit.after" || f.point === "workflow.after-commit";
    if (orphans.size === 0 && runId && !committed) {
      // The activation died uncommitted: recovered when another worker redid it.
      const next = (runEvents.get(runId) ?? []).find((e) => e.ts > t);
      if (next) takeover = done = next.ts;
    }
    if (done > 0) {
      recoveryMs.push(Math.max(0, done - t));
      takeoverMs.push(Math.max(0, takeover - t));
    }
  }
  return {
    runs: histories.size,
    executions: execs.length,
    steps: byStep.size,
    extraPerFault,
    recoveryMs,
    takeoverMs,
    leaseLost,
    faults: faults.length,
  };
}

// ── Campaigns: kill (or fault) workers again and again while runs progress ───────────────────

export interface CampaignOptions {
  name: string;
  /** Fault point(s) armed in every faulted worker (comma-separated, or `*`). */
  point: string;
  /** Instead: each faulted worker is armed at one of these, picked at random. */
  points?: readonly string[];
  /** Signals sent after each fault, or worker that missed its hit (default 1 to 3). */
  signalsPerFault?: number;
  /** Signals sent up front (default a third of the initial runs). */
  initialSignals?: number;
  /** No runs started or signalled after a fault while this many tasks are ready (default 12). */
  maxBacklog?: number;
  mode?: "kill" | "throw" | "stall" | "sleep";
  /** Faults to inject (kill mode: SIGKILLs observed) before letting a clean worker finish. */
  faults: number;
  /** Faulted workers alive at once. */
  concurrency: number;
  /** A faulted worker fires at hit 1..hitMax of its point (ignored with `rate`). */
  hitMax: number;
  rate?: number;
  /** Runs started up front, and after each fault, up to `maxRuns`. */
  initialRuns: number;
  runsPerFault: number;
  maxRuns: number;
  steps: number;
  seed: number;
  /** A faulted worker that has not fired after this long is stopped (its hit was never reached). */
  roundTimeoutMs?: number;
  workerEnv?: Record<string, string>;
  /** How long the clean workers get to finish everything (default 60 s). */
  finishTimeoutMs?: number;
  cleanWorkers?: number;
  /**
   * Fault-free workers running alongside the whole time (default 0), as in a fleet where one
   * process keeps crashing: they take over what the dead ones held, which is what recovery measures.
   */
  healthy?: number;
}

export interface CampaignResult extends Figures {
  name: string;
  /** Acknowledged starts. */
  started: number;
  point: string;
  seed: number;
  injected: number;
  missed: number;
  spawned: number;
  durationMs: number;
  /** Time from the last fault until every run completed, ms. */
  drainMs: number;
}

/** Prefixes a failure with what reproduces it. */
async function reproducible<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Error) err.message = `[${name}; reproduce with SPOOL_SEED=${baseSeed}] ${err.message}`;
    throw err;
  }
}

/** Runs a campaign on a fresh database and checks every invariant afterwards. */
export function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  return reproducible(o.name, () => campaignRun(o));
}

async function campaignRun(o: CampaignOptions): Promise<CampaignResult> {
  const t0 = Date.now();
  const mode = o.mode ?? "kill";
  const { db, effects } = scratch();
  const backend = new SqliteBackend({ path: db });
  const client = new Client({ backend });
  const random = rng(o.seed);
  const runs = new Runs(client, o.name.replace(/[^A-Za-z0-9_.:-]/g, "_"), o.steps);
  const live = new Set<Proc>();
  let injected = 0;
  let missed = 0;
  let spawned = 0;
  const roundTimeout = o.roundTimeoutMs ?? 6000;
  const faultEnv = (): Record<string, string> => ({
    ...o.workerEnv,
    SPOOL_FAULT_AT: o.points ? o.points[Math.floor(random() * o.points.length)]! : o.point,
    SPOOL_FAULT_MODE: mode,
    SPOOL_SEED: String(o.seed + spawned),
    ...(o.rate !== undefined
      ? { SPOOL_FAULT_RATE: String(o.rate) }
      : { SPOOL_FAULT_HIT: String(1 + Math.floor(random() * o.hitMax)) }),
  });
  const firedIn = (pid: number) => readEffects(effects).some((l) => l.kind === "fault" && l.pid === pid);
  // The healthy worker is kept small (one activation, two attempts at a time) so the armed workers
  // still find work to reach their fault points with.
  const healthy = Array.from({ length: o.healthy ?? 0 }, () =>
    spawnWorker(db, effects, {
      SPOOL_MAX_WF_TASKS: "1",
      SPOOL_MAX_ACTIVITIES: "2",
      SPOOL_EAGER: "0",
      ...o.workerEnv,
    }),
  );
  try {
    await runs.start(o.initialRuns);
    await runs.signal(o.initialSignals ?? Math.ceil(o.initialRuns / 3), random);
    while (injected < o.faults) {
      while (live.size < o.concurrency) {
        const p = spawnWorker(db, effects, faultEnv());
        spawned++;
        live.add(p);
      }
      // Wait for a death, or for the oldest worker to overstay its round.
      const oldest = Math.min(...[...live].map((p) => p.startedAt));
      const wait = Math.max(10, oldest + roundTimeout - Date.now());
      await Promise.race([...[...live].map((p) => p.exit), sleep(wait)]);
      for (const p of [...live]) {
        const dead = p.child.exitCode !== null || p.child.signalCode !== null;
        if (dead) {
          live.delete(p);
          const r = await p.exit;
          if (r.signal === "SIGKILL" && firedIn(p.pid)) injected++;
          else if (r.code !== 0)
            throw new Error(`worker ${p.pid} died unexpectedly (${r.code ?? r.signal}): ${p.stderr()}`);
          // Feed work only while the queue is short: a growing backlog would turn the recovery
          // figures into queueing delay.
          if (readyBacklog(db) < (o.maxBacklog ?? 12)) {
            await runs.start(Math.min(o.runsPerFault, o.maxRuns - runs.started));
            await runs.signal(o.signalsPerFault ?? 1 + Math.floor(random() * 3), random);
          }
        } else if (Date.now() - p.startedAt > roundTimeout) {
          live.delete(p);
          await stop(p);
          if (firedIn(p.pid)) injected++;
          else missed++;
          // No work left to reach the point with: feed more (beyond maxRuns if need be).
          await runs.start(Math.max(2, o.runsPerFault));
          await runs.signal(Math.max(2, o.signalsPerFault ?? 0), random);
          if (missed > o.faults * 3) throw new Error(`${o.name}: point ${o.point} is not being reached`);
        }
      }
      if (mode !== "kill") {
        // Non-fatal faults leave the worker alive: count the fired faults themselves.
        injected = readEffects(effects).filter((l) => l.kind === "fault").length;
      }
    }
    const lastFault = Date.now();
    await runs.signal(runs.pendingSignals, random);
    const clean = [
      ...healthy,
      ...Array.from({ length: Math.max(0, (o.cleanWorkers ?? 1) - healthy.length) }, () =>
        spawnWorker(db, effects, o.workerEnv),
      ),
    ];
    for (const p of live) {
      const r = await stop(p);
      if (r.signal === "SIGKILL" && firedIn(p.pid) && mode === "kill") injected++;
    }
    live.clear();
    try {
      const deadline = o.finishTimeoutMs ?? 60_000;
      for (const id of runs.ledger.starts.keys()) {
        await client.getHandle<typeof chaosFlow>(id).result({ timeout: deadline });
      }
    } finally {
      for (const p of clean) await stop(p);
    }
    const drainMs = Date.now() - lastFault;
    const figures = await checkCampaign({
      db,
      effects,
      ledger: runs.ledger,
      client,
      maxExtraPerFault:
        Number(o.workerEnv?.SPOOL_MAX_ACTIVITIES ?? 8) + Number(o.workerEnv?.SPOOL_EAGER ?? 10),
    });
    expect(figures.executions, "every step of every run executed at least once").toBeGreaterThanOrEqual(
      runs.ledger.starts.size * activitiesOf(o.steps),
    );
    return {
      ...figures,
      name: o.name,
      started: runs.ledger.starts.size,
      point: o.point,
      seed: o.seed,
      injected,
      missed,
      spawned,
      durationMs: Date.now() - t0,
      drainMs,
    };
  } finally {
    for (const p of [...live, ...healthy]) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await backend.close();
  }
}

// ── Figures ────────────────────────────────────────────────────────────────────────────────

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** `0:12 1:3 2:1` — how many faults caused how many extra executions. */
export function distribution(values: number[]): string {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([k, n]) => `${k}:${n}`)
    .join(" ");
}

/** One line per campaign for the test output. */
export function summary(r: CampaignResult): string {
  return (
    `[reliability] ${r.name} SPOOL_SEED=${baseSeed} point=${r.point} injected=${r.injected} missed=${r.missed} ` +
    `runs=${r.runs} steps=${r.steps} executions=${r.executions} extra/fault={${distribution(r.extraPerFault)}} ` +
    `lease-lost=${r.leaseLost} ` +
    `takeover p50=${percentile(r.takeoverMs, 50)}ms p95=${percentile(r.takeoverMs, 95)}ms ` +
    `recovery p50=${percentile(r.recoveryMs, 50)}ms p95=${percentile(r.recoveryMs, 95)}ms ` +
    `took=${r.durationMs}ms`
  );
}

// ── Fleets: several workers (some faulted) on one file while runs progress ───────────────────

export interface FleetOptions {
  name: string;
  seed: number;
  runs: number;
  steps: number;
  /** One entry per worker process: its extra environment (faults included). */
  workers: Record<string, string>[];
  /** Signals sent up front (the rest while the fleet works). Default: all up front. */
  signalUpFront?: number;
  /** The rest are sent a few at a time every `signalEveryMs` (default 20). */
  signalEveryMs?: number;
  /** Called once the workers are ready: misbehave here (stop a process, move a clock...). */
  during?: (f: Fleet) => Promise<void>;
  finishTimeoutMs?: number;
  maxExtraPerFault?: number;
}

/** A running fleet, as `during` sees it. */
export interface Fleet {
  db: string;
  effects: string;
  client: Client;
  runs: Runs;
  procs: Proc[];
  random: () => number;
  spawn(env?: Record<string, string>): Proc;
}

export interface FleetResult extends Figures {
  name: string;
  seed: number;
  /** From the first start until every run completed. */
  elapsedMs: number;
  /** Activity executions per second over that time. */
  stepsPerSecond: number;
  runsPerSecond: number;
  db: string;
  effects: string;
}

/** Runs `runs` chaosFlows through the worker processes described, then checks every invariant. */
export function runFleet(o: FleetOptions): Promise<FleetResult> {
  return reproducible(o.name, () => fleetRun(o));
}

async function fleetRun(o: FleetOptions): Promise<FleetResult> {
  const { db, effects } = scratch();
  const backend = new SqliteBackend({ path: db });
  const client = new Client({ backend });
  const random = rng(o.seed);
  const runs = new Runs(client, o.name.replace(/[^A-Za-z0-9_.:-]/g, "_"), o.steps);
  const procs: Proc[] = [];
  const fleet: Fleet = {
    db,
    effects,
    client,
    runs,
    procs,
    random,
    spawn(env = {}) {
      const p = spawnWorker(db, effects, env);
      procs.push(p);
      return p;
    },
  };
  try {
    for (const env of o.workers) fleet.spawn(env);
    await Promise.all(procs.map((p) => p.ready));
    const t0 = Date.now();
    await runs.start(o.runs);
    await runs.signal(o.signalUpFront ?? o.runs, random);
    let duringDone = false;
    const signaller = (async () => {
      while (!duringDone || runs.pendingSignals > 0) {
        await sleep(o.signalEveryMs ?? 20);
        await runs.signal(o.signalEveryMs ? 1 : 1 + Math.floor(random() * 5), random);
      }
    })();
    try {
      await o.during?.(fleet);
    } finally {
      duringDone = true;
    }
    await signaller;
    for (const id of runs.ledger.starts.keys()) {
      await client.getHandle<typeof chaosFlow>(id).result({ timeout: o.finishTimeoutMs ?? 60_000 });
    }
    const elapsedMs = Date.now() - t0;
    for (const p of procs) await stop(p);
    const figures = await checkCampaign({
      db,
      effects,
      ledger: runs.ledger,
      client,
      maxExtraPerFault: o.maxExtraPerFault ?? 18,
    });
    return {
      ...figures,
      name: o.name,
      seed: o.seed,
      elapsedMs,
      stepsPerSecond: Math.round((figures.steps / elapsedMs) * 1000),
      runsPerSecond: Math.round((o.runs / elapsedMs) * 10_000) / 10,
      db,
      effects,
    };
  } finally {
    for (const p of procs)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await backend.close();
  }
}

/** CPU time (user + system) a process has consumed so far, ms (Linux /proc). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return ticks * 10; // CLK_TCK is 100 on Linux
}

/**
 * At most `n` of the functions passed to the returned runner at once: lets independent campaigns
 * of one file (declared `it.concurrent`) share the two CPUs without oversubscribing them.
 */
export function lanes(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let free = n;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (free > 0) free--;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}
