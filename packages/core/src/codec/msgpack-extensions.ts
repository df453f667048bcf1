/**
 * Spool's msgpack extension types: their numbers (stored in history, so never renumbered), the
 * markers and boxes the walk leaves for the extension encoder, and the byte layouts of the leaf
 * types plain msgpack cannot hold (BigInt, Date, typed arrays and ArrayBuffer).
 */
import { ExtData } from "@msgpack/msgpack";
import { ValidationError } from "../errors.ts";

/** Extension type numbers. Stored in history: never renumber, only add. */
export const EXT = {
  undefined: 0,
  negativeZero: 1,
  bigint: 2,
  date: 3,
  map: 4,
  set: 5,
  binary: 6,
  error: 7,
  object: 8,
} as const;

/** msgpack's own timestamp extension, decoded for data written by other msgpack producers. */
export const EXT_TIMESTAMP = -1;

// ---------------------------------------------------------------------------------------------
// Markers and boxes produced by the walk and consumed by the extension encoder.

/**
 * Something the extension encoder writes as one extension value. `encodeNested` encodes a box's
 * prepared contents; it is passed in (by `msgpack-codec.ts`, which owns the Encoder pool) so this
 * module does not depend on the codec that depends on it.
 */
export abstract class Box {
  abstract toExt(encodeNested: (contents: unknown) => Uint8Array): ExtData;
}

/** A fixed extension value with no contents: `undefined` and `-0`, which msgpack would lose. */
class Marker extends Box {
  private readonly ext: ExtData;
  constructor(ext: ExtData) {
    super();
    this.ext = ext;
  }
  toExt(): ExtData {
    return this.ext;
  }
}

const EMPTY = new Uint8Array(0);
/** Stands for `undefined` (msgpack would write nil). */
export const UNDEFINED = new Marker(new ExtData(EXT.undefined, EMPTY));
/** Stands for `-0` (msgpack would write the integer 0). */
export const NEGATIVE_ZERO = new Marker(new ExtData(EXT.negativeZero, EMPTY));

/** Holds already-prepared contents that are encoded as a nested msgpack value. */
export class NestedBox extends Box {
  private readonly type: number;
  private readonly contents: unknown;
  constructor(type: number, contents: unknown) {
    super();
    this.type = type;
    this.contents = contents;
  }
  toExt(encodeNested: (contents: unknown) => Uint8Array): ExtData {
    return new ExtData(this.type, encodeNested(this.contents));
  }
}

// ---------------------------------------------------------------------------------------------
// Leaf encodings.

/** BigInt → a sign byte, then the magnitude big-endian. */
export function encodeBigInt(n: bigint): Uint8Array {
  const negative = n < 0n;
  let hex = (negative ? -n : n).toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const out = new Uint8Array(1 + hex.length / 2);
  out[0] = negative ? 1 : 0;
  for (let i = 0; i < hex.length / 2; i++) out[i + 1] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The inverse of {@link encodeBigInt}. */
export function decodeBigInt(data: Uint8Array): bigint {
  let hex = "";
  for (let i = 1; i < data.length; i++) hex += (data[i] as number).toString(16).padStart(2, "0");
  const magnitude = hex === "" ? 0n : BigInt(`0x${hex}`);
  return data[0] === 1 ? -magnitude : magnitude;
}

/** Date → its getTime() as a float64. */
export function encodeDate(d: Date): Uint8Array {
  // A float64 of getTime() keeps invalid dates (NaN); msgpack's timestamp would turn them into 1970.
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, d.getTime());
  return out;
}

/** Binary kinds, the first byte of a binary extension. Stored: never renumber. */
const BINARY_KINDS = [
  Uint8Array,
  ArrayBuffer,
  DataView,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const;

type TypedArrayClass = Exclude<(typeof BINARY_KINDS)[number], ArrayBufferConstructor | DataViewConstructor>;

/** Typed arrays are stored little-endian; byte-swapped on the rare big-endian host. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/** A typed array, DataView or ArrayBuffer → its kind byte, then its bytes little-endian. */
export function encodeBinary(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  let kind = 0;
  let view: Uint8Array;
  let elementSize = 1;
  if (v instanceof ArrayBuffer) {
    kind = 1;
    view = new Uint8Array(v);
  } else {
    view = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (v instanceof DataView) kind = 2;
    else if (!(v instanceof Uint8Array)) {
      kind = BINARY_KINDS.findIndex((cls) => v instanceof cls);
      elementSize = (v as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    }
  }
  const out = new Uint8Array(1 + view.length);
  out[0] = kind;
  out.set(view, 1);
  if (!LITTLE_ENDIAN && elementSize > 1) swapBytes(out.subarray(1), elementSize);
  return out;
}

/** The inverse of {@link encodeBinary}; a copy that shares no memory with `data`. */
export function decodeBinary(data: Uint8Array): unknown {
  const kind = data[0] as number;
  // A copy into a plain Uint8Array: msgpack hands out views into the input buffer, which the
  // caller may reuse, and `slice` on a Node Buffer would be a Buffer view, not a copy.
  const bytes = new Uint8Array(data.length - 1);
  bytes.set(data.subarray(1));
  switch (kind) {
    case 0:
      return bytes;
    case 1:
      return bytes.buffer;
    case 2:
      return new DataView(bytes.buffer);
  }
  const cls = BINARY_KINDS[kind] as TypedArrayClass | undefined;
  if (cls === undefined) throw corrupt(`unknown binary kind ${kind}`);
  if (!LITTLE_ENDIAN && cls.BYTES_PER_ELEMENT > 1) swapBytes(bytes, cls.BYTES_PER_ELEMENT);
  return new cls(bytes.buffer);
}

/** The error for bytes that are not a valid payload. */
export function corrupt(reason: string, cause?: unknown): ValidationError {
  return new ValidationError(
    `payload could not be decoded: ${reason}. The bytes are corrupt, were not written by Spool's codec, ` +
      "or need a payload codec (e.g. decryption) that is not configured.",
    [],
    { cause },
  );
}
