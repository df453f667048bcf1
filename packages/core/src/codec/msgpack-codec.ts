/**
 * The value codec: every payload (inputs, results, signal payloads, errors) becomes msgpack bytes
 * and comes back deeply equal, including the JavaScript values plain msgpack loses: `undefined`,
 * `-0`, `BigInt`, `Date` (invalid ones too), `Map`, `Set`, typed arrays, `ArrayBuffer`, errors,
 * null-prototype objects and own `__proto__` keys.
 *
 * How it works, and why:
 * 1. One walk (`prepare`) checks the value and names the path of anything that cannot be stored
 *    (functions, symbols, class instances, cycles). msgpack writes `undefined` as nil and `-0` as
 *    the integer 0 without consulting extensions, so the walk swaps them for marker objects; it
 *    also turns each Map, Set, error and unusual object into a box holding its prepared contents.
 *    Objects are copied only on the path to something it replaced; plain data is not copied.
 * 2. `@msgpack/msgpack` encodes the result with {@link spoolExtensions}, a single dispatcher that
 *    returns `null` at once for plain objects and arrays (the library consults the extension codec
 *    for every object before treating it as a map or array).
 * 3. Boxes nest: a Map's entries are encoded by a second Encoder from a per-depth pool, so no
 *    Encoder is re-entered mid-encode (the library would otherwise clone one, 2 KiB buffer and all,
 *    per nested call).
 */

import { Decoder, Encoder, ExtData, ExtensionCodec, type ExtensionCodecType } from "@msgpack/msgpack";
import { ValidationError, type ValidationIssue } from "../errors.ts";
import { deserializeError, type SerializedError, serializeError } from "./error-serialization.ts";

/** Extension type numbers. Stored in history: never renumber, only add. */
const EXT = {
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
const EXT_TIMESTAMP = -1;

const PLAIN_DATA =
  "Pass plain data: objects, arrays, strings, numbers, booleans, null, undefined, Date, Map, Set, BigInt, " +
  "Uint8Array, Error";

/** Depth at which the walk gives up; well below the JS stack limit. */
const MAX_DEPTH = 256;

// ---------------------------------------------------------------------------------------------
// Markers and boxes produced by the walk and consumed by the extension encoder.

/** Something the extension encoder writes as one extension value. */
abstract class Box {
  abstract toExt(): ExtData;
}

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
const UNDEFINED = new Marker(new ExtData(EXT.undefined, EMPTY));
const NEGATIVE_ZERO = new Marker(new ExtData(EXT.negativeZero, EMPTY));

/** Holds already-prepared contents that are encoded as a nested msgpack value. */
class NestedBox extends Box {
  private readonly type: number;
  private readonly contents: unknown;
  constructor(type: number, contents: unknown) {
    super();
    this.type = type;
    this.contents = contents;
  }
  toExt(): ExtData {
    return new ExtData(this.type, encodePrepared(this.contents));
  }
}

// ---------------------------------------------------------------------------------------------
// The walk.

type PathSegment = string | number | { label: string; key: string | number };

interface Walk {
  /** Names the payload in error messages; its first word roots the path (see rootOf). */
  what: string;
  /** Objects on the current path, for cycle detection. */
  ancestors: object[];
  path: PathSegment[];
  /** Inside an error's details: replace what cannot be stored by a description instead of failing. */
  lenient: boolean;
}

function prepare(v: unknown, w: Walk, depth: number): unknown {
  switch (typeof v) {
    case "string":
    case "boolean":
    case "bigint":
      return v;
    case "number":
      return v === 0 && 1 / v < 0 ? NEGATIVE_ZERO : v;
    case "undefined":
      return UNDEFINED;
    case "object":
      return v === null ? v : prepareObject(v, w, depth);
    default:
      return unsupported(w, v, typeof v === "function" ? "is a function" : "is a symbol");
  }
}

function prepareObject(v: object, w: Walk, depth: number): unknown {
  if (depth > MAX_DEPTH) {
    return unsupported(w, v, `is nested more than ${MAX_DEPTH} levels deep`);
  }
  if (w.ancestors.includes(v)) {
    // ancestors[k] sits at path[0..k), as every container pushes itself once and each child one segment.
    const at = w.ancestors.indexOf(v);
    return unsupported(w, v, `refers back to ${formatPath(rootOf(w), w.path.slice(0, at))} (a cycle)`);
  }
  if (Array.isArray(v)) return prepareArray(v, w, depth);
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype) return preparePlainObject(v as Record<string, unknown>, w, depth);
  if (proto === null) return prepareEntries(v as Record<string, unknown>, w, depth, true);
  if (v instanceof Date || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
  if (v instanceof Map) return prepareMap(v, w, depth);
  if (v instanceof Set) return prepareSet(v, w, depth);
  if (v instanceof Error) return prepareError(v, w, depth);
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  const shown = typeof name === "string" && name !== "" ? `class ${name}` : Object.prototype.toString.call(v);
  return unsupported(
    w,
    v,
    `is an instance of ${shown}, whose prototype and methods would be lost. ` +
      "Convert it to plain data first (e.g. an object literal or a toJSON() result)",
  );
}

// Each container below pushes itself on `ancestors` for its children and pops when done. An
// exception abandons the whole walk, so no try/finally is needed (and none is paid for).

function prepareArray(arr: unknown[], w: Walk, depth: number): unknown[] {
  w.ancestors.push(arr);
  let out: unknown[] | undefined;
  const n = arr.length;
  for (let i = 0; i < n; i++) {
    const item = arr[i];
    w.path.push(i);
    const p = prepare(item, w, depth + 1);
    w.path.pop();
    if (out === undefined && !Object.is(p, item)) out = arr.slice(0, i);
    if (out !== undefined) out.push(p);
  }
  w.ancestors.pop();
  return out ?? arr;
}

function preparePlainObject(obj: Record<string, unknown>, w: Walk, depth: number): unknown {
  // msgpack's decoder rejects a `__proto__` key, so such objects travel as an entry list.
  if (Object.hasOwn(obj, "__proto__")) return prepareEntries(obj, w, depth, false);
  const keys = Object.keys(obj);
  w.ancestors.push(obj);
  let out: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const value = obj[key];
    w.path.push(key);
    const p = prepare(value, w, depth + 1);
    w.path.pop();
    if (out === undefined && !Object.is(p, value)) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j] as string] = obj[keys[j] as string];
    }
    if (out !== undefined) out[key] = p;
  }
  w.ancestors.pop();
  return out ?? obj;
}

