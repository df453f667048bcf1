// Guards the shape of the source files by tool: a file that does not say what role it has, or that grows past what one reader can hold (500 lines), fails here instead of in review.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const packagesDir = join(root, "packages");

/** Lines a source file under packages/{name}/src may have. */
const MAX_LINES = 500;

/** Lines a file of the replay engine (packages/core/src/replay) may have: the engine is read most. */
const MAX_ENGINE_LINES = 300;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules" && e.name !== "dist") out.push(...sources(p));
    } else if (/\.tsx?$/.test(e.name)) out.push(p);
  }
  return out;
}

const files = readdirSync(packagesDir)
  .filter((d) => statSync(join(packagesDir, d, "src"), { throwIfNoEntry: false })?.isDirectory())
  .flatMap((d) => sources(join(packagesDir, d, "src")))
  .map((abs) => ({ path: relative(root, abs), text: readFileSync(abs, "utf8") }));

/** Lines as `wc -l` counts them. */
const lineCount = (text: string) => text.split("\n").length - (text.endsWith("\n") ? 1 : 0);

describe("source files under packages/*/src", () => {
  it("are found (the checks below are not vacuous)", () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it("each open with a comment that says its role", () => {
    const bare = files
      .filter(({ text }) => {
        const first = text
          .split("\n")
          .find((l) => l.trim() !== "" && !l.startsWith("#!"))
          ?.trim();
        return !(first?.startsWith("/*") || first?.startsWith("//"));
      })
      .map((f) => f.path);
    expect(bare, "open these files with a comment on what the module owns").toEqual([]);
  });

  it(`stay under ${MAX_LINES} lines (the engine's under ${MAX_ENGINE_LINES})`, () => {
    const problems: string[] = [];
    for (const { path, text } of files) {
      const limit = path.startsWith("packages/core/src/replay/") ? MAX_ENGINE_LINES : MAX_LINES;
      const lines = lineCount(text);
      if (lines > limit) problems.push(`${path}: ${lines} lines (limit ${limit}); split it by role`);
    }
    expect(problems).toEqual([]);
  });
});
