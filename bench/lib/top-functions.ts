/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. `pnpm bench --cpu-prof --only
 * concurrent`) into the functions with the most self time, the most inclusive time, and self time
 * per package — where the time goes, without opening DevTools.
 *
 * Usage: npx tsx bench/lib/top-functions.ts <file.cpuprofile | directory (newest profile)> [--top 25]
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
/** The parts of a .cpuprofile this reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** One row of the summary. */
export interface ProfileRow {
  name: string;
  /** Where: short path and line, or the package. */
  where: string;
  selfMs: number;
  /** Self time as a share of the busy (non-idle) time. */
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

/** A whole summary. */
export interface ProfileSummary {
  durationMs: number;
  busyMs: number;
  idleMs: number;
  samples: number;
  functions: ProfileRow[];
  inclusive: ProfileRow[];
  packages: ProfileRow[];
}

const META = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

/** A short location: repo-relative for our code, package/file for dependencies. */
function shortUrl(url: string): string {
  if (url === "") return "";
  let u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) return u.slice(nm + "node_modules/".length);
  const root = process.cwd();
  if (u.startsWith(`${root}/`)) u = u.slice(root.length + 1);
  return u;
}

/** The package a frame belongs to, for the per-package view. */
function packageOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") return META.has(functionName) ? functionName : "(V8 builtins / native)";
  if (url.startsWith("node:")) return "node internals";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const pkg = /\/packages\/([^/]+)\//.exec(url);
  if (pkg) return pkg[1] === "spool" ? "spool" : `@spool/${pkg[1]}`;
  if (url.includes("/bench/")) return "bench harness";
  return shortUrl(url);
}

const sources = new Map<string, string[] | null>();

/**
 * The line of a function in a TypeScript file. tsx hands V8 transformed code whose line numbers
 * do not match the source (often everything is on line 1), so for .ts files the line is looked up
 * by the function's name in the source instead, and marked "~" as approximate; "?" when not found.
 */
function sourceLine(frame: CallFrame): string {
  if (!/\.[cm]?tsx?$/.test(frame.url) || frame.lineNumber > 0) return String(frame.lineNumber + 1);
  const path = frame.url.replace(/^file:\/\//, "");
  let lines = sources.get(path);
  if (lines === undefined) {
    try {
      lines = readFileSync(path, "utf8").split("\n");
    } catch {
      lines = null;
    }
    sources.set(path, lines);
  }
  const name = frame.functionName.split(".").pop() ?? "";
  if (!lines || !/^[A-Za-z_$][\w$]*$/.test(name)) return "?";
  const esc = name.replace(/\$/g, "\\$");
  const patterns = [
    new RegExp(`^\\s*(export\\s+)?(default\\s+)?(async\\s+)?function\\*?\\s+${esc}\\b`),
    new RegExp(`^\\s*(export\\s+)?(abstract\\s+)?class\\s+${esc}\\b`),
    new RegExp(
      `^\\s*((private|protected|public|static|readonly|async|get|set)\\s+)*\\*?${esc}\\s*(<[^>]*>)?\\(`,
    ),
    new RegExp(`^\\s*(export\\s+)?(const|let|var)\\s+${esc}\\s*=`),
    new RegExp(`^\\s*((private|readonly|static)\\s+)*${esc}\\s*=\\s*(async\\s*)?\\(`),
  ];
  for (const re of patterns) {
    const i = lines.findIndex((l) => re.test(l));
    if (i >= 0) return `~${i + 1}`;
  }
  return "?";
}

function keyOf(frame: CallFrame): string {
  const name = frame.functionName || "(anonymous)";
  return frame.url === ""
    ? name
    : `${name}\u0000${shortUrl(frame.url)}:${frame.lineNumber}:${frame.columnNumber}`;
}

/** Summarises a parsed profile; `top` rows per table. */
export function summariseProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Sample i lasts until sample i+1 (DevTools' attribution); timestamps are in microseconds.
  const stamps: number[] = [];
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    stamps.push(t);
  }
  const self = new Map<string, { frame: CallFrame; us: number }>();
  const total = new Map<string, { frame: CallFrame; us: number }>();
  const pkgSelf = new Map<string, number>();
  const pkgTotal = new Map<string, number>();
  const ancestry = new Map<number, { keys: string[]; frames: CallFrame[]; pkgs: string[] }>();
  const pathOf = (id: number) => {
    let a = ancestry.get(id);
    if (a) return a;
    const keys = new Set<string>();
    const frames: CallFrame[] = [];
    const pkgs = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = (byId.get(cur) as ProfileNode).callFrame;
      if (f.functionName === "(root)") continue;
      const k = keyOf(f);
      if (!keys.has(k)) {
        keys.add(k);
        frames.push(f);
      }
      pkgs.add(packageOf(f));
    }
    a = { keys: [...keys], frames, pkgs: [...pkgs] };
    ancestry.set(id, a);
    return a;
  };

  let idleUs = 0;
  let allUs = 0;
  for (let i = 0; i < samples.length; i++) {
    const dur = (i + 1 < stamps.length ? (stamps[i + 1] as number) : profile.endTime) - (stamps[i] as number);
    if (dur <= 0) continue;
    const node = byId.get(samples[i] as number);
    if (!node) continue;
    allUs += dur;
    const f = node.callFrame;
    if (f.functionName === "(idle)") {
      idleUs += dur;
      continue;
    }
    const k = keyOf(f);
    const s = self.get(k) ?? { frame: f, us: 0 };
    s.us += dur;
    self.set(k, s);
    const pk = packageOf(f);
    pkgSelf.set(pk, (pkgSelf.get(pk) ?? 0) + dur);
    const p = pathOf(node.id);
    p.keys.forEach((key, j) => {
      const e = total.get(key) ?? { frame: p.frames[j] as CallFrame, us: 0 };
      e.us += dur;
      total.set(key, e);
    });
    for (const pkg of p.pkgs) pkgTotal.set(pkg, (pkgTotal.get(pkg) ?? 0) + dur);
  }
  const busyUs = allUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? (100 * us) / busyUs : 0);
  const row = (key: string, frame: CallFrame): ProfileRow => {
    const s = self.get(key)?.us ?? 0;
    const tt = total.get(key)?.us ?? s;
    return {
      name: frame.functionName || "(anonymous)",
      where: frame.url === "" ? "" : `${shortUrl(frame.url)}:${sourceLine(frame)}`,
      selfMs: s / 1000,
      selfPct: pct(s),
      totalMs: tt / 1000,
      totalPct: pct(tt),
    };
  };
  const functions = [...self.entries()]
    .sort((a, b) => b[1].us - a[1].us)
    .slice(0, top)
    .map(([k, v]) => row(k, v.frame));
  const inclusive = [...total.entries()]
    .filter(([, v]) => !META.has(v.frame.functionName) && v.frame.url !== "")
    .sort((a, b) => b[1].us - a[1].us)
    .slice(0, top)
    .map(([k, v]) => row(k, v.frame));
  const packages = [...pkgSelf.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({
      name,
      where: "",
      selfMs: us / 1000,
      selfPct: pct(us),
      totalMs: (pkgTotal.get(name) ?? us) / 1000,
      totalPct: pct(pkgTotal.get(name) ?? us),
    }));
  return {
    durationMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    samples: samples.length,
    functions,
    inclusive,
    packages,
  };
}

