import { createRequire } from "node:module";
import { defineWorkflow, Step, WorkflowExecutor } from "@spool/core";
import { it } from "vitest";
import { z } from "zod";

it("probe", async () => {
  const stacks: string[] = [];
  const wf = defineWorkflow({ name: "w", input: z.object({}), output: z.number() }, async function* () {
    stacks.push(new Error().stack!);
    await null;
    stacks.push(new Error().stack!);
    return 1;
  });
  const ex = new WorkflowExecutor(wf, { workflowId: "w", runId: "r" });
  await ex.replayHistory([{ type: "WorkflowStarted", seq: 1, ts: 0, workflowName: "w", input: {} }]);
  console.log(stacks.join("\n----\n"));
  console.log(createRequire(import.meta.url).resolve("@spool/core"), import.meta.url, Error.stackTraceLimit);
});
