/**
 * `pnpm demo`: runs the hello order workflow through a real Worker on the embedded SQLite
 * default (./spool.db). Interrupt it with Ctrl+C at any point and run it again: it resumes the
 * same run where it stopped. Once a run has completed, the next `pnpm demo` starts a new one.
 */
import { Client, consoleLogger, SqliteBackend, Worker } from "spool";
import { chargeCard, helloOrder, reserveStock, sendReceipt } from "./workflow.ts";

const path = process.env.SPOOL_DB ?? "spool.db";
const backend = new SqliteBackend({ path });
const worker = new Worker({
  backend,
  workflows: [helloOrder],
  activities: [reserveStock, chargeCard, sendReceipt],
  logger: consoleLogger(process.env.SPOOL_LOG === "debug" ? "debug" : "info"),
});
const client = new Client({ backend });

const open = await client.list(
  { workflowName: helloOrder.name, status: ["running", "blocked"] },
  { limit: 1 },
);
const resuming = open.runs[0];
const orderId = resuming ? resuming.workflowId.replace(/^hello-/, "") : `order-${Date.now().toString(36)}`;
console.log(
  resuming
    ? `Resuming run ${resuming.runId} of ${resuming.workflowId} from ${path} (history: ${resuming.historyLength} events)`
    : `Starting hello-${orderId} in ${path}`,
);

await worker.start();
let interrupted = false;
worker.handleSignals(() => {
  interrupted = true;
  console.log("\nStopped. Run `pnpm demo` again to resume the same run.");
  backend.close().finally(() => process.exit(130));
});

const handle = await client.start(helloOrder, { orderId, items: 2, amount: 42 }, { id: `hello-${orderId}` });
try {
  const result = await handle.result();
  const d = await handle.describe();
  console.log(`Result: ${JSON.stringify(result)}`);
  console.log(`Run ${d.runId}: ${d.status}, ${d.historyLength} history events`);
} finally {
  if (!interrupted) {
    await worker.shutdown();
    await backend.close();
  }
}
