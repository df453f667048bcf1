/**
 * Counts SQLite commits (and pages written) by reading the WAL file: every commit appends its
 * pages as frames, and the last frame of a commit records the database size, which other frames
 * leave 0. In FULL durability each commit is one fsync of the WAL, so commits per step is the
 * figure group commit is meant to lower.
 *
 * While watching, a second connection holds a read transaction open so the writer cannot reset
 * the WAL (a reset rewrites it from the start and the frames would be lost to the count); the WAL
 * grows until the watch stops. For untimed diagnostic passes only.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import Database from "better-sqlite3";

interface WalScan {
  salt1: number;
  salt2: number;
  frames: number;
  commits: number;
}

function scanWal(walPath: string): WalScan | null {
  let fd: number;
  try {
    fd = openSync(walPath, "r");
  } catch {
    return null;
  }
  try {
    const size = statSync(walPath).size;
    if (size < 32) return null;
    const header = Buffer.alloc(32);
    readSync(fd, header, 0, 32, 0);
    const pageSize = header.readUInt32BE(8);
    const salt1 = header.readUInt32BE(16);
    const salt2 = header.readUInt32BE(20);
    const frameHeader = Buffer.alloc(24);
    let frames = 0;
    let commits = 0;
    for (let off = 32; off + 24 + pageSize <= size; off += 24 + pageSize) {
      readSync(fd, frameHeader, 0, 24, off);
      if (frameHeader.readUInt32BE(8) !== salt1 || frameHeader.readUInt32BE(12) !== salt2) break;
      frames++;
      if (frameHeader.readUInt32BE(4) !== 0) commits++;
    }
    return { salt1, salt2, frames, commits };
  } finally {
    closeSync(fd);
  }
}

/** What a watch saw: commits and pages written, or why it could not tell. */
export type WalCount = { commits: number; pages: number } | { unknown: string };

/** Starts counting commits to the WAL-mode database at `dbPath`; `stop()` returns the counts. */
export function watchWalCommits(dbPath: string): { stop(): WalCount } {
  const reader = new Database(dbPath);
  reader.exec("BEGIN");
  reader.prepare("SELECT count(*) FROM sqlite_master").get(); // starts the read transaction
  const start = scanWal(`${dbPath}-wal`);
  return {
    stop() {
      const end = scanWal(`${dbPath}-wal`);
      reader.exec("COMMIT");
      reader.close();
      if (!start || !end) return { unknown: "no WAL file" };
      if (start.salt1 !== end.salt1 || start.salt2 !== end.salt2) return { unknown: "the WAL was reset" };
      return { commits: end.commits - start.commits, pages: end.frames - start.frames };
    },
  };
}