function prepareEntries(obj: Record<string, unknown>, w: Walk, depth: number, nullProto: boolean): NestedBox {
  w.ancestors.push(obj);
  const flat: unknown[] = [nullProto];
  for (const key of Object.keys(obj)) {
    w.path.push(key);
    flat.push(key, prepare(obj[key], w, depth + 1));
    w.path.pop();
  }
  w.ancestors.pop();
  return new NestedBox(EXT.object, flat);
}

function prepareMap(map: Map<unknown, unknown>, w: Walk, depth: number): NestedBox {
  w.ancestors.push(map);
  const flat: unknown[] = [];
  let i = 0;
  for (const [key, value] of map) {
    w.path.push({ label: `<Map key #${i}>`, key: i });
    flat.push(prepare(key, w, depth + 1));
    w.path.pop();
    w.path.push({
      label: `.get(${describeKey(key)})`,
      key: typeof key === "string" || typeof key === "number" ? key : i,
    });
    flat.push(prepare(value, w, depth + 1));
    w.path.pop();
    i++;
  }
  w.ancestors.pop();
  return new NestedBox(EXT.map, flat);
}

function prepareSet(set: Set<unknown>, w: Walk, depth: number): NestedBox {
  w.ancestors.push(set);
  const items: unknown[] = [];
  let i = 0;
  for (const item of set) {
    w.path.push({ label: `<Set item #${i}>`, key: i });
    items.push(prepare(item, w, depth + 1));
    w.path.pop();
    i++;
  }
  w.ancestors.pop();
  return new NestedBox(EXT.set, items);
}

function prepareError(err: Error, w: Walk, depth: number): NestedBox {
  // Error details are diagnostics (an HTTP client's error may hold sockets and functions): keep
  // what can be stored, describe the rest, and never lose the error itself.
  const lenient = w.lenient;
  w.lenient = true;
  w.ancestors.push(err);
  w.path.push({ label: "<error>", key: "<error>" });
  const fields = prepare(serializeError(err), w, depth + 1);
  w.path.pop();
  w.ancestors.pop();
  w.lenient = lenient;
  return new NestedBox(EXT.error, fields);
}

