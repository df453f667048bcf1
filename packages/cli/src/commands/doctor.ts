/**
 * `spool doctor`: checks a store's integrity — on SQLite the file's structure (`PRAGMA
 * quick_check`), on every backend each stored row's checksum — and says what to do about what it
 * finds. Read-only: it never repairs, since the only sound repair is a restore the operator chooses.
 */
import { type Backend, integrityAdvice } from "@spool/core";
import { type CliIo, toJson, UsageError } from "../io.ts";

/** Exit code 0 when everything checked is sound, 1 when anything is damaged. */
export async function doctorCommand(backend: Backend, io: CliIo, o: { json?: boolean }): Promise<number> {
  if (backend.checkIntegrity === undefined) {
    throw new UsageError("this backend cannot be checked by spool doctor (it has no checkIntegrity())");
  }
  const report = await backend.checkIntegrity();
  const advice = integrityAdvice(report);
  const healthy = report.problems.length === 0 && (report.engine === null || report.engine.ok);
  if (o.json) {
    io.out(toJson({ healthy, ...report, advice }));
    return healthy ? 0 : 1;
  }
  const s = report.scanned;
  if (report.engine !== null) {
    io.out(
      `${report.engine.check}: ${report.engine.ok ? "ok" : "FAILED"}` +
        (report.engine.ok ? "" : `\n${report.engine.messages.map((m) => `  ${m}`).join("\n")}`),
    );
  }
  io.out(
    `checksums: ${s.runs} runs, ${s.history} history events, ${s.inbox} inbox events, ${s.activity_tasks} activity ` +
      `tasks checked; ${report.problems.length === 0 ? "all sound" : `${report.problems.length} damaged`}`,
  );
  const { runs, activity_tasks } = report.unverified;
  if (runs + activity_tasks > 0) {
    io.out(
      `  (${runs} run records and ${activity_tasks} activity tasks were written before row checksums existed ` +
        "and cannot be verified; they gain a checksum at their next status change)",
    );
  }
  if (healthy) {
    io.out("healthy: nothing to do");
    return 0;
  }
  for (const p of report.problems) io.out(`DAMAGED ${p.table} run ${p.runId} ${p.row}: ${p.reason}`);
  io.out("what to do:");
  for (const line of advice) io.out(`  ${line}`);
  return 1;
}
