// Guards against a retried side effect being applied twice: after a crash between an activity's side effect and the recording of its completion, the step runs again with the SAME idempotency key and its result is recorded once.
import { Client, SqliteBackend } from "spool";
import { afterAll, describe, expect, it } from "vitest";
import { quickFlow } from "./fixtures/workflows.ts";
import {
  allHistories,
  cleanScratch,
  executionFigures,
  expectIntact,
  readEffects,
  scratch,
  spawnWorker,
  stop,
} from "./harness.ts";

afterAll(cleanScratch);

describe("crash after the side effect, before the completion is recorded", () => {
  for (const point of ["activity.mid", "activity.before-complete"] as const) {
    it(`re-runs the step with the same idempotency key and records it once (kill at ${point})`, async () => {
      const { db, effects } = scratch();
      const backend = new SqliteBackend({ path: db });
      const client = new Client({ backend });
      try {
        const handles = [];
        for (let i = 0; i < 3; i++)
          handles.push(
            await client.start(quickFlow, { base: i + 1, steps: 3 }, { id: `idem-${point}-${i}` }),
          );
        // One activity at a time, so exactly one side effect is orphaned by the kill.
        const doomed = spawnWorker(db, effects, {
          SPOOL_FAULT_AT: point,
          SPOOL_FAULT_HIT: "2",
          SPOOL_MAX_ACTIVITIES: "1",
          SPOOL_EAGER: "0",
        });
        expect((await doomed.exit).signal).toBe("SIGKILL");
        const fault = readEffects(effects).find((l) => l.kind === "fault")!;
        const orphan = readEffects(effects)
          .filter((l) => l.kind === "effect" && l.pid === doomed.pid)
          .at(-1)!;
        expect(orphan.step, "the fault hit the step that just ran its side effect").toBe(fault.info?.step);

        const fresh = spawnWorker(db, effects);
        try {
          for (const [i, h] of handles.entries()) {
            expect(await h.result({ timeout: 20_000 })).toBe(
              [0, 1, 2].reduce((s, k) => s + (i + 1) * 1000 + k, 0),
            );
          }
        } finally {
          await stop(fresh);
        }

        // The provider's view: every execution of the orphaned step carried one key; one result recorded.
        const execs = readEffects(effects).filter(
          (l) => l.kind === "effect" && l.workflowId === orphan.workflowId && l.step === orphan.step,
        );
        expect(execs.length, "the step ran again after the crash").toBe(2);
        expect(new Set(execs.map((e) => e.key)).size, "with the same idempotency key").toBe(1);
        expect(execs[0]!.key).toBe(`${orphan.workflowId}/${orphan.step}`);
        expect(execs.map((e) => e.attempt)).toEqual([1, 2]);
        const histories = await allHistories(db);
        const run = [...histories.values()].find((h) => h.row.workflow_id === orphan.workflowId)!;
        const recorded = run.events.filter(
          (e) => e.type === "ActivityCompleted" && e.step === orphan.step,
        ) as { attempt: number }[];
        expect(
          recorded.map((e) => e.attempt),
          "its result recorded once, from the re-run",
        ).toEqual([2]);
        const figures = executionFigures(effects, histories, 1);
        expect(figures.extraPerFault).toEqual([1]);
        expectIntact(db);
      } finally {
        await backend.close();
      }
    }, 60_000);
  }
});
