/**
 * The simulated worker crashes a test asked for with `env.crashAfterEvent(seq)`: each rule fires
 * once, on the first commit that reaches history position `seq` (of any run, or of one workflow id).
 */
import { InvalidOptionsError } from "@spool/core";

interface CrashRule {
  afterSeq: number;
  workflowId: string | undefined;
  fired: boolean;
}

/** The crash rules of one test environment. */
export class CrashRules {
  private readonly rules: CrashRule[] = [];

  /** Adds a rule. @throws InvalidOptionsError when `seq` is not a history position. */
  add(seq: number, workflowId: string | undefined): void {
    if (!Number.isInteger(seq) || seq < 1)
      throw new InvalidOptionsError("crashAfterEvent(seq): seq is a history position ≥ 1");
    this.rules.push({ afterSeq: seq, workflowId, fired: false });
  }

  /**
   * Whether the commit that brought run `runId` to `lastSeq` fires a rule (which is then spent).
   * `workflowIdOf` is asked only for rules bound to a workflow id.
   */
  async fires(
    lastSeq: number,
    runId: string,
    workflowIdOf: (runId: string) => Promise<string | undefined>,
  ): Promise<boolean> {
    for (const rule of this.rules) {
      if (rule.fired || lastSeq < rule.afterSeq) continue;
      if (rule.workflowId !== undefined && (await workflowIdOf(runId)) !== rule.workflowId) continue;
      rule.fired = true;
      return true;
    }
    return false;
  }
}
