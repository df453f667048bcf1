// Guards the command line a user meets: bad flags and mistyped paths refused with a clear line (no empty database made, no stack), per-command help, start/query, payload summaries, stuck steps made visible, a second terminate explained.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "@spool/cli";
import pg from "pg";
import { Client, SqliteBackend, silentLogger, Worker } from "spool";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliFlow, cliQueried, cliStuck, double, gateway, go } from "./fixtures/definitions.ts";

const dir = mkdtempSync(join(tmpdir(), "spool-cli-use-"));
const db = join(dir, "use.db");
const module = join(import.meta.dirname, "fixtures", "definitions.ts");

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  return main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }).then((code) => ({
    code,
    out: out.join("\n"),
    err: err.join("\n"),
  }));
}

beforeAll(async () => {
  const backend = new SqliteBackend({ path: db });
  const worker = new Worker({
    backend,
    workflows: [cliFlow, cliStuck],
    activities: [double, gateway],
    logger: silentLogger,
  });
  await worker.start();
  const client = new Client({ backend });
  await (await client.start(cliFlow, { base: 3 }, { id: "use-done" })).result({ timeout: 10_000 });
  const stuck = await client.start(cliStuck, {}, { id: "use-stuck" });
  // Wait until the first attempt has failed and the step sits in its hour-long back-off.
  for (let i = 0; i < 1000; i++) {
    const d = await stuck.describe();
    if (d.pendingActivities[0]?.state === "backoff") break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await worker.shutdown();
  await backend.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("spool CLI: bad input is refused clearly", () => {
  it.each(["-1", "0", "abc", "1.5"])(
    "worker --concurrency=%s is refused before anything starts",
    async (n) => {
      const fresh = join(dir, `conc-${n}.db`);
      const r = await run("worker", "--module", module, "--db", fresh, `--concurrency=${n}`);
      expect(r.code).toBe(2);
      expect(r.err).toContain(
        `--concurrency takes a whole number ≥ 1 (activity attempts run at once), got "${n}"`,
      );
      expect(existsSync(fresh)).toBe(false);
    },
  );

  it("worker --log-level must be a known level", async () => {
    const r = await run("worker", "--module", module, "--db", db, "--log-level", "loud");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--log-level takes one of debug, info, warn, error, got "loud"/);
  });

  it("a mistyped --db is refused by read commands, and no empty database is created", async () => {
    const typo = join(dir, "uze.db");
    for (const argv of [["list"], ["describe", "x"], ["history", "x"], ["stats"], ["terminate", "x"]]) {
      const r = await run(...argv, "--db", typo);
      expect(r.code).toBe(1);
      expect(r.err).toBe(
        `spool: no SQLite database at ${typo} (from --db). Check the path given to --db (or $SPOOL_DB); ` +
          "nothing was created. A new database is made by 'spool worker' or 'spool start'.",
      );
    }
    expect(existsSync(typo)).toBe(false);
  });

  it("a mistyped --schema is refused by read commands on PostgreSQL, and no empty schema is created", async () => {
    const schema = `spool_test_typo_${process.pid}`;
    const pgUrl = process.env.SPOOL_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
    const exists = async () => {
      const pool = new pg.Pool({ connectionString: pgUrl, max: 1 });
      try {
        return (await pool.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema])).rows.length > 0;
      } finally {
        await pool.end();
      }
    };
    for (const argv of [["list"], ["describe", "x"], ["stats"]]) {
      const r = await run(...argv, "--pg", pgUrl, "--schema", schema);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        new RegExp(`there is no schema "${schema}" in this PostgreSQL database \\(nothing was created\\)`),
      );
    }
    expect(await exists()).toBe(false);
  });

  it("a --db in a directory that does not exist is an error line, not a stack trace", async () => {
    const missing = join(dir, "no-such-dir", "x.db");
    const r = await run("start", "cli.flow", "--module", module, "--db", missing, "--input", '{"base":1}');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^spool: no SQLite database at .*x\.db \(from --db\): its directory .*no-such-dir does not exist/,
    );
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("a usage error prints one usage line, not the whole help page", async () => {
    const r = await run("describe", "--db", db);
    expect(r.code).toBe(2);
    expect(r.err.split("\n")).toEqual([
      "spool: spool describe needs a workflow id",
      "usage: spool describe <workflowId> [--run id] [--json]   (spool describe --help for details)",
    ]);
    const unknownFlag = await run("list", "--colour", "--db", db);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.err.split("\n")).toHaveLength(2);
    expect(unknownFlag.err).toMatch(/^spool: Unknown option '--colour'/);
    expect(unknownFlag.err).toMatch(/\nusage: spool list /);
  });

  it("each command has its own --help page", async () => {
    const r = await run("worker", "--help");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /^usage: spool worker --module <file> \[--concurrency n\] \[--log-level debug\|info\|warn\|error\]/,
    );
    expect(r.out).toContain("--concurrency n     activity attempts at once, a whole number ≥ 1");
    expect(r.out).not.toContain("describe <workflowId>");
    expect((await run("help", "query")).out).toMatch(
      /^usage: spool query <workflowId> <query> --module <file>/,
    );
    const overview = await run("--help");
    expect(overview.out).toMatch(/^usage: spool <command> \[options\]/);
    for (const c of ["list", "start", "query", "worker"])
      expect(overview.out).toMatch(new RegExp(`\\n  ${c} `));
  });
});

