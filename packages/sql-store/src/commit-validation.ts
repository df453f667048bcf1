/**
 * The shape checks an activation commit must pass before a SQL backend writes any of it. They
 * catch worker bugs (not user input) before they become stored history, and were written once per
 * backend until the copies drifted (only one checked timestamps).
 */
import { type ActivationCommit, InternalContractError } from "@spool/core";

/**
 * Checks a commit's events are contiguous from `expectedLastSeq + 1`, have byte bodies, integer
 * steps and finite timestamps, and that a continue-as-new close says where to continue.
 * @throws InternalContractError naming the run, the event and what is wrong (a bug in the worker, or in
 *   code that drives the backend directly).
 */
export function validateCommit(req: ActivationCommit): void {
  const bad = (what: string) => new InternalContractError(`commitActivation for run ${req.runId}: ${what}`);
  for (let i = 0; i < req.events.length; i++) {
    const e = req.events[i]!;
    const expected = req.expectedLastSeq + 1 + i;
    if (e.seq !== expected)
      throw bad(`event ${i} has seq ${e.seq}, expected ${expected} (events must be contiguous)`);
    if (e.body !== null && !(e.body instanceof Uint8Array)) throw bad(`event #${e.seq} body is not bytes`);
    if (e.step !== null && !Number.isInteger(e.step)) throw bad(`event #${e.seq} step is not an integer`);
    if (!Number.isFinite(e.ts)) throw bad(`event #${e.seq} timestamp is not a number`);
  }
  const close = req.close;
  if (close !== undefined && (close.status === "continued") !== (close.continueAsNew !== undefined)) {
    throw bad('close.continueAsNew must be given exactly when close.status is "continued"');
  }
}
