/**
 * Values as the module's codec bytes, for what crosses Redis: loaded by the
 * pool's children too, so it imports nothing but the codec.
 *
 * @module
 */

import { Decoder, Encoder } from "../wire/_codec.ts";

const encoder = new Encoder();
const decoder = new Decoder();

/** The codec's bytes of `value`, in a buffer from `alloc`. */
export function encodeWith<B extends Uint8Array>(
  value: unknown,
  alloc: (n: number) => B,
): B {
  const n = encoder.encode(value);
  const b = alloc(n);
  encoder.copyTo(b, 0, 0, n);
  return b;
}

/** The value in codec bytes `b`. */
export function decodeBytes(b: Uint8Array): unknown {
  return decoder.decode(b, 0, b.length);
}
