/**
 * Temporary SQLite files for benchmarks: each in its own directory under os.tmpdir(), so the WAL
 * and shared-memory files beside it are removed with it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A database path in a fresh temp directory, and how to remove it. */
export interface TempDb {
  path: string;
  dir: string;
  remove(): void;
}

/** Creates a fresh temp directory and returns a database path inside it (the file is not created). */
export function tempDb(label: string): TempDb {
  const dir = mkdtempSync(join(tmpdir(), `spool-bench-${label}-`));
  return {
    path: join(dir, "bench.db"),
    dir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
