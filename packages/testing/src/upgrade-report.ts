/**
 * The words of `checkUpgrade`: each change between two versions of a workflow that would break
 * runs in flight, classified (added, removed, reordered, renamed step, changed input), with the
 * first in-flight state it breaks, an example world, and the `patched()` guard that fixes it.
 */
import type { HistoryEvent } from "@spool/core";
import { formatScript } from "./determinism-report.ts";
import type { World } from "./world.ts";
import type { ScriptLine } from "./world-simulator.ts";

/** The kind of change. */
export type UpgradeChangeKind =
  | "added"
  | "removed"
  | "reordered"
  | "renamed"
  | "changed-input"
  | "changed"
  /** The new code throws while replaying the old history (e.g. it reads a field old results lack). */
  | "error";

/** One breaking change. */
export interface UpgradeFinding {
  kind: UpgradeChangeKind;
  /** One line: what changed. */
  summary: string;
  /** History position where replay with the new code fails. */
  seq: number | undefined;
  step: number | undefined;
  /** What the old code recorded there, and what the new code produced. */
  recorded: string;
  produced: string;
  /** The in-flight state: how many events of the old history had been recorded. */
  cut: number;
  /** How to make the change safe. */
  fix: string;
  /** In how many generated worlds it appeared. */
  worlds: number;
  /** The smallest example: the world and the old history up to the cut. */
  example: { world: World; script: ScriptLine[]; history: HistoryEvent[] };
}

/**
 * The result of `checkUpgrade`; `String(report)` is the readable report.
 *
 * @example
 * ```ts
 * const report = await checkUpgrade(orderV1, orderV2, { throwOnFailure: false });
 * if (!report.ok) console.log(String(report));
 * ```
 */
export interface UpgradeReport {
  /** True when every in-flight state of the old version replays with the new one. */
  ok: boolean;
  workflow: string;
  from: string | undefined;
  to: string | undefined;
  /** Worlds generated. */
  numRuns: number;
  seed: number;
  /** In-flight states (history prefixes at activation boundaries) replayed with the new code. */
  statesChecked: number;
  /** Of those, how many failed. */
  statesBroken: number;
  findings: UpgradeFinding[];
  /** The readable report. */
  toString(): string;
}

/** Renders a report. */
export function formatUpgradeReport(r: Omit<UpgradeReport, "toString">): string {
  const versions = r.from || r.to ? ` (${r.from ?? "old"} → ${r.to ?? "new"})` : "";
  if (r.ok) {
    return (
      `checkUpgrade("${r.workflow}")${versions}: no breaking change — all ${r.statesChecked} in-flight state(s) ` +
      `of ${r.numRuns} world(s) replay with the new code.`
    );
  }
  const lines = [
    `checkUpgrade("${r.workflow}")${versions}: ${r.findings.length} change(s) would break runs in flight ` +
      `(${r.statesBroken} of ${r.statesChecked} in-flight state(s) in ${r.numRuns} world(s) fail to replay).`,
  ];
  r.findings.forEach((f, i) => {
    lines.push(
      "",
      `${i + 1}. ${f.kind}: ${f.summary}`,
      `   Replaying with the new code fails at history event #${f.seq ?? "?"}${f.step !== undefined ? ` (step ${f.step})` : ""}:`,
      `     recorded: ${f.recorded}`,
      `     produced: ${f.produced}`,
      `   Seen in ${f.worlds} world(s). Smallest example — a run in flight after ${f.cut} event(s):`,
      ...formatScript(f.example.world, f.example.script).map((l) => `   ${l}`),
      `   Fix: ${f.fix}`,
    );
  });
  lines.push("", `Reproduce: checkUpgrade(v1, v2, { ...options, seed: ${r.seed} })`);
  return lines.join("\n");
}
