/**
 * Cuts the bytes of one field out of an encoded msgpack map, without decoding anything. msgpack
 * writes a map's values in place, each exactly as it would be written alone, so the bytes of the
 * field `input` of an encoded `{ name, input, options }` ARE the encoding of the input: a value
 * stored both inside an event body and as a payload of its own (an activity's input, a run's
 * result) is serialized once, and the second payload is a slice of the first.
 */

/**
 * The bytes of the value of the string key `key` in the msgpack map `bytes` (a copy), or
 * undefined when `bytes` is not a map or has no such key.
 *
 * @example
 * ```ts
 * const body = encodeValue({ name: "charge", input: { amount: 5 } });
 * msgpackMapField(body, "input"); // the same bytes as encodeValue({ amount: 5 })
 * ```
 */
export function msgpackMapField(bytes: Uint8Array, key: string): Uint8Array | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = bytes[0];
  let count: number;
  let pos: number;
  if (head === undefined) return undefined;
  if (head >= 0x80 && head <= 0x8f) {
    count = head - 0x80;
    pos = 1;
  } else if (head === 0xde) {
    count = view.getUint16(1);
    pos = 3;
  } else if (head === 0xdf) {
    count = view.getUint32(1);
    pos = 5;
  } else return undefined;
  for (let i = 0; i < count; i++) {
    const keyEnd = skip(bytes, view, pos);
    const valueEnd = skip(bytes, view, keyEnd);
    if (isString(bytes, pos, keyEnd, key)) return bytes.slice(keyEnd, valueEnd);
    pos = valueEnd;
  }
  return undefined;
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
function skip(bytes: Uint8Array, view: DataView, pos: number): number {
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
          pos += 2 + view.getUint8(pos + 1);
          break;
        case 0xc5:
        case 0xda:
          pos += 3 + view.getUint16(pos + 1);
          break;
        case 0xc6:
        case 0xdb:
          pos += 5 + view.getUint32(pos + 1);
          break;
        case 0xc7:
          pos += 3 + view.getUint8(pos + 1);
          break;
        case 0xc8:
          pos += 4 + view.getUint16(pos + 1);
          break;
        case 0xc9:
          pos += 6 + view.getUint32(pos + 1);
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
          pending += view.getUint16(pos + 1);
          pos += 3;
          break;
        case 0xdd:
          pending += view.getUint32(pos + 1);
          pos += 5;
          break;
        case 0xde:
          pending += 2 * view.getUint16(pos + 1);
          pos += 3;
          break;
        case 0xdf:
          pending += 2 * view.getUint32(pos + 1);
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
