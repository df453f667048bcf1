/**
 * A state machine driven by signals: an order's lifecycle (created → paid → shipped → delivered,
 * or cancelled before shipping). Each signal is an event; the workflow applies the transition
 * table, ignores (and counts) events that are not allowed in the current state, runs the side
 * effect of each transition as an activity, and answers "what state are you in?" by query.
 * Long-lived entity workflows like this one continue as new to keep their history short.
 */
import { continueAsNew, defineActivity, defineQuery, defineSignal, defineWorkflow } from "spool";
import { z } from "zod";

export const States = ["created", "paid", "shipped", "delivered", "cancelled"] as const;
export type State = (typeof States)[number];
export const Events = ["pay", "ship", "deliver", "cancel"] as const;
export type OrderEvent = (typeof Events)[number];

/** The transition table: state → event → next state. */
export const transitions: Record<State, Partial<Record<OrderEvent, State>>> = {
  created: { pay: "paid", cancel: "cancelled" },
  paid: { ship: "shipped", cancel: "cancelled" },
  shipped: { deliver: "delivered" },
  delivered: {},
  cancelled: {},
};
const final = new Set<State>(["delivered", "cancelled"]);

export const orderEvent = defineSignal("fsm.event", z.object({ event: z.enum(Events), by: z.string() }));
export const currentState = defineQuery(
  "fsm.state",
  z.object({ state: z.enum(States), ignored: z.number(), transitions: z.number() }),
);

export const notify = defineActivity(
  {
    name: "fsm.notify",
    input: z.object({ orderId: z.string(), from: z.enum(States), to: z.enum(States), by: z.string() }),
    output: z.object({}),
  },
  async ({ orderId, from, to, by }) => {
    console.log(`  ${orderId}: ${from} → ${to} (by ${by})`);
    return {};
  },
);

const carried = z.object({
  orderId: z.string(),
  state: z.enum(States).default("created"),
  ignored: z.number().default(0),
  transitions: z.number().default(0),
  /** Continue as new after this many transitions in one run. */
  maxTransitionsPerRun: z.number().int().positive().default(100),
});

export const orderLifecycle = defineWorkflow(
  {
    name: "fsm.orderLifecycle",
    input: carried,
    output: z.object({ state: z.enum(States), ignored: z.number(), transitions: z.number() }),
    signals: [orderEvent],
  },
  async function* (input, ctx) {
    let { state, ignored, transitions: count } = input;
    let inThisRun = 0;
    ctx.onQuery(currentState, () => ({ state, ignored, transitions: count }));
    while (!final.has(state)) {
      const { event, by } = yield* orderEvent.wait();
      const next = transitions[state][event];
      if (!next) {
        ignored++;
        ctx.log.warn("event not allowed in this state; ignored", { state, event });
        continue;
      }
      yield* notify({ orderId: input.orderId, from: state, to: next, by });
      state = next;
      count++;
      if (++inThisRun >= input.maxTransitionsPerRun && !final.has(state)) {
        yield* continueAsNew({ ...input, state, ignored, transitions: count });
      }
    }
    return { state, ignored, transitions: count };
  },
);
