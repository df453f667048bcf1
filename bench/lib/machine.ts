/**
 * The machine a run was measured on: CPU, cores, memory, load, OS, and the versions of Node,
 * better-sqlite3 and SQLite (PostgreSQL's is added by the postgres scenario when it runs). Load
 * averages are taken at the start and the end, because on a shared machine they explain the noise.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import os from "node:os";
import Database from "better-sqlite3";

/** A description of the machine and software versions. */
export interface MachineInfo {
  hostname: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  freeMemoryGiB: number;
  os: string;
  arch: string;
  node: string;
  v8: string;
  betterSqlite3: string;
  sqlite: string;
  tmpdir: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
  /** PostgreSQL server version, when the postgres scenario reached a server. */
  postgres?: string;
  git?: { commit: string; dirty: boolean };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Describes this machine now. */
export function describeMachine(): MachineInfo {
  const require = createRequire(import.meta.url);
  const bsqlVersion = (require("better-sqlite3/package.json") as { version: string }).version;
  const db = new Database(":memory:");
  const sqlite = (db.prepare("select sqlite_version() as v").get() as { v: string }).v;
  db.close();
  const cpus = os.cpus();
  const info: MachineInfo = {
    hostname: os.hostname(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: round2(os.totalmem() / 2 ** 30),
    freeMemoryGiB: round2(os.freemem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    node: process.version,
    v8: process.versions.v8,
    betterSqlite3: bsqlVersion,
    sqlite,
    tmpdir: os.tmpdir(),
    loadAverageAtStart: os.loadavg().map(round2),
  };
  const git = gitState();
  if (git) info.git = git;
  return info;
}

/** Marks the end of the run (load average then). */
export function finishMachine(info: MachineInfo): void {
  info.loadAverageAtEnd = os.loadavg().map(round2);
  info.freeMemoryGiB = round2(os.freemem() / 2 ** 30);
}

/** The checked-out commit and whether the tree has local changes (read-only git calls). */
function gitState(): { commit: string; dirty: boolean } | undefined {
  try {
    const opts = { encoding: "utf8" as const, stdio: ["ignore", "pipe", "ignore"] as ("ignore" | "pipe")[] };
    const commit = execFileSync("git", ["rev-parse", "HEAD"], opts).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], opts).trim().length > 0;
    return { commit, dirty };
  } catch {
    return undefined;
  }
}
