// Guards the README's main job: the hello demo completes, and after Ctrl+C (SIGINT) a second run resumes the same run without repeating finished steps.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "spool-hello-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the demo; when `interruptOn` appears in its output, sends SIGINT. */
function demo(db: string, interruptOn?: string): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "examples/hello/main.ts"], {
      cwd: root,
      env: { ...process.env, SPOOL_DB: db },
    });
    let out = "";
    let sent = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      if (interruptOn && !sent && out.includes(interruptOn)) {
        sent = true;
        child.kill("SIGINT");
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("exit", (code) => resolve({ out, code }));
  });
}

describe("examples/hello (pnpm demo)", () => {
  it("runs to a result, and resumes the same run after Ctrl+C", async () => {
    const db = join(dir, "hello.db");
    const first = await demo(db, "durable timer");
    expect(first.code).toBe(130);
    expect(first.out).toContain("charge $42");
    expect(first.out).toContain("Stopped. Run `pnpm demo` again to resume the same run.");
    expect(first.out).not.toContain("send receipt");

    const second = await demo(db);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/Resuming run \w+ of hello-order-/);
    // Finished steps are not executed again: only the receipt remains.
    expect(second.out).not.toContain("reserve 2 item(s)");
    expect(second.out).not.toContain("charge $42");
    expect(second.out).toContain("send receipt");
    expect(second.out).toMatch(
      /Result: \{"orderId":"order-\w+","chargeId":"ch-order-\w+","receipt":"receipt-order-\w+"\}/,
    );
    expect(second.out).toMatch(/completed, 10 history events/);

    const third = await demo(db);
    expect(third.out).toMatch(/Starting hello-order-/);
    expect(third.code).toBe(0);
    // Three real `tsx` processes one after another: on a loaded 2-core machine each takes seconds
    // just to start (seen: the 30 s default ran out with both cores busy). A bound, not a measure.
  }, 120_000);
});
