// Guards the package boundaries by tool, not memory: the dependency direction of DESIGN.md, no cycles, no import a package does not declare, no reaching into another package's src/, and no internals made public through `export *`.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const packagesDir = join(root, "packages");

interface Pkg {
  dir: string;
  name: string;
  deps: string[];
}

const WORKSPACE = /^(@spool\/[a-z-]+|spool)$/;

const pkgs: Pkg[] = readdirSync(packagesDir)
  .filter((d) => statSync(join(packagesDir, d)).isDirectory())
  .map((d) => {
    const j = JSON.parse(readFileSync(join(packagesDir, d, "package.json"), "utf8"));
    const deps = Object.keys({ ...j.dependencies, ...j.peerDependencies }).filter((k) => WORKSPACE.test(k));
    return { dir: d, name: j.name as string, deps };
  });
const byName = new Map(pkgs.map((p) => [p.name, p]));

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

/**
 * The modules a package makes public wholesale: every module its index reaches through `export *`
 * (directly, or through such a module's own `export *`). All of each is public API, so each is
 * named here on purpose. A new one fails the test: export its public names one by one from the
 * index instead (`export { a, type B } from "./x.ts"`), or, if the whole module is public API, add
 * it here. Paths are relative to the package's src/.
 */
const WHOLESALE_PUBLIC: Record<string, readonly string[]> = {
  "@spool/core": [
    "backend/backend.ts",
    "backend/integrity.ts",
    "backend/lease.ts",
    "backend/unhosted-work.ts",
    "codec/index.ts",
    "codec/input-fingerprint.ts",
    "definitions/activity.ts",
    "definitions/query.ts",
    "definitions/schema.ts",
    "definitions/signal.ts",
    "definitions/workflow.ts",
    "duration.ts",
    "errors.ts",
    "failure-class.ts",
    "history/event-codec.ts",
    "history/events.ts",
    "history/history-file.ts",
    "history/started-event.ts",
    "ids.ts",
    "replay/describe.ts",
    "replay/engine.ts",
    "replay/executor.ts",
    "replay/executor-options.ts", // through replay/executor.ts
    "retry-policy.ts",
    "steps/child.ts",
    "steps/concurrency.ts",
    "steps/continue-as-new.ts",
    "steps/patch.ts",
    "steps/saga.ts",
    "steps/side-effect.ts",
    "steps/step.ts",
    "steps/timer.ts",
  ],
  "@spool/sql-store": [
    "commit-validation.ts",
    "integrity-scan.ts",
    "lease-sql.ts",
    "row-checksum.ts",
    "stored-rows.ts",
  ],
};

/** The modules `file` re-exports with `export * from`, as absolute paths. */
function starExportsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^export \* from "(\.[^"]+)"/gm)].map((m) => join(file, "..", m[1] as string));
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1] as string);
}

describe("package boundaries", () => {
  it("follow DESIGN.md's direction: core depends on no workspace package; the SQL layer, worker and client only on core; the SQL backends on core and the SQL layer", () => {
    expect(byName.get("@spool/core")?.deps).toEqual([]);
    for (const name of ["@spool/sql-store", "@spool/worker", "@spool/client"]) {
      expect(byName.get(name)?.deps, name).toEqual(["@spool/core"]);
    }
    for (const name of ["@spool/sqlite", "@spool/postgres"]) {
      expect(byName.get(name)?.deps.sort(), name).toEqual(["@spool/core", "@spool/sql-store"]);
    }
    // Only tests and examples depend on @spool/testing.
    for (const p of pkgs) expect(p.deps, p.name).not.toContain("@spool/testing");
  });

  it("have no dependency cycle", () => {
    const state = new Map<string, "visiting" | "done">();
    const visit = (name: string, path: string[]): void => {
      if (state.get(name) === "done") return;
      if (state.get(name) === "visiting")
        throw new Error(`dependency cycle: ${[...path, name].join(" -> ")}`);
      state.set(name, "visiting");
      for (const d of byName.get(name)?.deps ?? []) visit(d, [...path, name]);
      state.set(name, "done");
    };
    for (const p of pkgs) expect(() => visit(p.name, [])).not.toThrow();
  });

  it("import only the workspace packages they declare, by name, never another package's files", () => {
    const problems: string[] = [];
    for (const p of pkgs) {
      const src = join(packagesDir, p.dir, "src");
      for (const file of sources(src)) {
        const where = relative(root, file);
        for (const spec of importsOf(file)) {
          const pkgName = spec.startsWith("@spool/")
            ? spec.split("/").slice(0, 2).join("/")
            : spec.split("/")[0];
          if (pkgName && WORKSPACE.test(pkgName)) {
            if (spec !== pkgName)
              problems.push(`${where}: "${spec}" reaches into ${pkgName}; import "${pkgName}"`);
            else if (!p.deps.includes(pkgName) && pkgName !== p.name)
              problems.push(`${where}: imports ${pkgName}, which ${p.name}'s package.json does not declare`);
          }
          if (spec.startsWith(".")) {
            const target = join(file, "..", spec);
            if (!target.startsWith(join(packagesDir, p.dir) + "/"))
              problems.push(`${where}: "${spec}" leaves the package ${p.name}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("export * only modules that are public as a whole, and none of those marks an export @internal", () => {
    const problems: string[] = [];
    for (const p of pkgs) {
      const src = join(packagesDir, p.dir, "src");
      const index = join(src, "index.ts");
      const allowed = new Set(WHOLESALE_PUBLIC[p.name] ?? []);
      const reached = new Set<string>();
      const walk = (file: string) => {
        for (const target of starExportsOf(file)) {
          const rel = relative(src, target);
          if (reached.has(rel)) continue;
          reached.add(rel);
          walk(target);
        }
      };
      walk(index);
      for (const rel of reached) {
        if (!allowed.has(rel)) {
          problems.push(
            `${p.name}: src/${rel} is exported wholesale (export *); export its public names by name, or list it in WHOLESALE_PUBLIC`,
          );
          continue;
        }
        if (/@internal\b/.test(readFileSync(join(src, rel), "utf8")))
          problems.push(`${p.name}: src/${rel} is exported wholesale but marks an export @internal`);
      }
      for (const rel of allowed) {
        if (!reached.has(rel))
          problems.push(
            `${p.name}: WHOLESALE_PUBLIC lists src/${rel}, which is no longer exported wholesale; remove it`,
          );
      }
    }
    expect(problems).toEqual([]);
  });
});
