/**
 * PostgresBackend throughput and latency, with real worker processes:
 *
 * 1. steps/s of a 10-step no-op workflow with 1, 2 and 4 worker processes;
 * 2. workflow-task claim latency (p50/p99): on an idle database, and from a separate process while
 *    4 worker processes are busy;
 * 3. end-to-end latency from `handle.signal()` in this process to the workflow's code resuming in
 *    a worker process (recorded with `sideEffect(() => Date.now())`; one machine, one clock), with
 *    LISTEN/NOTIFY on and, for comparison, with workers that only poll.
 *
 * Run: `npx tsx packages/postgres/bench/pg-throughput.ts` from the repository root. Environment:
 * SPOOL_PG_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_RUNS (workflows per
 * throughput measurement, default 400), BENCH_SIGNALS (latency samples, default 100). Every
 * measurement uses a fresh schema, dropped afterwards. Figures are reported, never asserted.
 *
 * The workflows and the worker process live in test/postgres/fixtures (that workspace resolves
 * `spool` and `zod`); this script imports them from there.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import os from "node:os";
import pg from "pg";
import {
  Client,
  go,
  signalLatency,
  tenSteps,
  tenStepsResult,
  workerFixture,
} from "../../../test/postgres/fixtures/bench-kit.ts";
import { PostgresBackend } from "../src/index.ts";

const URL = process.env.SPOOL_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RUNS = Number(process.env.BENCH_RUNS ?? 400);
const SIGNALS = Number(process.env.BENCH_SIGNALS ?? 100);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const admin = new pg.Pool({ connectionString: URL, max: 2 });

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(samples: number[]): { p50: number; p99: number; mean: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((x, y) => x + y, 0) / Math.max(1, s.length);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean, n: s.length };
}

const ms = (v: number) => `${v.toFixed(2)} ms`;

/** A fresh schema, and a backend on it in this process (client side). */
async function withSchema<T>(tag: string, fn: (schema: string, backend: PostgresBackend) => Promise<T>) {
  const schema = `spool_bench_${tag}_${randomBytes(4).toString("hex")}`;
  const backend = new PostgresBackend({ connectionString: URL, schema });
  await backend.init();
  try {
    return await fn(schema, backend);
  } finally {
    await backend.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

/**
 * Forks `n` worker processes on `schema` and waits until each has started. `stop()` drains them
 * and returns the backend calls they made, by method (summed over processes).
 */
async function startWorkers(schema: string, n: number, env: Record<string, string> = {}) {
  const workers: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  const calls: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const child = fork(workerFixture, [URL, schema, `bench-${i}`], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, SPOOL_PG_POOL: "10", SPOOL_PG_COUNT_CALLS: "1", ...env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    workers.push(child);
    ready.push(new Promise((resolve) => child.once("message", () => resolve())));
    child.on("message", (m: { calls?: Record<string, number> }) => {
      for (const [name, count] of Object.entries(m?.calls ?? {})) calls[name] = (calls[name] ?? 0) + count;
    });
  }
  await Promise.all(ready);
  let stopped: Promise<Record<string, number>> | null = null;
  return {
    stop(): Promise<Record<string, number>> {
      stopped ??= (async () => {
        for (const w of workers) w.kill("SIGTERM");
        await Promise.all(
          workers.map((w) => (w.exitCode !== null ? undefined : new Promise((r) => w.once("exit", r)))),
        );
        return calls;
      })();
      return stopped;
    },
  };
}

/** Waits until `count` runs have completed (run-closed notifications, with a stats poll as backstop). */
async function allCompleted(backend: PostgresBackend, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = (await backend.inspect.stats()).runsByStatus.completed ?? 0;
    if (done >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${done}/${count} runs completed in time`);
    await sleep(10);
  }
}

async function startMany(backend: PostgresBackend, name: string, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, k) =>
        backend.startWorkflow({
          workflowId: `${prefix}-${i + k}`,
          workflowName: name,
          version: null,
          startedEventBody: new Uint8Array([1]),
          onConflict: "attach",
        }),
      ),
    );
  }
}

async function throughput(processes: number): Promise<{
  stepsPerSecond: number;
  calls: Record<string, number>;
  claim?: ReturnType<typeof summary>;
}> {
  return withSchema(`tp${processes}`, async (schema, backend) => {
    // With 4 processes, also measure claim latency from this process while the workers are busy:
    // ready tasks of a workflow no worker runs, claimed one at a time.
    const probe = processes === 4;
    if (probe) await startMany(backend, "bench.probe", "probe", 5000);
    const workers = await startWorkers(schema, processes);
    try {
      const client = new Client({ backend });
      let probing = probe;
      const probeSamples: number[] = [];
      const probeLoop = (async () => {
        while (probing) {
          const t = performance.now();
          const task = await backend.claimWorkflowTask({
            workerId: "probe",
            workflowNames: ["bench.probe"],
            leaseMs: 600_000,
          });
          probeSamples.push(performance.now() - t);
          if (task === null) break;
          await sleep(2);
        }
      })();

      const t0 = performance.now();
      for (let i = 0; i < RUNS; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, RUNS - i) }, (_, k) =>
            client.start(tenSteps, { base: i + k }, { id: `tp-${i + k}` }),
          ),
        );
      }
      await allCompleted(backend, RUNS, 600_000);
      const seconds = (performance.now() - t0) / 1000;
      probing = false;
      await probeLoop;
      const check = await client.getHandle<typeof tenSteps>("tp-7").result();
      if (check !== tenStepsResult(7)) throw new Error(`wrong result ${check}`);
      return {
        stepsPerSecond: (RUNS * 10) / seconds,
        calls: await workers.stop(),
        claim: probeSamples.length > 0 ? summary(probeSamples.slice(20)) : undefined,
      };
    } finally {
      await workers.stop();
    }
  });
}

async function idleClaimLatency(): Promise<ReturnType<typeof summary>> {
  return withSchema("claim", async (_schema, backend) => {
    const n = 2000;
    await startMany(backend, "bench.claim", "c", n);
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const task = await backend.claimWorkflowTask({
        workerId: "w",
        workflowNames: ["bench.claim"],
        leaseMs: 600_000,
      });
      samples.push(performance.now() - t);
      if (task === null) throw new Error("ran out of tasks");
    }
    return summary(samples.slice(100)); // the first claims warm up the connections and plans
  });
}

async function signalLatencyRun(listen: boolean): Promise<ReturnType<typeof summary>> {
  return withSchema(listen ? "sig" : "sigpoll", async (schema, backend) => {
    const workers = await startWorkers(
      schema,
      2,
      listen ? {} : { SPOOL_PG_LISTEN: "0", SPOOL_PG_POLL_MAX: "200" },
    );
    try {
      const client = new Client({ backend });
      const samples: number[] = [];
      for (let i = 0; i < SIGNALS; i++) {
        const handle = await client.start(signalLatency, {}, { id: `sig-${i}` });
        // Let the run reach its signal wait (its task goes idle: nothing claimable, no lease) and
        // the workers go quiet (their poll back-off grows).
        for (;;) {
          const { rows } = await admin.query(
            `SELECT 1 FROM "${schema}".workflow_tasks WHERE run_id = $1 AND visible_at IS NULL`,
            [handle.runId],
          );
          if (rows.length > 0) break;
          await sleep(5);
        }
        await sleep(250);
        await handle.signal(go, { sentAt: Date.now() });
        const [sentAt, resumedAt] = await handle.result({ timeout: 10_000 });
        samples.push(resumedAt - sentAt);
      }
      return summary(samples);
    } finally {
      await workers.stop();
    }
  });
}

async function main(): Promise<void> {
  const version = (await admin.query("SHOW server_version")).rows[0].server_version;
  console.log(
    `PostgresBackend benchmark — PostgreSQL ${version}, ${os.cpus().length} CPU(s) ` +
      `(${os.cpus()[0]?.model ?? "?"}), Node ${process.version}, ${RUNS} workflows x 10 steps per run`,
  );
  for (const processes of [1, 2, 4]) {
    const r = await throughput(processes);
    const perStep = Object.entries(r.calls)
      .filter(([name]) => name !== "now")
      .map(([name, count]) => [name, count / (RUNS * 10)] as const)
      .filter(([, n]) => n >= 0.005)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${n.toFixed(2)}`)
      .join(", ");
    console.log(
      `steps/s, ${processes} worker process${processes > 1 ? "es" : ""}: ${r.stepsPerSecond.toFixed(0)} ` +
        `(backend calls per step: ${perStep})`,
    );
    if (r.claim) {
      console.log(
        `claim latency under load (4 workers busy; n=${r.claim.n}): p50 ${ms(r.claim.p50)}, p99 ${ms(r.claim.p99)}`,
      );
    }
  }
  const idle = await idleClaimLatency();
  console.log(`claim latency, idle database (n=${idle.n}): p50 ${ms(idle.p50)}, p99 ${ms(idle.p99)}`);
  const notified = await signalLatencyRun(true);
  console.log(
    `signal -> workflow resumed in another process, LISTEN/NOTIFY (n=${notified.n}): ` +
      `p50 ${ms(notified.p50)}, p99 ${ms(notified.p99)}`,
  );
  const polled = await signalLatencyRun(false);
  console.log(
    `signal -> resumed, polling only (max back-off 200 ms; n=${polled.n}): ` +
      `p50 ${ms(polled.p50)}, p99 ${ms(polled.p99)}`,
  );
  await admin.end();
}

await main();
