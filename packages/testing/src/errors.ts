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

/** `checkUpgrade` found changes that would break runs in flight. `report` lists them. */
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
 */
export class TestEnvError extends SpoolError {
  override name = "TestEnvError";
}

/** A history file could not be read: wrong format, version, or an event that fails its schema. */
export class HistoryFileError extends SpoolError {
  override name = "HistoryFileError";
}
