import { all, defineActivity, defineWorkflow, sleep } from "@spool/core";
import { checkDeterminism } from "@spool/testing";
import { it } from "vitest";
import { z } from "zod";

const a = defineActivity(
  {
    name: "a",
    input: z.object({ i: z.number() }),
    output: z.object({ n: z.number().int() }),
    retry: { maxAttempts: 3 },
  },
  async ({ i }) => ({ n: i }),
);
const wf20 = defineWorkflow({ name: "w20", input: z.object({}), output: z.number() }, async function* () {
  let s = 0;
  for (let i = 0; i < 20; i++) {
    try {
      s += (yield* a({ i })).n;
    } catch {
      s -= 1;
    }
  }
  return s;
});
const bad = defineWorkflow({ name: "bad", input: z.object({}), output: z.number() }, async function* () {
  const x = yield* a({ i: 1 });
  if (Date.now() % 2 === 0) yield* sleep("1m");
  const [p, q] = yield* all([a({ i: 2 }), a({ i: 3 })]);
  return x.n + p.n + q.n;
});
it("20 steps", async () => {
  const r = await checkDeterminism(wf20, { numRuns: 100 });
  console.log(JSON.stringify(r));
});
it("bad", async () => {
  try {
    await checkDeterminism(bad, { numRuns: 100 });
  } catch (e) {
    console.log(String((e as Error).message));
  }
});
