// Guards horizontal scale-out on PostgreSQL against lost or duplicated work: four real worker processes, SIGKILLed and restarted at random, must complete every run exactly once with gapless histories.
import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import { PostgresBackend } from "@spool/postgres";
import { Client } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { tenSteps, tenStepsResult } from "./fixtures/workflows.ts";
import { adminPool, closeAdmin, dropSchema, freshSchema, PG_URL } from "./pg-harness.ts";

const SOAK = process.env.SPOOL_SOAK === "1";
/** Runs of the ten-step workflow: 300 by default, 2,000 with SPOOL_SOAK=1. */
const RUNS = SOAK ? 2_000 : 300;
const WORKERS = 4;
const fixture = join(import.meta.dirname, "fixtures", "pg-worker.ts");

afterAll(closeAdmin);

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("scale-out on PostgreSQL", () => {
  it(
    `${WORKERS} worker processes complete ${RUNS} ten-step runs exactly once while being SIGKILLed`,
    async () => {
      const schema = freshSchema("scale");
      const backend = new PostgresBackend({ connectionString: PG_URL, schema, poolSize: 4 });
      await backend.init();
      const client = new Client({ backend });
      const startedAt = Date.now();
      try {
        for (let i = 0; i < RUNS; i += 50) {
          await Promise.all(
            Array.from({ length: Math.min(50, RUNS - i) }, (_, k) =>
              client.start(tenSteps, { base: i + k }, { id: `scale-${i + k}` }),
            ),
          );
        }

        let generation = 0;
        const spawn = (slot: number) =>
          fork(fixture, [PG_URL, schema, `w${slot}-${generation++}`], {
            execArgv: ["--import", "tsx"],
            stdio: ["ignore", "ignore", "inherit", "ipc"],
          });
        const workers: ChildProcess[] = Array.from({ length: WORKERS }, (_, slot) => spawn(slot));

        // Chaos: every 0.3-1.2 s one worker dies (SIGKILL: no drain, leases left behind, possibly
        // mid-transaction) and a fresh process takes its slot, until every run has completed. A
        // kill waits for progress since the previous one: on a loaded machine a fresh process
        // takes seconds to start, and killing on a fixed beat would kill faster than workers come
        // up. The test fails on a stall (no run completing for a minute), not on a total time.
        let kills = 0;
        let done = 0;
        let doneAtLastKill = -1;
        let lastProgress = Date.now();
        const stallMs = SOAK ? 300_000 : 60_000;
        try {
          while (done < RUNS) {
            await sleep(300 + Math.random() * 900);
            const stats = await backend.inspect.stats();
            const now = stats.runsByStatus.completed ?? 0;
            if (now > done) lastProgress = Date.now();
            done = now;
            if (done >= RUNS) break;
            if (Date.now() - lastProgress > stallMs)
              throw new Error(`no run completed for ${stallMs / 1000} s: ${done}/${RUNS} done`);
            if (done === doneAtLastKill) continue;
            doneAtLastKill = done;
            const slot = Math.floor(Math.random() * WORKERS);
            const victim = workers[slot]!;
            victim.kill("SIGKILL");
            await exited(victim);
            kills++;
            workers[slot] = spawn(slot);
          }
        } finally {
          // Done: a clean stop (SIGTERM drains). Failed: never leave worker processes behind.
          const signal = done >= RUNS ? "SIGTERM" : "SIGKILL";
          for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill(signal);
        }
        const elapsed = Date.now() - startedAt;
        await Promise.all(workers.map(exited));

        // Every run completed, with the right result.
        const stats = await backend.inspect.stats();
        expect(stats.runsByStatus).toEqual({ completed: RUNS });
        expect(kills).toBeGreaterThan(0);
        const S = `"${schema}"`;
        const sql = async (text: string) => (await adminPool().query(text)).rows;

        // Histories are gapless: seq runs 1..last_seq for every run.
        expect(
          await sql(
            `SELECT r.run_id FROM ${S}.runs r JOIN ${S}.history h USING (run_id) GROUP BY r.run_id, r.last_seq
             HAVING count(*) <> r.last_seq OR min(h.seq) <> 1 OR max(h.seq) <> r.last_seq`,
          ),
        ).toEqual([]);
        // Nothing recorded twice: no (type, step) pair appears twice in a run's history, and each
        // run scheduled and completed exactly ten steps.
        expect(
          await sql(
            `SELECT run_id, type, step, count(*) FROM ${S}.history WHERE step IS NOT NULL
             GROUP BY run_id, type, step HAVING count(*) > 1`,
          ),
        ).toEqual([]);
        expect(
          await sql(
            `SELECT run_id FROM ${S}.history GROUP BY run_id
             HAVING count(*) FILTER (WHERE type = 'ActivityCompleted') <> 10
                 OR count(*) FILTER (WHERE type = 'ActivityScheduled') <> 10`,
          ),
        ).toEqual([]);
        // Queues are empty: finished work was removed.
        expect(
          await sql(
            `SELECT (SELECT count(*) FROM ${S}.workflow_tasks) AS wf, (SELECT count(*) FROM ${S}.activity_tasks) AS act,
                    (SELECT count(*) FROM ${S}.timers) AS timers, (SELECT count(*) FROM ${S}.inbox) AS inbox`,
          ),
        ).toEqual([{ wf: "0", act: "0", timers: "0", inbox: "0" }]);
        // Results are right, and every stored event passes its checksum.
        for (let i = 0; i < RUNS; i++) {
          const handle = client.getHandle<typeof tenSteps>(`scale-${i}`);
          expect(await handle.result()).toBe(tenStepsResult(i));
        }
        const runs = await sql(`SELECT run_id FROM ${S}.runs`);
        for (const { run_id } of runs) expect(await backend.getHistory(run_id)).toHaveLength(22);

        console.log(
          `[scale-out] ${RUNS} runs x 10 steps, ${WORKERS} worker processes, ${kills} SIGKILLs: ` +
            `${(elapsed / 1000).toFixed(1)} s (${Math.round((RUNS * 10) / (elapsed / 1000))} steps/s)`,
        );
      } finally {
        await backend.close();
        await dropSchema(schema);
      }
    },
    // A last-resort bound; the loop above fails first on a stall.
    SOAK ? 900_000 : 300_000,
  );
});
