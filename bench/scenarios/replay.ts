/**
 * Scenario 5 — replay cost. The pure engine (`replay()` from @spool/core, a WorkflowExecutor
 * underneath) replays complete histories of 100, 1,000 and 10,000 events of the no-op-step
 * workflow: µs per event at each size, so linear growth shows as a flat per-event cost. Then a
 * 10,000-event history is loaded from SQLite (`SqliteBackend.getHistory`, checksums verified),
 * decoded (`decodeHistory`: msgpack + the event schema) and replayed: what a worker pays to
 * rebuild an evicted run of that length.
 *
 * Histories are recorded by driving a WorkflowExecutor live (the way a worker records them), not
 * written by hand. The SQLite copy is stored through the Backend API in one activation; a new
 * connection is opened for every round, so SQLite's page cache starts cold (the OS cache is warm).
 */
import {
  DataConverter,
  decodeHistory,
  encodeEvent,
  type HistoryEvent,
  type NewInboundEvent,
  replay,
  WorkflowExecutor,
} from "@spool/core";
import { SqliteBackend } from "@spool/sqlite";
import { Client } from "spool";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { tempDb } from "../lib/temp-db.ts";
import { stepsWorkflow } from "../lib/workflows.ts";

const T0 = 1_700_000_000_000;

/** Records a complete history of exactly `events` events (even, ≥ 4) of the steps workflow. */
export async function recordHistory(
  events: number,
): Promise<{ history: HistoryEvent[]; input: { steps: number } }> {
  const steps = (events - 2) / 2; // WorkflowStarted + steps × (Scheduled, Completed) + WorkflowCompleted
  const input = { steps };
  const started: HistoryEvent = {
    type: "WorkflowStarted",
    seq: 1,
    ts: T0,
    workflowName: stepsWorkflow.name,
    input,
  };
  const ex = new WorkflowExecutor(stepsWorkflow, { workflowId: "bench-replay", runId: "bench-replay" });
  await ex.replayHistory([started]);
  const history: HistoryEvent[] = [started, ...ex.takeNewEvents()];
  for (let i = 0; i < steps; i++) {
    const ts = T0 + i + 1;
    const completed: NewInboundEvent = {
      type: "ActivityCompleted",
      step: i + 1,
      ts,
      result: { ok: true, i },
      attempt: 1,
    };
    await ex.apply([completed], ts);
    history.push(...ex.takeNewEvents());
  }
  return { history, input };
}

/** Times `reps` replays of `history`; returns µs per event and the last status. */
async function timeReplay(
  history: HistoryEvent[],
  input: unknown,
  reps: number,
): Promise<{ usPerEvent: number; msPerReplay: number; status: string }> {
  let status = "";
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    const res = await replay(stepsWorkflow, input, history);
    status = res.status;
  }
  const ms = performance.now() - t0;
  return { usPerEvent: (ms * 1000) / (reps * history.length), msPerReplay: ms / reps, status };
}

/** Stores `history` as one run in a fresh SQLite file; returns the path, run id and a remover. */
async function storeInSqlite(history: HistoryEvent[], input: { steps: number }) {
  const tmp = tempDb("replay");
  const backend = new SqliteBackend({ path: tmp.path, durability: "normal" });
  try {
    const client = new Client({ backend });
    const handle = await client.start(stepsWorkflow, input, { id: "replay-10k" });
    const runId = (await handle.describe()).runId;
    const task = await backend.claimWorkflowTask({
      workerId: "bench",
      workflowNames: [stepsWorkflow.name],
      leaseMs: 60_000,
    });
    if (!task) throw new Error("the stored run's workflow task could not be claimed");
    const dc = new DataConverter();
    const events = await Promise.all(history.slice(1).map((e) => encodeEvent(e, dc)));
    const last = history[history.length - 1] as HistoryEvent;
    await backend.commitActivation({
      runId,
      fence: task.fence,
      expectedLastSeq: 1,
      events,
      consumedInbox: [],
      activities: [],
      cancelActivities: [],
      timers: [],
      cancelTimers: [],
      children: [],
      cancelChildren: [],
      close: {
        status: "completed",
        result: dc.encodeSync(last.type === "WorkflowCompleted" ? last.result : null, "result"),
      },
    });
    return { path: tmp.path, runId, remove: tmp.remove };
  } finally {
    await backend.close();
  }
}

