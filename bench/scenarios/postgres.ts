/**
 * Scenario 9 — PostgreSQL: steps/s of the 10-step workflow with 1, 2 and 4 worker processes on
 * `PostgresBackend` (@spool/postgres). Every measurement uses a fresh schema on the server
 * (default postgres://postgres@127.0.0.1:5432/test, `--pg-url` or SPOOL_PG_URL to change) and
 * drops it afterwards. Unavailable, with the reason, when the package or the server is not there.
 *
 * Each worker process first runs WARMUP workflows on a schema of its own: on a 2-core machine one
 * process and the server already use both cores, and cold processes each spent their first
 * seconds in V8 warm-up (0.4-0.5 ms more worker CPU per step with 2 processes than with 1, none
 * once warm), which made more processes look slower for reasons unrelated to the backend.
 */
import pg from "pg";
import { loadPostgresBackend } from "../lib/backends.ts";
import { measureWithProcesses } from "../lib/process-workers.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { perSecond } from "../lib/stats.ts";
import { concurrentWorkerSettings } from "./concurrent.ts";

const STEPS = 10;
/** Workflows each worker process runs on its own schema before the measurement. */
const WARMUP = 100;

/** The server's version, or the reason it cannot be reached. */
async function serverVersion(url: string): Promise<{ version: string } | { unavailable: string }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const r = await client.query<{ server_version: string }>("SHOW server_version");
    return { version: r.rows[0]?.server_version ?? "unknown" };
  } catch (err) {
    return {
      unavailable: `no PostgreSQL server at ${url} (${err instanceof Error ? err.message : String(err)})`,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function withSchema<T>(url: string, schema: string, fn: () => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`);
    try {
      return await fn();
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  } finally {
    await admin.end();
  }
}

async function run(ctx: ScenarioContext): Promise<void> {
  const url = ctx.options.pgUrl;
  const count = ctx.options.quick ? 100 : 500;
  const processCounts = [1, 2, 4];
  const settings = { ...concurrentWorkerSettings, pollIntervalMs: { min: 5, max: 100 } };
  ctx.setting("server", url.replace(/:[^:@/]*@/, ":***@"));
  ctx.setting("workflows per measurement", count);
  ctx.setting("steps per workflow", STEPS);
  ctx.setting("worker processes", processCounts);
  ctx.setting("worker (per process)", settings);
  ctx.setting("warm-up per process (own schema, before the clock starts)", `${WARMUP} workflows`);
  ctx.setting(
    "backend",
    "PostgresBackend defaults (pool of 10 per process, LISTEN/NOTIFY on) and a fresh schema",
  );

  const Pg = await loadPostgresBackend();
  const server = await serverVersion(url);
  if ("version" in server) ctx.detail("postgres server version", server.version);
  const reasons = [Pg, server].flatMap((r) => ("unavailable" in r ? [r.unavailable] : []));
  if (reasons.length > 0) ctx.unavailable(reasons.join("; "));

  for (let round = 1; round <= ctx.options.rounds; round++) {
    for (const processes of processCounts) {
      const schema = `spool_bench_${process.pid}_${Date.now()}_${processes}`;
      const r = await withSchema(url, schema, () =>
        measureWithProcesses({
          spec: { kind: "postgres", url, schema },
          processes,
          count,
          steps: STEPS,
          settings,
          warmup: WARMUP,
        }),
      );
      const label = `${processes} worker process${processes === 1 ? "" : "es"}`;
      ctx.sample(`steps/s, ${label}`, "steps/s", perSecond(count * STEPS, r.ms));
      ctx.sample(`workflows/s, ${label}`, "wf/s", perSecond(count, r.ms));
      if ((r.statuses.completed ?? 0) !== count)
        ctx.note(`round ${round}, ${label}: ${JSON.stringify(r.statuses)}`);
      ctx.log(`round ${round}, ${label}: ${r.ms.toFixed(0)} ms`);
    }
  }
}

const scenario: Scenario = {
  name: "postgres",
  title: "PostgreSQL: steps/s with 1, 2 and 4 worker processes",
  run,
};
export default scenario;
