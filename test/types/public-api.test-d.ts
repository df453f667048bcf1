// Guards the public generics: yield* results, all/race tuples, signal payloads and handle.result() are typed without casts.
import {
  all,
  Client,
  child,
  defineActivity,
  defineQuery,
  defineSignal,
  defineWorkflow,
  race,
  SqliteBackend,
  sideEffect,
  sleep,
  type WorkflowHandle,
} from "spool";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";

const charge = defineActivity(
  {
    name: "payments.charge",
    input: z.object({ orderId: z.string(), amount: z.number().positive() }),
    output: z.object({ chargeId: z.string() }),
  },
  async ({ orderId, amount }, ctx) => {
    expectTypeOf(orderId).toEqualTypeOf<string>();
    expectTypeOf(amount).toEqualTypeOf<number>();
    expectTypeOf(ctx.attempt).toEqualTypeOf<number>();
    expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
    return { chargeId: `ch_${orderId}` };
  },
);
const count = defineActivity(
  { name: "count", input: z.object({ n: z.number().default(1) }), output: z.number() },
  async ({ n }) => n,
);
const approve = defineSignal("order.approve", z.object({ by: z.string() }));
const progress = defineQuery("order.progress", z.object({ stage: z.string() }));
const receipt = defineWorkflow(
  { name: "receipt", input: z.object({ chargeId: z.string() }), output: z.object({ url: z.string() }) },
  async function* ({ chargeId }) {
    return { url: chargeId };
  },
);

describe("workflow code", () => {
  it("types yield* results of every step", () => {
    defineWorkflow(
      { name: "order", input: z.object({ id: z.string() }), output: z.string() },
      async function* (input, ctx) {
        expectTypeOf(input).toEqualTypeOf<{ id: string }>();
        const charged = yield* charge({ orderId: input.id, amount: 1 });
        expectTypeOf(charged).toEqualTypeOf<{ chargeId: string }>();
        // Inputs accept the schema's input type (defaults optional).
        const n = yield* count({});
        expectTypeOf(n).toEqualTypeOf<number>();
        const decision = yield* approve.wait({ timeout: "1d" });
        expectTypeOf(decision).toEqualTypeOf<{ by: string } | undefined>();
        const certain = yield* approve.wait();
        expectTypeOf(certain).toEqualTypeOf<{ by: string }>();
        const slept = yield* sleep("1m");
        expectTypeOf(slept).toEqualTypeOf<void>();
        const tuple = yield* all([
          charge({ orderId: "a", amount: 1 }),
          count({ n: 2 }),
          (async function* () {
            yield* sleep(1);
            return "branch" as const;
          })(),
        ]);
        expectTypeOf(tuple).toEqualTypeOf<[{ chargeId: string }, number, "branch"]>();
        const first = yield* race([count({ n: 1 }), approve.wait()]);
        expectTypeOf(first).toEqualTypeOf<number | { by: string }>();
        const r = yield* child(receipt, { chargeId: charged.chargeId });
        expectTypeOf(r).toEqualTypeOf<{ url: string }>();
        const v = yield* sideEffect(() => 42);
        expectTypeOf(v).toEqualTypeOf<number>();
        ctx.onQuery(progress, () => ({ stage: "x" }));
        expectTypeOf(ctx.now()).toEqualTypeOf<Date>();
        return `${charged.chargeId}${decision?.by ?? ""}`;
      },
    );
  });

  it("rejects wrong inputs at compile time", () => {
    // @ts-expect-error amount must be a number
    charge({ orderId: "a", amount: "1" });
    // @ts-expect-error orderId is required
    charge({ amount: 1 });
  });
});

describe("client", () => {
  const order = defineWorkflow(
    { name: "order", input: z.object({ id: z.string(), total: z.number() }), output: z.string() },
    async function* () {
      return "x";
    },
  );

  it("types start input, result and signals", async () => {
    const client = new Client({ backend: new SqliteBackend({ path: ":memory:" }) });
    const handle = await client.start(order, { id: "o-1", total: 42 }, { id: "order-o-1" });
    expectTypeOf(handle).toEqualTypeOf<WorkflowHandle<typeof order>>();
    expectTypeOf(handle.result()).resolves.toEqualTypeOf<string>();
    expectTypeOf(handle.query(progress)).resolves.toEqualTypeOf<{ stage: string }>();
    await handle.signal(approve, { by: "ann" });
    // @ts-expect-error the payload must match the signal's schema
    await handle.signal(approve, { by: 1 });
    // @ts-expect-error total is required
    await client.start(order, { id: "o-2" });
  });
});
