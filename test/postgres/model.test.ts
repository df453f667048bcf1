// Guards the backends against drifting from the contract under arbitrary interleavings of starts, signals, cancels, claims, commits, activity completions, timer sweeps, blocks and lease expiry: PostgreSQL and SQLite must both match one in-memory model.
import { SqliteBackend } from "@spool/sqlite";
import fc from "fast-check";
import { afterAll, describe, it } from "vitest";
import type { BackendHarness } from "../conformance/describe-backend.ts";
import { Check, commandsArbitrary, emptyModel, type Real } from "./backend-model.ts";
import { closeAdmin, openPg } from "./pg-harness.ts";

afterAll(closeAdmin);

async function runModel(makeHarness: () => Promise<BackendHarness>, numRuns: number, maxCommands: number) {
  await fc.assert(
    fc.asyncProperty(commandsArbitrary(maxCommands), async (cmds) => {
      const h = await makeHarness();
      await h.backend.init();
      const real: Real = { backend: h.backend, clock: h.clock, held: new Map(), heldActs: new Map() };
      const model = emptyModel();
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await new Check().run(model, real);
      } finally {
        await h.teardown();
      }
    }),
    { numRuns },
  );
}

describe("model-based: the backend matches an in-memory model", () => {
  it("PostgresBackend", async () => {
    await runModel(async () => openPg(), 60, 40);
  }, 60_000);

  it("SqliteBackend", async () => {
    await runModel(
      async () => {
        let t = 1_700_000_000_000;
        const backend = new SqliteBackend({ path: ":memory:", clock: () => t });
        return {
          backend,
          clock: {
            advance: (ms: number) => {
              t += ms;
            },
          },
          teardown: () => backend.close(),
        };
      },
      100,
      40,
    );
  }, 60_000);
});
