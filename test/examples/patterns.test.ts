// Guards the pattern examples (signals and timers, fan-out, order saga, state machine): each runs end to end on SQLite with the outcome it documents.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main as fanOut } from "../../examples/fan-out/main.ts";
import { main as orderSaga } from "../../examples/order-saga/main.ts";
import { ledger } from "../../examples/order-saga/workflow.ts";
import { main as signalsAndTimers } from "../../examples/signals-and-timers/main.ts";
import { main as stateMachine } from "../../examples/state-machine/main.ts";

const dir = mkdtempSync(join(tmpdir(), "spool-examples-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = (name: string) => join(dir, `${name}.db`);

describe("examples", () => {
  it("signals-and-timers: approved after reminders; the other expires after its last reminder", async () => {
    const r = await signalsAndTimers({ path: path("signals"), quiet: true });
    expect(r).toEqual({ approved: { outcome: "paid", by: "maria" }, expired: { outcome: "expired" } });
  });

  it("fan-out: every item processed once, in input order, then published", async () => {
    const r = await fanOut({ path: path("fan-out"), quiet: true, count: 25 });
    expect(r.count).toBe(25);
    expect(r.manifest).toBe("manifest(25)");
  });

  it("order-saga: a failed shipment refunds, releases and cancels — in reverse order", async () => {
    ledger.length = 0;
    const r = await orderSaga({ path: path("saga"), quiet: true });
    expect(r.failed).toBe("failed");
    const bad = ledger.filter((l) => l.includes("bad-"));
    expect(bad.map((l) => l.split(" ")[0])).toEqual(["reserve", "charge", "refund", "release", "cancel"]);
  });

  it("state-machine: signals drive the transitions, a disallowed event is ignored, continue-as-new keeps every signal", async () => {
    const r = await stateMachine({ path: path("fsm"), quiet: true });
    expect(r).toEqual({ state: "delivered", ignored: 1, transitions: 3 });
  });
});
