/**
 * The codec: values to stored bytes and back (msgpack with Spool's extensions), error
 * serialization, and payload codecs such as encryption at rest.
 */

export {
  deserializeError,
  ERROR_SHRINK_LEVELS,
  isSerializedError,
  type SerializedError,
  serializeError,
  shrinkSerializedError,
} from "./error-serialization.ts";
export { decodeValue, encodeValue, sameEncodedValue } from "./msgpack-codec.ts";
export {
  aesGcmCodec,
  DataConverter,
  type DataConverterOptions,
  DEFAULT_MAX_PAYLOAD_BYTES,
  type PayloadCodec,
} from "./payload-codec.ts";
