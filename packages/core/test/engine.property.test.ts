// Guards replay determinism under any completion order: record → replay is identical, and replaying any prefix yields the next recorded command (the bug class of temporalio/sdk-typescript#1744).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  all,
  defineActivity,
  defineSignal,
  defineWorkflow,
  type HistoryEvent,
  historyOf,
  isInbound,
  type NewInboundEvent,
  race,
  replay,
  serializeError,
  sleep,
  WorkflowExecutor,
} from "../src/index.ts";

const work = defineActivity(
  { name: "work", input: z.object({ branch: z.number(), i: z.number() }), output: z.number() },
  async ({ i }) => i,
);
const poke = defineSignal("poke", z.object({ n: z.number() }));

/** A workflow with concurrent multi-step branches, a race against a timer, and signals. */
const fanout = defineWorkflow(
  {
    name: "fanout",
    input: z.object({ branches: z.number(), steps: z.number() }),
    output: z.array(z.number()),
  },
  async function* ({ branches, steps }) {
    const results = yield* all(
      Array.from({ length: branches }, (_, branch) =>
        (async function* () {
          let sum = 0;
          for (let i = 0; i < steps; i++) {
            try {
              sum += yield* work({ branch, i });
            } catch {
              sum -= 100;
            }
          }
          return sum;
        })(),
      ),
    );
    const raced = yield* race([poke.wait(), sleep("1h")]);
    return [...results, raced ? raced.n : -1];
  },
);

/** Drives a run to completion, choosing which pending event happens next from `picks`. */
async function drive(input: { branches: number; steps: number }, picks: number[], failures: boolean[]) {
  const ex = new WorkflowExecutor(fanout, { workflowId: "w", runId: "r" });
  const history = historyOf("fanout", input).build();
  await ex.replayHistory(history);
  history.push(...ex.takeNewEvents());
  let ts = 1;
  let pi = 0;
  for (let guard = 0; guard < 1000 && ex.status === "running"; guard++) {
    const done = new Set(
      history.filter((e) => isInbound(e) && "step" in e).map((e) => (e as { step: number }).step),
    );
    const closed = new Set(
      history.filter((e) => e.type.endsWith("Cancelled")).map((e) => (e as { step: number }).step),
    );
    const pending = history.filter(
      (e) =>
        (e.type === "ActivityScheduled" || e.type === "TimerStarted") &&
        !done.has(e.step) &&
        !closed.has(e.step),
    ) as Extract<HistoryEvent, { type: "ActivityScheduled" | "TimerStarted" }>[];
    const choices: NewInboundEvent[] = pending.map((p) => {
      ts++;
      if (p.type === "TimerStarted") return { type: "TimerFired", step: p.step, ts };
      const fail = failures[p.step % failures.length] ?? false;
      return fail
        ? {
            type: "ActivityFailed",
            step: p.step,
            ts,
            attempt: 1,
            reason: "non-retryable",
            error: serializeError(new Error("x")),
          }
        : { type: "ActivityCompleted", step: p.step, ts, result: p.step, attempt: 1 };
    });
    // At most two signals, so a run cannot be starved by an endless stream of them.
    if (history.filter((e) => e.type === "SignalReceived").length < 2 || choices.length === 0) {
      choices.push({ type: "SignalReceived", name: "poke", payload: { n: ts }, ts: ++ts });
    }
    const pick = choices[(picks[pi++ % Math.max(1, picks.length)] ?? 0) % choices.length] as NewInboundEvent;
    await ex.apply([pick]);
    history.push(...ex.takeNewEvents());
  }
  return { history, result: ex.result, status: ex.status };
}

describe("replay determinism (property)", () => {
  it("record → replay from scratch gives the same result and no new commands, for any completion order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ branches: fc.integer({ min: 1, max: 4 }), steps: fc.integer({ min: 1, max: 3 }) }),
        fc.array(fc.nat(50), { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        async (input, picks, failures) => {
          const run = await drive(input, picks, failures);
          expect(run.status).toBe("completed");
          const again = await replay(fanout, undefined, run.history, { workflowId: "w", runId: "r" });
          expect(again.newEvents).toEqual([]);
          expect(again.result).toEqual(run.result);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("replaying any prefix (a crash there) produces exactly the recorded continuation", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ branches: fc.integer({ min: 1, max: 3 }), steps: fc.integer({ min: 1, max: 3 }) }),
        fc.array(fc.nat(50), { minLength: 1, maxLength: 30 }),
        async (input, picks) => {
          const { history } = await drive(input, picks, [false]);
          // Activation boundaries: right before each inbound event, and the end.
          const cuts = history.map((e, i) => (isInbound(e) ? i : -1)).filter((i) => i > 0);
          for (const cut of cuts) {
            const prefix = history.slice(0, cut);
            const rest = history.slice(cut);
            const ex = new WorkflowExecutor(fanout, { workflowId: "w", runId: "r" });
            await ex.replayHistory(prefix);
            expect(ex.takeNewEvents()).toEqual([]);
            const produced: HistoryEvent[] = [];
            for (const e of rest) {
              if (!isInbound(e)) continue;
              const { seq: _seq, ...inbound } = e;
              await ex.apply([inbound as NewInboundEvent]);
              produced.push(...ex.takeNewEvents());
            }
            expect(produced).toEqual(rest);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
