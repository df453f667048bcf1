// Guards acknowledged signals against being lost or unseen: a signal that lands while the run is completing is delivered to the code first, and a query after an acknowledged signal sees it — on SQLite and PostgreSQL, through a real worker.
import { CLOSING_EVENT_TYPES, isInbound } from "@spool/core";
import {
  Client,
  defineActivity,
  defineQuery,
  defineSignal,
  defineWorkflow,
  silentLogger,
  Worker,
  type WorkerOptions,
} from "spool";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { closeStoresAfterAll, openStore, STORES } from "./support.ts";

const add = defineSignal("items.add", z.object({ item: z.string() }));
const itemsQuery = defineQuery("items", z.array(z.string()));
const fetchItems = defineActivity(
  { name: "items.fetch", input: z.null(), output: z.array(z.string()) },
  async () => ["first"],
);

/** Fetches, then drains every buffered signal (zero-timeout waits) before returning. */
const drainer = defineWorkflow(
  { name: "items.drainer", input: z.null(), output: z.array(z.string()) },
  async function* () {
    const got = [...(yield* fetchItems(null))];
    for (;;) {
      const s = yield* add.wait({ timeout: "0s" });
      if (!s) return got;
      got.push(s.item);
    }
  },
);

/** Collects signals until told to stop; answers `items` from its state. */
const collector = defineWorkflow(
  { name: "items.collector", input: z.null(), output: z.array(z.string()), signals: [add] },
  async function* (_input, ctx) {
    const got: string[] = [];
    ctx.onQuery(itemsQuery, () => got);
    for (;;) {
      const s = yield* add.wait();
      if (s.item === "stop") return got;
      got.push(s.item);
    }
  },
);

type Store = Awaited<ReturnType<typeof openStore>>;

closeStoresAfterAll();

async function run(store: Store, opts: Partial<WorkerOptions>) {
  const worker = new Worker({
    logger: silentLogger,
    pollIntervalMs: { min: 5, max: 50 },
    workflows: [drainer, collector],
    activities: [fetchItems],
    ...opts,
    backend: store.backend,
  });
  await worker.start();
  const client = new Client({ backend: store.backend, workflows: [drainer, collector] });
  return { worker, client };
}

describe.each(STORES)("inbox events are seen by the code (%s)", (kind) => {
  const open = () => openStore(kind);
  it("a signal acknowledged while the closing activation commits is delivered before the run ends", async () => {
    const store = await open();
    let client: Client | undefined;
    let sent = false;
    const { worker, client: c } = await run(store, {
      faultHook: async (point, info) => {
        // Between the claim and the commit of the activation that would end the run: the
        // backend refuses that commit, and the redone activation carries the signal.
        if (point !== "workflow.before-commit" || info.closing !== true || sent || !client) return;
        sent = true;
        await client.getHandle("drain-1").signal(add, { item: "late" });
      },
    });
    client = c;
    try {
      const handle = await c.start(drainer, null, { id: "drain-1" });
      expect(await handle.result()).toEqual(["first", "late"]);
      expect(sent).toBe(true);
      const history = await handle.history();
      const end = history.findIndex((e) => CLOSING_EVENT_TYPES.has(e.type));
      expect(history.slice(end + 1).filter(isInbound)).toEqual([]);
    } finally {
      await worker.shutdown();
      await store.close();
    }
  });

  it("a query that starts after an acknowledged signal sees it", async () => {
    const store = await open();
    const { worker, client } = await run(store, {});
    try {
      const handle = await client.start(collector, null, { id: "collect-1" });
      for (let i = 0; i < 20; i++) {
        await handle.signal(add, { item: `s${i}` });
        const seen = await handle.query(itemsQuery);
        expect(seen).toEqual(Array.from({ length: i + 1 }, (_, k) => `s${k}`));
      }
      await handle.signal(add, { item: "stop" });
      expect(await handle.result()).toHaveLength(20);
    } finally {
      await worker.shutdown();
      await store.close();
    }
  });

  it("a payload the workflow's schema refuses is recorded as rejected, and the run goes on", async () => {
    const store = await open();
    const { worker, client } = await run(store, {});
    // A sender holding a looser definition of the same name and no workflow code (as `spool signal`
    // without --module): nothing on its side can check the payload.
    const loose = defineSignal("items.add", z.unknown());
    const blind = new Client({ backend: store.backend });
    try {
      const handle = await client.start(collector, null, { id: "collect-3" });
      await blind.getHandle("collect-3").signal(loose, { wrong: 1 });
      await blind.getHandle("collect-3").signal(defineSignal("items.nope", z.unknown()), { item: "x" });
      // A client that has the workflow's code refuses the same payload before anything is written.
      await expect(client.getHandle("collect-3").signal(loose, { wrong: 1 })).rejects.toThrow(
        /payload of signal "items.add" \(as workflow "items.collector" declares it\)/,
      );
      await handle.signal(add, { item: "ok" });
      await handle.signal(add, { item: "stop" });
      expect(await handle.result()).toEqual(["ok"]);
      const rejected = (await handle.history()).filter((e) => e.type === "SignalRejected");
      expect(rejected.map((e) => [e.name, e.payload])).toEqual([
        ["items.add", { wrong: 1 }],
        ["items.nope", { item: "x" }],
      ]);
      expect(rejected[0]?.reason).toMatch(/payload of signal "items.add" does not match its schema: item:/);
      expect(rejected[1]?.reason).toMatch(/does not declare signal "items.nope"/);
    } finally {
      await worker.shutdown();
      await store.close();
    }
  });

  it("a client without a worker in its process answers with the inbox applied too", async () => {
    const store = await open();
    const client = new Client({ backend: store.backend, workflows: [collector] });
    try {
      // No worker at all: every signal still waits in the inbox.
      const handle = await client.start(collector, null, { id: "collect-2" });
      await handle.signal(add, { item: "a" });
      await handle.signal(add, { item: "b" });
      expect(await handle.query(itemsQuery)).toEqual(["a", "b"]);
      // The query wrote nothing: the run has only its start recorded, the signals still wait.
      expect((await handle.history()).map((e) => e.type)).toEqual(["WorkflowStarted"]);
    } finally {
      await store.close();
    }
  });
});
