/**
 * Records golden histories from the examples: `pnpm tsx test/histories/record.ts`. Each history
 * file captures how a released version of Spool and of the example recorded a run; the golden
 * test replays every file with today's code, so a change that would break in-flight workflows
 * fails the build. Re-record only on purpose (a new release), never to make the test pass.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportHistory } from "@spool/core";
import { Client, type HistoryEvent, SqliteBackend, silentLogger, Worker } from "spool";
import { publish, resize, thumbnailBatch } from "../../examples/fan-out/workflow.ts";
import { chargeCard, helloOrder, reserveStock, sendReceipt } from "../../examples/hello/workflow.ts";
import * as saga from "../../examples/order-saga/workflow.ts";
import { decide, expenseApproval, payOut, sendReminder } from "../../examples/signals-and-timers/workflow.ts";
import { notify, orderEvent, orderLifecycle } from "../../examples/state-machine/workflow.ts";
import { goldenWorkflows } from "./golden-workflows.ts";

const dir = import.meta.dirname;
const backend = new SqliteBackend({ path: ":memory:" });
const worker = new Worker({
  backend,
  workflows: goldenWorkflows,
  activities: [
    reserveStock,
    chargeCard,
    sendReceipt,
    resize,
    publish,
    payOut,
    sendReminder,
    notify,
    saga.reserveInventory,
    saga.releaseInventory,
    saga.chargePayment,
    saga.refundPayment,
    saga.createShipment,
    saga.cancelOrder,
  ],
  logger: silentLogger,
  pollIntervalMs: { min: 2, max: 20 },
});
await worker.start();
const client = new Client({ backend });

async function save(name: string, workflowId: string): Promise<void> {
  const handle = client.getHandle(workflowId);
  await handle.result().catch(() => undefined);
  const d = await handle.describe();
  const events: HistoryEvent[] = await handle.history();
  writeFileSync(join(dir, `${name}.json`), exportHistory(events, { workflowId, runId: d.runId }));
  console.log(`${name}: ${events.length} events, ${d.status}`);
}

await client.start(helloOrder, { orderId: "golden-1", items: 2, amount: 42 }, { id: "golden-hello" });
await save("hello-order", "golden-hello");

await client.start(
  thumbnailBatch,
  { urls: ["a", "b", "c", "d", "e"], width: 64, parallelism: 2 },
  { id: "golden-fan-out" },
);
await save("fan-out", "golden-fan-out");

const base = { sku: "book", quantity: 1, amount: 10 };
await client.start(
  saga.orderSaga,
  { ...base, orderId: "g-ok", address: "1 Main St" },
  { id: "golden-saga-ok" },
);
await save("order-saga-shipped", "golden-saga-ok");
await client.start(
  saga.orderSaga,
  { ...base, orderId: "g-bad", address: " " },
  { id: "golden-saga-compensated" },
);
await save("order-saga-compensated", "golden-saga-compensated");

const exp = await client.start(
  expenseApproval,
  { expenseId: "g-exp", amount: 5, remindEvery: 30, maxReminders: 5 },
  { id: "golden-expense" },
);
while ((await exp.history()).filter((e) => e.type === "ActivityScheduled").length < 2) {
  await new Promise((r) => setTimeout(r, 5));
}
await exp.signal(decide, { approved: true, by: "golden" });
await save("signals-and-timers", "golden-expense");

const fsm = await client.start(
  orderLifecycle,
  { orderId: "g-fsm", maxTransitionsPerRun: 10 },
  { id: "golden-fsm" },
);
for (const event of ["ship", "pay", "ship", "deliver"] as const)
  await fsm.signal(orderEvent, { event, by: "golden" });
await save("state-machine", "golden-fsm");

await worker.shutdown();
await backend.close();
