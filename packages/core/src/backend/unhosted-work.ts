/**
 * Which waiting work no live worker can run: ready tasks of a workflow or activity name that no
 * live worker registered. Such work waits for ever in silence unless someone says so — the worker
 * logs it, and an operator can ask the same question through the inspector.
 */
import type { BackendInspector, WaitingWork, WorkerInfo } from "./backend.ts";

/**
 * The waiting work whose name no live worker hosts. Pure: give it `inspect.waitingWork(...)` and
 * `inspect.workers()`.
 *
 * @example
 * ```ts
 * const stuck = unhostedWork(
 *   await backend.inspect.waitingWork(backend.now() - 30_000),
 *   await backend.inspect.workers(),
 * );
 * ```
 */
export function unhostedWork(waiting: readonly WaitingWork[], workers: readonly WorkerInfo[]): WaitingWork[] {
  const hosted = new Set<string>();
  for (const w of workers) {
    if (w.status !== "live") continue;
    for (const n of w.workflowNames) hosted.add(`workflow:${n}`);
    for (const n of w.activityNames) hosted.add(`activity:${n}`);
  }
  return waiting.filter((w) => !hosted.has(`${w.kind}:${w.name}`));
}

/** {@link unhostedWork} read from an inspector: work ready since before `readyBefore` that no live worker hosts. */
export async function findUnhostedWork(
  inspect: BackendInspector,
  readyBefore: number,
): Promise<WaitingWork[]> {
  const [waiting, workers] = await Promise.all([inspect.waitingWork(readyBefore), inspect.workers()]);
  return unhostedWork(waiting, workers);
}
