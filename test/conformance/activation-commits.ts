// Guards activation commits: lost or overwritten history, two winners from one sequence number, writes that were meant to be refused.
/**
 * The conformance suite's part on `commitActivation`: events appended verbatim, the optimistic
 * sequence guard, and the validation that refuses a commit without writing anything.
 */
import { type ActivationCommit, type Backend, ConflictError, InternalContractError } from "@spool/core";
import { beforeEach, describe, expect, it } from "vitest";
import { commitOf } from "./commits.ts";
import { bytes, type ConformanceHarness } from "./harness.ts";

/** Registers the conformance tests of "commitActivation" on the harness's store. */
export function commitActivationTests(harness: ConformanceHarness): void {
  const { start, claimOrFail, positioned, activate, commitUnfenced, scheduled, rejection } = harness;
  let backend: Backend;
  describe("commitActivation", () => {
    beforeEach(() => {
      ({ backend } = harness.current());
    });

    it("appends events verbatim and getHistory returns them after afterSeq", async () => {
      const { runId } = await start("order-1");
      const task = await claimOrFail();
      const res = await activate(task, {
        append: [
          { type: "SideEffect", step: 1, body: bytes(1) },
          { type: "TimerStarted", step: 2, body: new Uint8Array(0) },
          { type: "PatchMarker", step: null, body: bytes(255, 0, 128) },
        ],
      });
      expect(res).toEqual({ lastSeq: 4, claimedActivities: [], createdRuns: [] });
      const tail = await backend.getHistory(runId, 2);
      expect(tail.map((e) => [e.seq, e.type, e.step, Array.from(e.body ?? [])])).toEqual([
        [3, "TimerStarted", 2, []],
        [4, "PatchMarker", null, [255, 0, 128]],
      ]);
      expect(tail[0]!.body).not.toBeNull(); // an empty body is not a missing body
      expect(await backend.inspect.getHistory(runId)).toEqual(await backend.getHistory(runId));
      expect((await backend.inspect.getRun(runId))?.lastSeq).toBe(4);
    });

    it("of two commits from the same expectedLastSeq exactly one wins", async () => {
      const { runId } = await start("order-1");
      const task = await claimOrFail();
      const sideEffect = (b: number): ActivationCommit => ({
        ...commitOf(runId, 1),
        events: positioned(1, [{ type: "SideEffect", step: 1, body: bytes(b) }]),
      });
      // Two holders of the same claim and one eager (unfenced) commit, all from seq 1.
      const outcomes = await Promise.allSettled([
        backend.commitActivation({ ...sideEffect(1), fence: task.fence }),
        backend.commitActivation({ ...sideEffect(2), fence: task.fence }),
        backend.commitActivation(sideEffect(3)),
      ]);
      const won = outcomes.filter((o) => o.status === "fulfilled");
      expect(won).toHaveLength(1);
      for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toBeInstanceOf(ConflictError);
      const history = await backend.getHistory(runId);
      expect(history).toHaveLength(2);
      const winner = outcomes.findIndex((o) => o.status === "fulfilled");
      expect(Array.from(history[1]!.body!)).toEqual([winner + 1]);
    });

    it("a loser that read the same seq cannot overwrite the winner's history", async () => {
      const { runId } = await start("order-1");
      const task = await claimOrFail();
      await activate(task, { append: [{ type: "SideEffect", step: 1, body: bytes(1) }] });
      const err = await rejection(
        activate(task, { append: [{ type: "SideEffect", step: 1, body: bytes(2) }] }),
      );
      expect(err).toBeInstanceOf(ConflictError);
      expect((err as Error).message).toMatch(/seq/);
      expect(Array.from((await backend.getHistory(runId))[1]!.body!)).toEqual([1]);
    });

    it("rejects events that are not contiguous after expectedLastSeq, writing nothing", async () => {
      const { runId } = await start("order-1");
      const task = await claimOrFail();
      const err = await rejection(
        backend.commitActivation({
          ...commitOf(runId, 1),
          fence: task.fence,
          events: [{ seq: 3, ts: backend.now(), type: "SideEffect", step: 1, body: bytes(1) }],
        }),
      );
      expect(InternalContractError.is(err)).toBe(true);
      expect((err as Error).message).toMatch(/event 0 has seq 3, expected 2/);
      expect(await backend.getHistory(runId)).toHaveLength(1);
    });

    it("rejects inbox ids that are not in the run's inbox, writing nothing", async () => {
      const { runId } = await start("order-1");
      const other = await start("order-2");
      await backend.signalWorkflow({ workflowId: "order-2", body: bytes(1) });
      const [foreign] = await backend.getInbox(other.runId);
      const task = await claimOrFail();
      expect(task.run.runId).toBe(runId);
      for (const id of [foreign!.id, 987_654_321]) {
        const err = await rejection(
          activate(task, {
            append: [{ type: "SignalReceived", step: null, body: bytes(1) }],
            consumedInbox: [id],
          }),
        );
        expect(err).toBeInstanceOf(ConflictError);
      }
      expect(await backend.getHistory(runId)).toHaveLength(1);
      expect(await backend.getInbox(other.runId)).toHaveLength(1);
    });

    it("rejects a commit to a closed run", async () => {
      const { runId } = await start("order-1");
      const task = await claimOrFail();
      await activate(task, { close: { status: "failed", error: bytes(6) } });
      expect(await rejection(commitUnfenced(runId, { append: [scheduled(1)] }))).toBeInstanceOf(
        ConflictError,
      );
      expect(await rejection(activate(task, { append: [scheduled(1)] }))).toBeInstanceOf(ConflictError);
    });
  });
}