function unsupported(w: Walk, v: unknown, problem: string): string {
  if (w.lenient) return `[unserializable: ${describeValue(v)}]`;
  const where = formatPath(rootOf(w), w.path);
  const issuePath = w.path.map((s) => (typeof s === "object" ? s.key : s));
  const message = `${w.what} cannot be stored: ${where} ${problem}. ${PLAIN_DATA}.`;
  const issue: ValidationIssue = { path: issuePath, message: `${problem}` };
  throw new ValidationError(message, [issue]);
}

function describeValue(v: unknown): string {
  if (typeof v === "function") return `function ${v.name || "(anonymous)"}`;
  if (typeof v === "symbol") return v.toString();
  const name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === "string" && name !== "" ? `${name} instance` : Object.prototype.toString.call(v);
}

function describeKey(key: unknown): string {
  if (typeof key === "string") return JSON.stringify(key);
  if (typeof key === "number" || typeof key === "boolean" || key === null || key === undefined)
    return String(key);
  if (typeof key === "bigint") return `${key}n`;
  return "<object key>";
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function formatPath(root: string, path: readonly PathSegment[]): string {
  let out = root;
  for (const s of path) {
    if (typeof s === "number") out += `[${s}]`;
    else if (typeof s === "string") out += IDENTIFIER.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
    else out += s.label;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Leaf encodings.

function encodeBigInt(n: bigint): Uint8Array {
  const negative = n < 0n;
  let hex = (negative ? -n : n).toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const out = new Uint8Array(1 + hex.length / 2);
  out[0] = negative ? 1 : 0;
  for (let i = 0; i < hex.length / 2; i++) out[i + 1] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function decodeBigInt(data: Uint8Array): bigint {
  let hex = "";
  for (let i = 1; i < data.length; i++) hex += (data[i] as number).toString(16).padStart(2, "0");
  const magnitude = hex === "" ? 0n : BigInt(`0x${hex}`);
  return data[0] === 1 ? -magnitude : magnitude;
}

function encodeDate(d: Date): Uint8Array {
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

function encodeBinary(v: ArrayBufferView | ArrayBuffer): Uint8Array {
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

function decodeBinary(data: Uint8Array): unknown {
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

// ---------------------------------------------------------------------------------------------
// The extension codec.

const fallbackCodec = new ExtensionCodec();

/**
 * The extension dispatcher used by Spool's Encoders and Decoders. It implements the library's
 * `ExtensionCodecType` directly rather than registering one encoder per type on an
 * `ExtensionCodec`, which would call every registered encoder (and msgpack's timestamp encoder)
 * for every object and array in the payload.
 */
const spoolExtensions: ExtensionCodecType<undefined> = {
  tryToEncode(object: unknown): ExtData | null {
    if (typeof object === "bigint") return new ExtData(EXT.bigint, encodeBigInt(object));
    const proto = Object.getPrototypeOf(object);
    if (proto === Object.prototype || proto === Array.prototype) return null;
    if (object instanceof Box) return object.toExt();
    if (object instanceof Date) return new ExtData(EXT.date, encodeDate(object));
    if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
      return new ExtData(EXT.binary, encodeBinary(object));
    }
    return null;
  },
  decode(data: Uint8Array, type: number): unknown {
    switch (type) {
      case EXT.undefined:
        return undefined;
      case EXT.negativeZero:
        return -0;
      case EXT.bigint:
        return decodeBigInt(data);
      case EXT.date:
        return new Date(new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(0));
      case EXT.map: {
        const flat = decodeNested(data) as unknown[];
        const map = new Map<unknown, unknown>();
        for (let i = 0; i < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
        return map;
      }
      case EXT.set:
        return new Set(decodeNested(data) as unknown[]);
      case EXT.binary:
        return decodeBinary(data);
      case EXT.error:
        return deserializeError(decodeNested(data) as SerializedError);
      case EXT.object: {
        const flat = decodeNested(data) as unknown[];
        const obj: Record<string, unknown> = flat[0] === true ? Object.create(null) : {};
        for (let i = 1; i < flat.length; i += 2) {
          Object.defineProperty(obj, flat[i] as string, {
            value: flat[i + 1],
            writable: true,
            enumerable: true,
            configurable: true,
          });
        }
        return obj;
      }
      case EXT_TIMESTAMP:
        return fallbackCodec.decode(data, type, undefined);
      default:
        throw corrupt(`unknown extension type ${type} (written by a newer version of Spool?)`);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Encoder and decoder pools: index = nesting level, so no instance is re-entered.

const encoders: Encoder[] = [];
const decoders: Decoder[] = [];
let encodeLevel = 0;
let decodeLevel = 0;

function encodePrepared(v: unknown): Uint8Array {
  let encoder = encoders[encodeLevel];
  if (encoder === undefined) {
    // maxDepth is per nesting level; the walk already bounds the total depth.
    encoder = new Encoder({ extensionCodec: spoolExtensions, maxDepth: MAX_DEPTH + 8 });
    encoders[encodeLevel] = encoder;
  }
  encodeLevel++;
  try {
    return encoder.encode(v);
  } finally {
    encodeLevel--;
  }
}

function decodeNested(bytes: Uint8Array): unknown {
  let decoder = decoders[decodeLevel];
  if (decoder === undefined) {
    decoder = new Decoder({ extensionCodec: spoolExtensions });
    decoders[decodeLevel] = decoder;
  }
  decodeLevel++;
  try {
    return decoder.decode(bytes);
  } finally {
    decodeLevel--;
  }
}

function corrupt(reason: string, cause?: unknown): ValidationError {
  return new ValidationError(
    `payload could not be decoded: ${reason}. The bytes are corrupt, were not written by Spool's codec, ` +
      "or need a payload codec (e.g. decryption) that is not configured.",
    [],
    { cause },
  );
}

const LEADING_WORD = /^[A-Za-z_$][\w$]*/;

/** The first word of `what`, which roots error paths; worked out only when an error needs it. */
function rootOf(w: Walk): string {
  return LEADING_WORD.exec(w.what)?.[0] ?? "value";
}

/**
 * Encodes a value to msgpack bytes that {@link decodeValue} turns back into a deeply equal value.
 *
 * Stores plain objects and arrays, strings, numbers (NaN, ±Infinity and -0 included), booleans,
 * null, undefined (as a property value and in arrays too; array holes become undefined), BigInt,
 * Date (invalid too), Map (any keys, order kept), Set, Uint8Array and the other typed arrays,
 * DataView, ArrayBuffer, null-prototype objects, and errors (rehydrated with their class; see
 * {@link serializeError}). Subclasses of Map, Set, Date and typed arrays (e.g. Node's Buffer) come
 * back as the base class; objects shared in several places come back as separate copies; as in
 * JSON, symbol-keyed and non-enumerable properties are skipped.
 *
 * @param what - names the payload in error messages, e.g. `input of activity "payments.charge"`;
 *   its first word roots the path (`input.items[2].fn`).
 * @throws {@link ValidationError} for functions, symbols, class instances, cycles and nesting over
 *   256 levels, naming the path. Inside an error's fields such values are replaced by a description
 *   instead, so a failure is always recorded.
 *
 * @example
 * ```ts
 * const bytes = encodeValue({ at: new Date(), tags: new Set(["a"]), total: 10n });
 * decodeValue(bytes); // { at: Date, tags: Set {"a"}, total: 10n }
 * ```
 */
export function encodeValue(value: unknown, what = "value"): Uint8Array {
  const walk: Walk = {
    what,
    ancestors: [],
    path: [],
    lenient: false,
  };
  return encodePrepared(prepare(value, walk, 0));
}

/**
 * True when two values are equal as stored: the same msgpack bytes ({@link encodeValue} is
 * deterministic for equal values). How replay compares recorded inputs and how a client
 * cross-checks a stored result against history.
 */
export function sameEncodedValue(a: unknown, b: unknown): boolean {
  const x = encodeValue(a);
  const y = encodeValue(b);
  if (x.byteLength !== y.byteLength) return false;
  for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Decodes bytes written by {@link encodeValue}. The result shares no memory with `bytes`.
 *
 * @throws {@link ValidationError} when the bytes are not a valid payload (truncated, corrupt, or
 *   still encrypted); the library's error is the `cause`.
 *
 * @example
 * ```ts
 * const value = decodeValue(encodeValue(new Map([[1, "one"]])));
 * ```
 */
export function decodeValue(bytes: Uint8Array): unknown {
  try {
    return decodeNested(bytes);
  } catch (e) {
    if (ValidationError.is(e)) throw e;
    throw corrupt(e instanceof Error ? e.message : String(e), e);
  }
}
