// Guards the `spool` command: listing, describing, exporting and replaying histories, cancelling, and clear usage errors.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "@spool/cli";
import { Client, SqliteBackend, silentLogger, Worker } from "spool";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliFlow, cliWaiter, double } from "./fixtures/definitions.ts";

const dir = mkdtempSync(join(tmpdir(), "spool-cli-"));
const db = join(dir, "cli.db");
const module = join(import.meta.dirname, "fixtures", "definitions.ts");
const changedModule = join(import.meta.dirname, "fixtures", "changed-definitions.ts");

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
  const worker = new Worker({ backend, workflows: [cliFlow], activities: [double], logger: silentLogger });
  await worker.start();
  const client = new Client({ backend });
  await (await client.start(cliFlow, { base: 1 }, { id: "cli-done" })).result({ timeout: 10_000 });
  await worker.shutdown();
  await client.start(cliFlow, { base: 2 }, { id: "cli-open" });
  await client.start(cliWaiter, {}, { id: "cli-waiter" });
  await backend.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("spool CLI", () => {
  it("lists runs with filters", async () => {
    const all = await run("list", "--db", db);
    expect(all.code).toBe(0);
    expect(all.out).toMatch(/cli-done .* cli\.flow +completed/);
    expect(all.out).toMatch(/cli-open .* cli\.flow +running/);
    const open = await run("list", "--db", db, "--status", "running", "--json");
    expect(JSON.parse(open.out).runs.map((r: { workflowId: string }) => r.workflowId)).toEqual([
      "cli-waiter",
      "cli-open",
    ]);
  });

  it("describes a run and prints its history", async () => {
    const d = await run("describe", "cli-done", "--db", db);
    expect(d.out).toMatch(/status +completed/);
    const h = await run("history", "cli-done", "--db", db);
    expect(h.out).toMatch(/1 +\S+ +WorkflowStarted/);
    expect(h.out).toMatch(/ActivityScheduled +activity "cli\.double" \(step 1\)/);
  });

  it("exports a history file that replays with the same code and diverges with changed code", async () => {
    const file = join(dir, "done.json");
    const e = await run("export", "cli-done", "--db", db, "--out", file);
    expect(e.code).toBe(0);
    expect(JSON.parse(readFileSync(file, "utf8")).format).toBe("spool-history");
    const ok = await run("replay", file, "--module", module);
    expect(ok.err).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^ok: \d+ events of cli-done replay with the current code \(status completed\)/);
    const bad = await run("replay", file, "--module", changedModule);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/DIVERGES at step \d+, history event #\d+/);
    expect(bad.err).toMatch(/recorded: timer/);
  });

  it("signals a run: request ids make a repeat harmless; --module checks the payload and the name", async () => {
    const first = await run(
      "signal",
      "cli-waiter",
      "cli.go",
      "--db",
      db,
      "--payload",
      '{"n":5}',
      "--request-id",
      "r1",
    );
    expect(first.err).toMatch(/^note: not checked against the workflow's code \(pass --module/);
    expect(first.out).toBe('signal "cli.go" sent to cli-waiter (request id r1)');
    // The same request again (a retry after a lost acknowledgement): not delivered twice.
    expect(
      (await run("signal", "cli-waiter", "cli.go", "--db", db, "--payload", '{"n":5}', "--request-id", "r1"))
        .code,
    ).toBe(0);
    const checked = await run(
      "signal",
      "cli-waiter",
      "cli.go",
      "--db",
      db,
      "--module",
      module,
      "--payload",
      '{"n":7}',
    );
    expect(checked.code).toBe(0);

    const badPayload = await run(
      "signal",
      "cli-waiter",
      "cli.go",
      "--db",
      db,
      "--module",
      module,
      "--payload",
      '{"n":"x"}',
    );
    expect(badPayload.code).toBe(1);
    expect(badPayload.err).toMatch(/ValidationError: .*payload of signal "cli\.go"/);
    const undeclared = await run("signal", "cli-waiter", "cli.nope", "--db", db, "--module", module);
    expect(undeclared.code).toBe(1);
    expect(undeclared.err).toMatch(/does not accept signal "cli\.nope"; it declares: cli\.go/);
    const notJson = await run("signal", "cli-waiter", "cli.go", "--db", db, "--payload", "{n:1}");
    expect(notJson.code).toBe(2);
    expect(notJson.err).toMatch(/--payload is not JSON/);
    const noName = await run("signal", "cli-waiter", "--db", db);
    expect(noName.code).toBe(2);
    expect(noName.err).toMatch(/needs a workflow id and a signal name/);

    // The workflow adds up the first two signals it received: 5 + 7, not 5 + 5.
    const backend = new SqliteBackend({ path: db });
    const worker = new Worker({ backend, workflows: [cliWaiter], logger: silentLogger });
    await worker.start();
    try {
      expect(await new Client({ backend }).getHandle("cli-waiter").result({ timeout: 10_000 })).toBe(12);
    } finally {
      await worker.shutdown();
      await backend.close();
    }
  });

  it("cancels an open run, and says so for a finished one", async () => {
    expect((await run("cancel", "cli-done", "--db", db)).out).toMatch(/had already finished \(completed\)/);
    expect((await run("cancel", "cli-open", "--db", db, "--reason", "test")).out).toMatch(
      /cancellation requested/,
    );
  });

  it("reports usage errors with exit code 2 and unknown runs with a typed error", async () => {
    const u = await run("frobnicate", "--db", db);
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/unknown command "frobnicate"/);
    const missing = await run("describe", "nope", "--db", db);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/RunNotFoundError: no run for workflow id "nope"/);
    const bad = await run("list", "--db", db, "--status", "sleeping");
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown status "sleeping"/);
  });
});
