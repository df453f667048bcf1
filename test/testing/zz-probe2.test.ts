import { defineActivity, defineSignal, defineWorkflow, NonRetryableError, sleep } from "@spool/core";
import { createTestEnv } from "@spool/testing";
import { consoleLogger } from "@spool/worker";
import { expect, it } from "vitest";
import { z } from "zod";

const charge = defineActivity(
  {
    name: "p.charge",
    input: z.object({ id: z.string() }),
    output: z.object({ chargeId: z.string() }),
    retry: { maxAttempts: 3, initialInterval: "1s" },
    timeout: "30s",
  },
  async ({ id }) => ({ chargeId: `real-${id}` }),
);
const approve = defineSignal("approve", z.object({ by: z.string() }));
const wf = defineWorkflow(
  { name: "wf", input: z.object({ id: z.string() }), output: z.string() },
  async function* (input, ctx) {
    const { chargeId } = yield* charge({ id: input.id });
    yield* sleep("30d");
    const d = yield* approve.wait({ timeout: "1d" });
    return `${chargeId}:${d?.by ?? "none"}:${ctx.now().toISOString()}`;
  },
);
it("sleep 30d instantly", async () => {
  const env = await createTestEnv({
    workflows: [wf],
    activities: [charge],
    logger: consoleLogger("debug"),
    stallTimeoutMs: 1500,
  });
  const t0 = Date.now();
  const r = await env.run(wf, { id: "a" });
  console.log(r, Date.now() - t0, "ms", env.stats, env.ledger.length);
  env.failActivity(charge, { attempt: 1 });
  env.crashAfterActivity(charge, { attempt: 2 });
  const r2 = await env.run(wf, { id: "b" });
  console.log(
    r2,
    env
      .ledgerOf(charge)
      .map((e) => [
        e.attempt,
        e.idempotencyKey,
        e.outcome.status,
        e.completionDropped,
        new Date(e.at).toISOString(),
      ]),
  );
  env.crashAfterEvent(3);
  const r3 = await env.run(wf, { id: "c" });
  console.log(r3, env.stats);
  const h = await env.start(wf, { id: "d" });
  try { await env.advance("31d"); } catch (e) { console.log("STALL", env.worker.isIdle(), env.worker.stats(), await env.backend.inspect.stats(), await env.backend.nextWakeAt(), env.now(), (env.worker as any).state, (env.worker as any).pumping, (env.worker as any).pumpAgain, (env.worker as any).wakeTimer, (env.worker as any).lastError); console.log("DEAD", [...(env as any).dead], env.worker.workerId, env.stats); console.log(await env.backend.claimWorkflowTask({workerId: "x", workflowNames: ["wf"], leaseMs: 1000})); throw e; }
  await h.signal(approve, { by: "ann" });
  console.log(await h.result());
  await env.close();
});
