// Guards in-flight runs against breaking changes: every recorded golden history must replay with today's engine and example code.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseHistoryFile } from "@spool/core";
import { assertReplays } from "@spool/testing";
import { describe, expect, it } from "vitest";
import { goldenWorkflows } from "./golden-workflows.ts";

const dir = import.meta.dirname;
const files = readdirSync(dir).filter((f) => f.endsWith(".json"));

describe("golden histories", () => {
  it("there are recorded histories to replay", () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  for (const file of files) {
    it(`${file} replays with the current code`, async () => {
      const text = readFileSync(join(dir, file), "utf8");
      const { workflowName, events } = parseHistoryFile(text);
      const def = goldenWorkflows.find((w) => w.name === workflowName);
      expect(def, `no workflow "${workflowName}" for ${file}`).toBeDefined();
      const r = await assertReplays(def!, text);
      // A complete recorded run replays to its recorded end and produces nothing new.
      const last = events.at(-1)?.type;
      if (last === "WorkflowCompleted" || last === "WorkflowFailed") expect(r.status).not.toBe("running");
    });
  }
});
