/**
 * The codec, as the rest of the library uses it: {@linkcode Encoder} and
 * {@linkcode Decoder} over the layout of `_layout.ts`.
 *
 * @module
 */

export { Encoder } from "./_encode.ts";
export { EncodeError, notQueueable } from "./_refusals.ts";
export { DecodeError, Decoder, type RawPlan, rawPlan } from "./_decode.ts";
export { RAW_HEAD, RAW_MIN } from "./_layout.ts";