async function run(ctx: ScenarioContext): Promise<void> {
  const sizes = [100, 1000, 10_000];
  const eventsPerRound = ctx.options.quick ? 50_000 : 400_000;
  ctx.setting("history sizes", sizes);
  ctx.setting(
    "workflow",
    "bench.steps: WorkflowStarted, n × (ActivityScheduled, ActivityCompleted), WorkflowCompleted",
  );
  ctx.setting("events replayed per size per round", eventsPerRound);

  const recorded = new Map<number, Awaited<ReturnType<typeof recordHistory>>>();
  for (const n of sizes) recorded.set(n, await recordHistory(n));

  // Warm-up: JIT the engine on every size once.
  for (const n of sizes) {
    const r = recorded.get(n)!;
    await timeReplay(r.history, r.input, Math.max(1, Math.ceil(eventsPerRound / 10 / n)));
  }
  const perEvent = new Map<number, number>(); // this round's µs/event by size
  for (let round = 1; round <= ctx.options.rounds; round++) {
    for (const n of sizes) {
      const r = recorded.get(n)!;
      const reps = Math.max(3, Math.ceil(eventsPerRound / n));
      const t = await timeReplay(r.history, r.input, reps);
      if (t.status !== "completed") ctx.note(`replay of ${n} events ended with status ${t.status}`);
      ctx.sample(`engine replay, ${n.toLocaleString("en-US")} events`, "µs/event", t.usPerEvent, {
        better: "lower",
      });
      if (n === 10_000)
        ctx.sample("engine replay, 10,000 events (total)", "ms", t.msPerReplay, { better: "lower" });
      perEvent.set(n, t.usPerEvent);
    }
    const small = perEvent.get(100) ?? Number.NaN;
    const large = perEvent.get(10_000) ?? Number.NaN;
    ctx.sample("per-event cost ratio 10,000 vs 100 (1 = linear)", "×", large / small, { better: "lower" });
  }

  // From SQLite: load, decode, replay.
  const big = recorded.get(10_000)!;
  const stored = await storeInSqlite(big.history, big.input);
  try {
    const dc = new DataConverter();
    for (let round = 0; round <= ctx.options.rounds; round++) {
      const backend = new SqliteBackend({ path: stored.path, durability: "full" });
      try {
        const t0 = performance.now();
        const raws = await backend.getHistory(stored.runId);
        const t1 = performance.now();
        const events = await decodeHistory(raws, dc, stored.runId);
        const t2 = performance.now();
        const res = await replay(
          stepsWorkflow,
          events[0]?.type === "WorkflowStarted" ? events[0].input : big.input,
          events,
        );
        const t3 = performance.now();
        if (round === 0) continue; // warm-up
        if (res.status !== "completed" || raws.length !== 10_000) {
          ctx.note(`SQLite round ${round}: ${raws.length} events loaded, replay status ${res.status}`);
        }
        ctx.sample("10,000 events from SQLite: load (getHistory)", "ms", t1 - t0, { better: "lower" });
        ctx.sample("10,000 events from SQLite: decode (decodeHistory)", "ms", t2 - t1, { better: "lower" });
        ctx.sample("10,000 events from SQLite: replay", "ms", t3 - t2, { better: "lower" });
        ctx.sample("10,000 events from SQLite: total", "ms", t3 - t0, { better: "lower" });
      } finally {
        await backend.close();
      }
    }
  } finally {
    stored.remove();
  }
}

const scenario: Scenario = {
  name: "replay",
  title: "Replay cost: pure engine and from SQLite",
  run,
};
export default scenario;
