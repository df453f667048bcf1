/**
 * Identifiers. Run ids and task ids are ULIDs: sortable by creation time, unique across
 * processes without coordination. Only backends and clients mint them; the replay engine never
 * does (it must be deterministic).
 */
import { monotonicFactory } from "ulid";

/**
 * Cryptographic randomness drawn in blocks. ulid's default generator calls
 * `crypto.getRandomValues` once per character (16 calls per id), which showed up as 3% of a
 * busy worker's CPU; one call per 256 ids gives the same quality of randomness.
 */
const block = new Uint32Array(4096);
let used = block.length;
function prng(): number {
  if (used === block.length) {
    globalThis.crypto.getRandomValues(block);
    used = 0;
  }
  return (block[used++] as number) / 0x1_0000_0000;
}

const next = monotonicFactory(prng);

/** A new ULID (26 characters, Crockford base32, monotonic within this process). */
export function newId(): string {
  return next();
}
