// Guards the `spool` executable as a real process: `| head` exits quietly (no EPIPE stack), --json output is the only thing on stdout and parses, the documented commands keep pnpm's banner out, and `spool worker` logs what it registered at the chosen --log-level.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client, SqliteBackend } from "spool";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliFlow } from "./fixtures/definitions.ts";

const root = resolve(import.meta.dirname, "..", "..");
const bin = join(root, "packages", "cli", "bin", "spool.mjs");
const module = join(import.meta.dirname, "fixtures", "definitions.ts");
const dir = mkdtempSync(join(tmpdir(), "spool-cli-proc-"));
const db = join(dir, "proc.db");

/** Enough runs that `list --json` prints more than a pipe holds (64 KiB), so `head` closes it early. */
const RUNS = 400;

beforeAll(async () => {
  const backend = new SqliteBackend({ path: db, durability: "normal" });
  const client = new Client({ backend });
  for (let i = 0; i < RUNS; i++) await client.start(cliFlow, { base: i }, { id: `proc-${i}` });
  await backend.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the executable to completion (generous timeout: tsx compiles the CLI on a loaded machine). */
function spool(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
}

describe("the spool executable", () => {
  it("`spool list --json | head` exits quietly: no EPIPE stack trace", () => {
    const errFile = join(dir, "head.err");
    const r = spawnSync(
      "sh",
      [
        "-c",
        `"${process.execPath}" "${bin}" list --db "${db}" --limit ${RUNS} --json 2>"${errFile}" | head -c 100`,
      ],
      { cwd: root, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.stdout).toHaveLength(100);
    expect(readFileSync(errFile, "utf8")).toBe("");
  });

  it("--json output is the whole of stdout, and it parses", () => {
    const r = spool("list", "--db", db, "--limit", "3", "--json");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).runs).toHaveLength(3);
    const stats = spool("stats", "--db", db, "--json");
    expect(JSON.parse(stats.stdout).runsByStatus.running).toBe(RUNS);
  });

  it("the README's spool commands run as `pnpm -s spool` (pnpm's script banner would precede the JSON)", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const commands = readme.split("\n").filter((l) => /^pnpm .*\bspool\b/.test(l));
    expect(commands.length).toBeGreaterThanOrEqual(8);
    for (const line of commands) expect(line).toMatch(/^pnpm -s spool /);
    // And the root script that `pnpm -s spool` runs is this executable's entry point.
    const scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts;
    expect(scripts.spool).toBe("tsx packages/cli/src/bin.ts");
  });

  it("`spool worker` logs the workflows and activities it registered, at the chosen --log-level", async () => {
    // (How the process ends after SIGINT is not this test's subject and is not checked.)
    const info = await runWorker("info");
    expect(info.stdout).toMatch(
      /\[spool\] INFO worker started \{"workerId":"worker-\w+","workflows":\["cli\.flow",/,
    );
    expect(info.stdout).toMatch(/"activities":\["cli\.double","cli\.gateway"\]/);
    expect(info.stdout).toMatch(
      /running 4 workflow\(s\) \(cli\.flow, cli\.queried, cli\.stuck, cli\.waiter\) and 2/,
    );
    const warn = await runWorker("warn");
    expect(warn.stdout).not.toMatch(/INFO/);
    expect(warn.stdout).toMatch(/running \d+ workflow\(s\)/);
  });
});

/** Starts `spool worker` on an empty store, waits for its start-up line, then stops it with SIGINT. */
async function runWorker(level: string): Promise<{ stdout: string }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [bin, "worker", "--module", module, "--db", join(dir, `worker-${level}.db`), "--log-level", level],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  child.stderr!.resume();
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  await new Promise<void>((resolveStarted, reject) => {
    // Generous: tsx compiles the CLI and the module on a loaded machine.
    const timer = setTimeout(() => reject(new Error(`no start-up line in 60 s; stdout: ${stdout}`)), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/Ctrl\+C drains and stops/.test(stdout)) {
        clearTimeout(timer);
        resolveStarted();
      }
    });
  });
  child.kill("SIGINT");
  await exited;
  return { stdout };
}
