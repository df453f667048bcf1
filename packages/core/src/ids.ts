/**
 * Identifiers. Run ids and task ids are ULIDs: sortable by creation time, unique across
 * processes without coordination. Only backends and clients mint them; the replay engine never
 * does (it must be deterministic).
 */
import { monotonicFactory } from "ulid";

const next = monotonicFactory();

/** A new ULID (26 characters, Crockford base32, monotonic within this process). */
export function newId(): string {
  return next();
}
