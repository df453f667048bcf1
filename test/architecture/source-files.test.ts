// Guards the shape of the source files by tool: a file that does not say what role it has, or that grows past what one reader can hold (500 lines), fails here instead of in review.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const packagesDir = join(root, "packages");

/** Lines a source file under packages/{name}/src may have. */
const MAX_LINES = 500;

/**
 * Files over {@link MAX_LINES} today, each with the line count it had when it was listed: the
 * restructuring of issue #12 is splitting them. A listed file may shrink but not grow; once it is
 * at or under the limit its entry must go. Do not add to this list: split the file instead.
 */
const OVERSIZED: Record<string, number> = {
  "packages/sqlite/src/sqlite-backend.ts": 1487,
  "packages/postgres/src/postgres-backend.ts": 1413,
  "packages/worker/src/worker.ts": 776,
  "packages/postgres/src/statements.ts": 722,
  "packages/core/src/backend/backend.ts": 595,
  "packages/core/src/codec/msgpack-codec.ts": 559,
};

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

  it(`stay under ${MAX_LINES} lines, except the listed files, which may not grow`, () => {
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const { path, text } of files) {
      const lines = lineCount(text);
      const listed = OVERSIZED[path];
      if (listed !== undefined) seen.add(path);
      if (listed === undefined && lines > MAX_LINES)
        problems.push(`${path}: ${lines} lines (limit ${MAX_LINES}); split it by role`);
      else if (listed !== undefined && lines > listed)
        problems.push(`${path}: grew from ${listed} to ${lines} lines; it is listed to shrink, not grow`);
      else if (listed !== undefined && lines <= MAX_LINES)
        problems.push(`${path}: now ${lines} lines, within the limit; remove it from OVERSIZED`);
    }
    for (const path of Object.keys(OVERSIZED)) {
      if (!seen.has(path)) problems.push(`${path}: listed in OVERSIZED but gone; remove the entry`);
    }
    expect(problems).toEqual([]);
  });
});
