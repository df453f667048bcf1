/**
 * The payload pipeline between values and stored bytes: msgpack (see `msgpack-codec.ts`), then an
 * optional {@link PayloadCodec} (encryption, compression), then the size limit. Also ships
 * {@link aesGcmCodec}, encryption at rest with WebCrypto.
 */

import { InvalidOptionsError, PayloadTooLargeError, ValidationError } from "../errors.ts";
import { ERROR_SHRINK_LEVELS, type SerializedError, shrinkSerializedError } from "./error-serialization.ts";
import { decodeValue, encodeValue } from "./msgpack-codec.ts";

/**
 * A hook that wraps every stored payload, e.g. encryption at rest or compression. `decode` must
 * invert `encode`. Either may be async; a synchronous codec keeps the engine on its sync path.
 *
 * @example
 * ```ts
 * const codec: PayloadCodec = { name: "identity", encode: (b) => b, decode: (b) => b };
 * ```
 */
export interface PayloadCodec {
  /** Shown in error messages. */
  readonly name?: string;
  encode(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decode(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** Options of {@link DataConverter}. */
export interface DataConverterOptions {
  /** Wraps every payload after msgpack encoding. */
  codec?: PayloadCodec;
  /** Largest stored payload, in bytes, after the codec. Default 2 MiB. */
  maxPayloadBytes?: number;
}

/** The default payload limit: 2 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;

/**
 * Turns values into stored bytes and back: `codec(msgpack(value))`, with a size limit.
 *
 * Use `encode`/`decode` in general; when `isSync` is true (no codec configured) the engine can use
 * `encodeSync`/`decodeSync` and skip a promise per payload.
 *
 * @throws {@link InvalidOptionsError} from the constructor for a `maxPayloadBytes` that is not a
 *   positive whole number.
 *
 * @example
 * ```ts
 * const converter = new DataConverter({ maxPayloadBytes: 1024 * 1024 });
 * const bytes = await converter.encode({ orderId: 42 }, 'input of activity "payments.charge"');
 * const value = await converter.decode(bytes);
 * ```
 */
export class DataConverter {
  readonly codec: PayloadCodec | undefined;
  readonly maxPayloadBytes: number;
  /** True when no codec is configured, so the sync methods always work. */
  readonly isSync: boolean;

  constructor(options: DataConverterOptions = {}) {
    const max = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new InvalidOptionsError(
        `invalid maxPayloadBytes: ${String(max)}. Use a positive whole number of bytes, e.g. 2 * 1024 * 1024.`,
      );
    }
    this.codec = options.codec;
    this.maxPayloadBytes = max;
    this.isSync = options.codec === undefined;
  }

  /**
   * Encodes `value` for storage.
   *
   * @param what - names the payload in errors, e.g. `input of activity "payments.charge"`.
   * @throws {@link ValidationError} when the value holds something that cannot be stored (see
   *   `encodeValue`); {@link PayloadTooLargeError} when the final bytes exceed `maxPayloadBytes`.
   */
  async encode(value: unknown, what: string): Promise<Uint8Array> {
    const raw = encodeValue(value, what);
    if (this.codec === undefined) return this.checkSize(raw, what);
    return this.checkSize(checkCodecOutput(await this.codec.encode(raw), this.codec, "encode"), what);
  }

  /**
   * The second half of {@link DataConverter.encode}, for msgpack bytes made by `encodeValue`: the
   * codec, then the size limit. Lets a value serialized once be stored in several payloads (an
   * event body and a field of it cut out of the same bytes).
   *
   * @throws {@link PayloadTooLargeError} when the final bytes exceed `maxPayloadBytes`.
   */
  async seal(msgpack: Uint8Array, what: string): Promise<Uint8Array> {
    if (this.codec === undefined) return this.checkSize(msgpack, what);
    return this.checkSize(checkCodecOutput(await this.codec.encode(msgpack), this.codec, "encode"), what);
  }

  /**
   * Synchronous {@link DataConverter.seal}.
   *
   * @throws {@link ConfigurationError} when the codec is asynchronous, plus everything `seal` throws.
   */
  sealSync(msgpack: Uint8Array, what: string): Uint8Array {
    if (this.codec === undefined) return this.checkSize(msgpack, what);
    return this.checkSize(syncResult(this.codec.encode(msgpack), this.codec, "encode"), what);
  }

  /**
   * Decodes bytes written by {@link DataConverter.encode} with the same codec.
   *
   * @throws {@link ValidationError} when the bytes cannot be decoded (or fail authentication).
   */
  async decode(bytes: Uint8Array): Promise<unknown> {
    if (this.codec === undefined) return decodeValue(bytes);
    return decodeValue(checkCodecOutput(await this.codec.decode(bytes), this.codec, "decode"));
  }

  /**
   * Synchronous {@link DataConverter.encode}, for the engine's hot path.
   *
   * @throws {@link InvalidOptionsError} when the codec is asynchronous (check `isSync` first), plus
   *   everything `encode` throws.
   */
  encodeSync(value: unknown, what: string): Uint8Array {
    return this.sealSync(encodeValue(value, what), what);
  }

  /**
   * Synchronous {@link DataConverter.decode}.
   *
   * @throws {@link InvalidOptionsError} when the codec is asynchronous, plus everything `decode` throws.
   */
  decodeSync(bytes: Uint8Array): unknown {
    if (this.codec === undefined) return decodeValue(bytes);
    return decodeValue(syncResult(this.codec.decode(bytes), this.codec, "decode"));
  }

  /**
   * Encodes a payload that records an error, made to fit: when `wrap(error)` is over
   * `maxPayloadBytes`, the error is recorded in ever smaller forms (see `shrinkSerializedError`:
   * stacks first, then long details and deep causes, then all but name and message head).
   * Returns the bytes and the error as stored, so a caller that keeps the value in memory keeps
   * the same one replay will read.
   *
   * @param wrap - builds the stored value around the error, e.g. `(e) => ({ error: e, attempt })`.
   * @throws {@link PayloadTooLargeError} only when even the smallest form does not fit (a limit of a
   *   few hundred bytes); everything else `encode` throws.
   */
  async encodeError(
    error: SerializedError,
    wrap: (error: SerializedError) => unknown,
    what: string,
  ): Promise<{ bytes: Uint8Array; error: SerializedError }> {
    let current = error;
    for (let level = 1; ; level++) {
      try {
        const value = wrap(current);
        const bytes = this.isSync ? this.encodeSync(value, what) : await this.encode(value, what);
        return { bytes, error: current };
      } catch (err) {
        if (!PayloadTooLargeError.is(err) || level > ERROR_SHRINK_LEVELS) throw err;
        current = shrinkSerializedError(error, level);
      }
    }
  }

  private checkSize(bytes: Uint8Array, what: string): Uint8Array {
    if (bytes.byteLength > this.maxPayloadBytes) {
      throw new PayloadTooLargeError(what, bytes.byteLength, this.maxPayloadBytes);
    }
    return bytes;
  }
}

function codecName(codec: PayloadCodec): string {
  return codec.name === undefined ? "the payload codec" : `payload codec "${codec.name}"`;
}

function checkCodecOutput(out: unknown, codec: PayloadCodec, op: "encode" | "decode"): Uint8Array {
  if (out instanceof Uint8Array) return out;
  throw new InvalidOptionsError(
    `${codecName(codec)} ${op}() returned ${Object.prototype.toString.call(out)}; it must return a Uint8Array ` +
      "(or a promise of one).",
  );
}

function syncResult(
  out: Uint8Array | Promise<Uint8Array>,
  codec: PayloadCodec,
  op: "encode" | "decode",
): Uint8Array {
  if (typeof (out as Partial<Promise<unknown>>).then === "function") {
    // Nobody will await this promise; keep its rejection from surfacing as unhandled.
    (out as Promise<unknown>).then(undefined, () => {});
    throw new InvalidOptionsError(
      `${codecName(codec)} is asynchronous, so ${op}Sync() cannot be used. Check DataConverter.isSync and ` +
        `call ${op}() instead.`,
    );
  }
  return checkCodecOutput(out, codec, op);
}

/** WebCrypto's key type, named through the global so core needs neither DOM types nor node imports. */
type WebCryptoKey = Awaited<ReturnType<typeof globalThis.crypto.subtle.importKey>>;

const AES_GCM_FORMAT_V1 = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A {@link PayloadCodec} that encrypts payloads with AES-GCM (WebCrypto, no Node imports).
 *
 * Layout: 1 format-version byte, a random 12-byte IV, then ciphertext and 16-byte tag. The version
 * byte is authenticated too. The key is copied, so later changes to `key` have no effect.
 *
 * @param key - 16 bytes (AES-128) or 32 bytes (AES-256)
 * @throws {@link InvalidOptionsError} for another key length. `decode` throws
 *   {@link ValidationError} for data encrypted with another key, tampered or truncated.
 *
 * @example
 * ```ts
 * const converter = new DataConverter({ codec: aesGcmCodec(crypto.getRandomValues(new Uint8Array(32))) });
 * ```
 */
export function aesGcmCodec(key: Uint8Array): PayloadCodec {
  if (!(key instanceof Uint8Array) || (key.byteLength !== 16 && key.byteLength !== 32)) {
    const got = key instanceof Uint8Array ? `${key.byteLength} bytes` : Object.prototype.toString.call(key);
    throw new InvalidOptionsError(
      `aesGcmCodec needs a 16-byte (AES-128) or 32-byte (AES-256) key, got ${got}. ` +
        "Generate one with crypto.getRandomValues(new Uint8Array(32)) and keep it in your secret store.",
    );
  }
  const raw = key.slice();
  let cryptoKey: Promise<WebCryptoKey> | undefined;
  const getKey = (): Promise<WebCryptoKey> => {
    cryptoKey ??= globalThis.crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    return cryptoKey;
  };
  const header = new Uint8Array([AES_GCM_FORMAT_V1]);

  return {
    name: `aes-${raw.byteLength * 8}-gcm`,
    async encode(data: Uint8Array): Promise<Uint8Array> {
      const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
      const sealed = await globalThis.crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: header },
        await getKey(),
        asBufferSource(data),
      );
      const out = new Uint8Array(1 + IV_BYTES + sealed.byteLength);
      out[0] = AES_GCM_FORMAT_V1;
      out.set(iv, 1);
      out.set(new Uint8Array(sealed), 1 + IV_BYTES);
      return out;
    },
    async decode(data: Uint8Array): Promise<Uint8Array> {
      if (data.byteLength < 1 + IV_BYTES + TAG_BYTES) {
        throw new ValidationError(
          `payload failed authentication: ${data.byteLength} bytes is too short for an AES-GCM payload ` +
            "(truncated, or not encrypted by aesGcmCodec).",
        );
      }
      if (data[0] !== AES_GCM_FORMAT_V1) {
        throw new ValidationError(
          `payload failed authentication: unknown AES-GCM format version ${data[0]} (expected ${AES_GCM_FORMAT_V1}); ` +
            "the data is corrupted, not encrypted, or written by a newer Spool.",
        );
      }
      let opened: ArrayBuffer;
      try {
        opened = await globalThis.crypto.subtle.decrypt(
          { name: "AES-GCM", iv: data.slice(1, 1 + IV_BYTES), additionalData: header },
          await getKey(),
          data.slice(1 + IV_BYTES),
        );
      } catch (e) {
        throw new ValidationError(
          "payload failed authentication: wrong key or corrupted data. Check that the worker and client use " +
            "the key the payload was written with.",
          [],
          { cause: e },
        );
      }
      return new Uint8Array(opened);
    },
  };
}

/** WebCrypto's types want an ArrayBuffer-backed view; copy only when `data` sits on something else. */
function asBufferSource(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data.buffer instanceof ArrayBuffer ? (data as Uint8Array<ArrayBuffer>) : new Uint8Array(data);
}
