/**
 * The value codec: every payload (inputs, results, signal payloads, errors) becomes msgpack bytes
 * and comes back deeply equal, including the JavaScript values plain msgpack loses: `undefined`,
 * `-0`, `BigInt`, `Date` (invalid ones too), `Map`, `Set`, typed arrays, `ArrayBuffer`, errors,
 * null-prototype objects and own `__proto__` keys.
 *
 * How it works, and why:
 * 1. One walk (`prepareValue`, in `msgpack-walk.ts`) checks the value and names the path of anything that cannot be stored
 *    (functions, symbols, class instances, cycles). msgpack writes `undefined` as nil and `-0` as
 *    the integer 0 without consulting extensions, so the walk swaps them for marker objects
 *    (`msgpack-extensions.ts`); it also turns each Map, Set, error and unusual object into a box holding its prepared contents.
 *    Objects are copied only on the path to something it replaced; plain data is not copied.
 * 2. `@msgpack/msgpack` encodes the result with {@link spoolExtensions}, a single dispatcher that
 *    returns `null` at once for plain objects and arrays (the library consults the extension codec
 *    for every object before treating it as a map or array).
 * 3. Boxes nest: a Map's entries are encoded by a second Encoder from a per-depth pool, so no
 *    Encoder is re-entered mid-encode (the library would otherwise clone one, 2 KiB buffer and all,
 *    per nested call).
 */

import { Decoder, Encoder, ExtData, ExtensionCodec, type ExtensionCodecType } from "@msgpack/msgpack";
import { ValidationError } from "../errors.ts";
import { deserializeError, type SerializedError } from "./error-serialization.ts";
import {
  Box,
  corrupt,
  decodeBigInt,
  decodeBinary,
  EXT,
  EXT_TIMESTAMP,
  encodeBigInt,
  encodeBinary,
  encodeDate,
} from "./msgpack-extensions.ts";
import { MAX_DEPTH, prepareValue } from "./msgpack-walk.ts";

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
    if (object instanceof Box) return object.toExt(encodePrepared);
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
  return encodePrepared(prepareValue(value, what));
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
