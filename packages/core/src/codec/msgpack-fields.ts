/**
 * Cuts the bytes of one field out of an encoded msgpack map, without decoding anything. msgpack
 * writes a map's values in place, each exactly as it would be written alone, so the bytes of the
 * field `input` of an encoded `{ name, input, options }` ARE the encoding of the input: a value
 * stored both inside an event body and as a payload of its own (an activity's input, a run's
 * result) is serialized once, and the second payload is a slice of the first.
 */

/**
 * The bytes of the value of the string key `key` in the msgpack map `bytes` (a view into it), or
 * undefined when `bytes` is not a map or has no such key. `bytes` must hold exactly one encoded
 * value (as `encodeValue` returns it).
 *
 * @example
 * ```ts
 * const body = encodeValue({ name: "charge", input: { amount: 5 } });
 * msgpackMapField(body, "input"); // the same bytes as encodeValue({ amount: 5 })
 * ```
 */
export function msgpackMapField(bytes: Uint8Array, key: string): Uint8Array | undefined {
  return msgpackMapFields(bytes, [key])[0];
}

/**
 * {@link msgpackMapField} for several keys in one pass over the map: the value bytes of each key,
 * in the order of `keys`, undefined for a key the map does not have. Views into `bytes`, not
 * copies: a copy of more than 64 bytes allocates a backing store, which cost more than the scan
 * (payloads are never written to after encoding, so sharing the buffer is safe).
 */
export function msgpackMapFields(bytes: Uint8Array, keys: readonly string[]): (Uint8Array | undefined)[] {
  const out = new Array<Uint8Array | undefined>(keys.length).fill(undefined);
  const head = bytes[0];
  let count: number;
  let pos: number;
  if (head === undefined) return out;
  if (head >= 0x80 && head <= 0x8f) {
    count = head - 0x80;
    pos = 1;
  } else if (head === 0xde) {
    count = u16(bytes, 1);
    pos = 3;
  } else if (head === 0xdf) {
    count = u32(bytes, 1);
    pos = 5;
  } else return out;
  let missing = keys.length;
  for (let i = 0; i < count && missing > 0; i++) {
    const keyEnd = skip(bytes, pos);
    // The last value runs to the end: `bytes` is one map, so it need not be walked.
    const valueEnd = i === count - 1 ? bytes.length : skip(bytes, keyEnd);
    for (let k = 0; k < keys.length; k++) {
      if (out[k] === undefined && isString(bytes, pos, keyEnd, keys[k] as string)) {
        out[k] = bytes.subarray(keyEnd, valueEnd);
        missing--;
        break;
      }
    }
    pos = valueEnd;
  }
  return out;
}

/** True when the msgpack value at [start, end) is the string `key` (keys are short ASCII names). */
function isString(bytes: Uint8Array, start: number, end: number, key: string): boolean {
  const head = bytes[start] as number;
  let from: number;
  if (head >= 0xa0 && head <= 0xbf) from = start + 1;
  else if (head === 0xd9) from = start + 2;
  else if (head === 0xda) from = start + 3;
  else if (head === 0xdb) from = start + 5;
  else return false;
  if (end - from !== key.length) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    // A non-ASCII key would need UTF-8: compare by decoding instead (never the case for field names).
    if (c > 0x7f) return new TextDecoder().decode(bytes.subarray(from, end)) === key;
    if (bytes[from + i] !== c) return false;
  }
  return true;
}

/**
 * The offset just past the msgpack value starting at `pos`.
 * @throws RangeError when the bytes end inside the value (truncated) or hold a reserved byte.
 */
function skip(bytes: Uint8Array, pos: number): number {
  let pending = 1;
  while (pending > 0) {
    pending--;
    const h = bytes[pos];
    if (h === undefined) throw new RangeError("msgpack value truncated");
    if (h <= 0x7f || h >= 0xe0)
      pos += 1; // fixint
    else if (h <= 0x8f) {
      pending += 2 * (h - 0x80);
      pos += 1;
    } else if (h <= 0x9f) {
      pending += h - 0x90;
      pos += 1;
    } else if (h <= 0xbf) pos += 1 + (h - 0xa0);
    else {
      switch (h) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          pos += 1;
          break;
        case 0xc4:
        case 0xd9:
          pos += 2 + (bytes[pos + 1] as number);
          break;
        case 0xc5:
        case 0xda:
          pos += 3 + u16(bytes, pos + 1);
          break;
        case 0xc6:
        case 0xdb:
          pos += 5 + u32(bytes, pos + 1);
          break;
        case 0xc7:
          pos += 3 + (bytes[pos + 1] as number);
          break;
        case 0xc8:
          pos += 4 + u16(bytes, pos + 1);
          break;
        case 0xc9:
          pos += 6 + u32(bytes, pos + 1);
          break;
        case 0xca:
          pos += 5;
          break;
        case 0xcb:
          pos += 9;
          break;
        case 0xcc:
        case 0xd0:
          pos += 2;
          break;
        case 0xcd:
        case 0xd1:
          pos += 3;
          break;
        case 0xce:
        case 0xd2:
          pos += 5;
          break;
        case 0xcf:
        case 0xd3:
          pos += 9;
          break;
        case 0xd4:
          pos += 3;
          break;
        case 0xd5:
          pos += 4;
          break;
        case 0xd6:
          pos += 6;
          break;
        case 0xd7:
          pos += 10;
          break;
        case 0xd8:
          pos += 18;
          break;
        case 0xdc:
          pending += u16(bytes, pos + 1);
          pos += 3;
          break;
        case 0xdd:
          pending += u32(bytes, pos + 1);
          pos += 5;
          break;
        case 0xde:
          pending += 2 * u16(bytes, pos + 1);
          pos += 3;
          break;
        case 0xdf:
          pending += 2 * u32(bytes, pos + 1);
          pos += 5;
          break;
        default:
          throw new RangeError(`reserved msgpack byte 0x${h.toString(16)}`);
      }
    }
  }
  if (pos > bytes.length) throw new RangeError("msgpack value truncated");
  return pos;
}

/** A big-endian 16-bit length (a DataView per call cost more than the whole scan). */
function u16(bytes: Uint8Array, at: number): number {
  return (((bytes[at] as number) << 8) | (bytes[at + 1] as number)) >>> 0;
}

/** A big-endian 32-bit length. */
function u32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) * 0x1000000 +
    (((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number))
  );
}