describe("spool CLI: start, query, history, terminate", () => {
  it("start runs a workflow from the module (input checked by its schema); again with the same id attaches", async () => {
    const r = await run(
      "start",
      "cli.queried",
      "--module",
      module,
      "--db",
      db,
      "--id",
      "use-q",
      "--input",
      '{"label":"L"}',
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^started cli\.queried as use-q \(run \S+, running\)$/);
    const again = await run(
      "start",
      "cli.queried",
      "--module",
      module,
      "--db",
      db,
      "--id",
      "use-q",
      "--json",
      "--input",
      '{"label":"L"}',
    );
    expect(JSON.parse(again.out)).toMatchObject({ workflowId: "use-q", status: "running", created: false });
    const bad = await run("start", "cli.queried", "--module", module, "--db", db, "--input", '{"label":1}');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^ValidationError: .*input of workflow "cli\.queried"/);
    const unknown = await run("start", "cli.nope", "--module", module, "--db", db);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/does not export workflow "cli\.nope"/);
  });

  it("query answers from the run's state (its history replayed with the module's code)", async () => {
    const backend = new SqliteBackend({ path: db });
    const worker = new Worker({ backend, workflows: [cliQueried], logger: silentLogger });
    await worker.start();
    try {
      const client = new Client({ backend });
      await client.getHandle("use-q").signal(go, { n: 4 });
      // Wait until the worker has recorded the signal, so the query sees it in history.
      for (let i = 0; i < 1000; i++) {
        if ((await client.getHandle("use-q").history()).some((e) => e.type === "SignalReceived")) break;
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      await worker.shutdown();
      await backend.close();
    }
    const r = await run("query", "use-q", "cli.progress", "--module", module, "--db", db);
    expect(r.err).toBe("");
    expect(JSON.parse(r.out)).toEqual({ label: "L", seen: [4] });
    const none = await run("query", "use-q", "cli.nothing", "--module", module, "--db", db);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/has no handler for query "cli\.nothing"/);
    const noModule = await run("query", "use-q", "cli.progress", "--db", db);
    expect(noModule.code).toBe(2);
    expect(noModule.err).toMatch(/spool query needs --module/);
  });

  it("history shows a decoded summary of each event's payload", async () => {
    const r = await run("history", "use-done", "--db", db);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\n1 +\S+ +WorkflowStarted +\S.* +input \{"base":3\}/);
    expect(r.out).toMatch(/ActivityScheduled +activity "cli\.double" \(step 1\) +input \{"n":3\}/);
    expect(r.out).toMatch(/ActivityCompleted .* attempt 1: result 6\n/);
    expect(r.out).toMatch(/WorkflowCompleted +workflow completion +result 18$/);
  });

  it("a second terminate says the run is already closed", async () => {
    await run(
      "start",
      "cli.queried",
      "--module",
      module,
      "--db",
      db,
      "--id",
      "use-t",
      "--input",
      '{"label":"T"}',
    );
    const first = await run("terminate", "use-t", "--db", db);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/^terminated use-t \(run \S+\)$/);
    const second = await run("terminate", "use-t", "--db", db);
    expect(second.err).toBe("");
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/^use-t is already closed \(cancelled, run \S+\); nothing to terminate$/);
    const missing = await run("terminate", "use-nothing", "--db", db);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^RunNotFoundError: no run for workflow id "use-nothing"/);
  });
});