/** The profile at `path`, or the newest .cpuprofile in it when it is a directory. */
export function resolveProfilePath(path: string): string {
  const p = resolve(path);
  if (!statSync(p).isDirectory()) return p;
  const files = readdirSync(p)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => ({ f: join(p, f), m: statSync(join(p, f)).mtimeMs }))
    .sort((a, b) => b.m - a.m);
  if (!files[0]) throw new Error(`no .cpuprofile in ${p}`);
  return files[0].f;
}

/** Formats a summary as text tables. */
export function formatSummary(s: ProfileSummary, file: string): string {
  const ms = (n: number) => n.toFixed(1).padStart(9);
  const pc = (n: number) => `${n.toFixed(1)}%`.padStart(6);
  const lines = [
    `${file}`,
    `${s.samples} samples over ${s.durationMs.toFixed(0)} ms: busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms (percentages are of busy time)`,
    "",
    "Top functions by self time:",
    `${"self ms".padStart(9)} ${"self".padStart(6)} ${"total ms".padStart(9)}  function  (where)`,
    ...s.functions.map(
      (r) => `${ms(r.selfMs)} ${pc(r.selfPct)} ${ms(r.totalMs)}  ${r.name}${r.where ? `  (${r.where})` : ""}`,
    ),
    "",
    "Top functions by inclusive time:",
    `${"total ms".padStart(9)} ${"total".padStart(6)} ${"self ms".padStart(9)}  function  (where)`,
    ...s.inclusive.map(
      (r) =>
        `${ms(r.totalMs)} ${pc(r.totalPct)} ${ms(r.selfMs)}  ${r.name}${r.where ? `  (${r.where})` : ""}`,
    ),
    "",
    "Self time by package:",
    ...s.packages.map((r) => `${ms(r.selfMs)} ${pc(r.selfPct)}  ${r.name}`),
  ];
  return lines.join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf("--top");
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const target = args.find((a, i) => !a.startsWith("--") && (topAt < 0 || i !== topAt + 1));
  if (!target) {
    console.error("usage: tsx bench/lib/top-functions.ts <file.cpuprofile | dir> [--top 25]");
    process.exit(2);
  }
  const file = resolveProfilePath(target);
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  console.log(formatSummary(summariseProfile(profile, top), file));
}
