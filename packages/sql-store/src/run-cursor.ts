/**
 * The keyset cursor of the inspectors' `listRuns` pages: base64url of `[createdAt, runId]` of the
 * last run on a page, opaque to callers. Written once so every backend accepts the others' cursors
 * and says the same thing about a malformed one.
 */
import { InvalidOptionsError } from "@spool/core";

/** The cursor that continues after the run created at `createdAt` with id `runId`. */
export function encodeRunCursor(createdAt: number, runId: string): string {
  return Buffer.from(JSON.stringify([createdAt, runId])).toString("base64url");
}

/**
 * The `[createdAt, runId]` a cursor continues after.
 * @throws InvalidOptionsError for anything {@link encodeRunCursor} did not produce.
 */
export function decodeRunCursor(cursor: string): [createdAt: number, runId: string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(value) && typeof value[0] === "number" && typeof value[1] === "string") {
      return [value[0], value[1]];
    }
  } catch {
    // fall through to the error below: the cause (a JSON syntax error) would not help the caller
  }
  throw new InvalidOptionsError(
    `listRuns: invalid cursor "${cursor}". Pass back the nextCursor of a previous page unchanged.`,
  );
}
