/**
 * The fingerprint of a workflow's input, stored with the run it starts, so a later start with the
 * same workflow id can tell whether it asks for the same run (see `onConflict`). Computed where
 * runs are created — the client, a child start, a continue-as-new — over the msgpack bytes.
 */
import CRC32 from "crc-32";
import { encodeValue } from "./msgpack-codec.ts";

/**
 * A 64-bit fingerprint (16 hex digits: CRC-32 and FNV-1a, each over the bytes) of a workflow's
 * encoded input, stored with the run so a start with the same id can tell whether it asks for
 * the same run. It detects mistakes, not adversaries: it is not a cryptographic hash. Computed
 * over the msgpack bytes before any payload codec, whose output (a random IV) may differ for
 * equal inputs.
 */
export function inputFingerprint(encoded: Uint8Array): string {
  let fnv = 0x811c9dc5;
  for (let i = 0; i < encoded.length; i++) fnv = Math.imul(fnv ^ encoded[i]!, 0x01000193);
  const crc = CRC32.buf(encoded) >>> 0;
  return crc.toString(16).padStart(8, "0") + (fnv >>> 0).toString(16).padStart(8, "0");
}

/**
 * {@link inputFingerprint} of a workflow input value (after its schema has parsed it): what a
 * client, a child start or a continue-as-new stores with the run it creates.
 */
export function workflowInputFingerprint(input: unknown): string {
  return inputFingerprint(encodeValue(input, "workflow input"));
}
