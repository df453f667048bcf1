/**
 * Errors raised by @spool/testing. Each carries the structured report it prints, so tests can
 * assert on fields as well as on the message.
 */
import { SpoolError } from "@spool/core";
import type { DeterminismFailure } from "./determinism-report.ts";
import type { UpgradeReport } from "./upgrade-report.ts";

/**
 * `checkDeterminism` found hidden non-determinism (or could not exercise the workflow). The
 * message is the readable report; `failure` holds the same facts as data.
 *
 * @example
 * ```ts
 * try {
 *   await checkDeterminism(order);
 * } catch (err) {
 *   if (err instanceof DeterminismCheckError) console.log(err.failure.divergence?.seq, err.failure.seed);
 *   throw err;
 * }
 * ```
 */
export class DeterminismCheckError extends SpoolError {
  override name = "DeterminismCheckError";
  constructor(
    message: string,
    readonly failure: DeterminismFailure,
  ) {
    super(message);
  }
}

/**
 * `checkUpgrade` found changes that would break runs in flight. `report` lists them.
 *
 * @example
 * ```ts
 * const err = await checkUpgrade(orderV1, orderV2).catch((e: unknown) => e);
 * if (err instanceof UpgradeCheckError) console.log(err.report.findings.map((f) => f.kind));
 * ```
 */
export class UpgradeCheckError extends SpoolError {
  override name = "UpgradeCheckError";
  constructor(readonly report: UpgradeReport) {
    super(report.toString());
  }
}

/**
 * The test environment could not make progress: nothing happened for `stallTimeoutMs` of real
 * time while waiting, or an awaited run was parked as blocked. The message lists the open runs and
 * what each waits for.
 *
 * @example
 * ```ts
 * await expect(env.run(waitsForSignal, {})).rejects.toThrow(TestEnvError);
 * ```
 */
export class TestEnvError extends SpoolError {
  override name = "TestEnvError";
}

/** Re-exported from @spool/core, where history files live (the CLI reads them too). */
export { HistoryFileError } from "@spool/core";