describe("spool CLI: a stuck step is visible", () => {
  it("describe shows the pending step's attempt, last error and next attempt time", async () => {
    const r = await run("describe", "use-stuck", "--db", db);
    expect(r.out).toMatch(/status +running/);
    expect(r.out).toMatch(
      /pending +step 1 activity "cli\.gateway": attempt 1 failed; attempt 2 at \d{4}-\d\d-\d\dT[\d:.]+Z; last error Error: gateway down/,
    );
    const json = JSON.parse((await run("describe", "use-stuck", "--db", db, "--json")).out);
    expect(json.pendingActivities).toEqual([
      {
        step: 1,
        activityName: "cli.gateway",
        attempt: 1,
        state: "backoff",
        lastError: { name: "Error", message: "gateway down" },
        nextAttemptAt: expect.stringMatching(/Z$/),
        scheduledAt: expect.stringMatching(/Z$/),
      },
    ]);
    // About an hour away: the retry policy's initial interval.
    expect(Date.parse(json.pendingActivities[0].nextAttemptAt) - Date.now()).toBeGreaterThan(50 * 60_000);
  });

  it("list has a PENDING column and pendingActivities in --json; stats counts back-off", async () => {
    const r = await run("list", "--db", db);
    expect(r.out).toMatch(/PENDING/);
    expect(r.out).toMatch(
      /use-stuck .* cli\.stuck +running +\d+ +\S+ +cli\.gateway #1 retrying Error: gateway down/,
    );
    const json = JSON.parse((await run("list", "--db", db, "--json", "--workflow", "cli.stuck")).out);
    expect(json.runs[0].pendingActivities[0]).toMatchObject({ attempt: 1, state: "backoff" });
    const stats = await run("stats", "--db", db);
    expect(stats.out).toMatch(/activity tasks in back-off +1/);
    expect(JSON.parse((await run("stats", "--db", db, "--json")).out).backoffActivityTasks).toBe(1);
  });
});

describe("spool workers", () => {
  it("lists the registry: a running worker as live with what it hosts, then as stopped once it shut down", async () => {
    const file = join(dir, "workers.db");
    const backend = new SqliteBackend({ path: file });
    const worker = new Worker({
      backend,
      workflows: [cliFlow],
      activities: [double],
      logger: silentLogger,
      workerId: "cli-worker-1",
    });
    await worker.start();
    try {
      const live = await run("workers", "--db", file);
      expect(live.code).toBe(0);
      const row = live.out.split("\n").find((l) => l.startsWith("cli-worker-1"));
      expect(row).toMatch(new RegExp(`^cli-worker-1\\s+live\\s+\\S+\\s+${process.pid}\\s`));
      expect(row).toContain(cliFlow.name);
      expect(row).toContain(double.name);
      const json = JSON.parse((await run("workers", "--db", file, "--json")).out) as {
        workerId: string;
        status: string;
      }[];
      expect(json.map((w) => [w.workerId, w.status])).toEqual([["cli-worker-1", "live"]]);
    } finally {
      await worker.shutdown();
    }
    const after = await run("workers", "--db", file);
    expect(after.out).toBe("no live or dead worker (1 stopped cleanly; --all lists them)");
    const all = await run("workers", "--db", file, "--all");
    expect(all.out.split("\n").find((l) => l.startsWith("cli-worker-1"))).toMatch(
      /^cli-worker-1\s+stopped\s/,
    );
    await backend.close();
  });
});
