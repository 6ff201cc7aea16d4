/**
 * The typed array that holds each numeric typecode (Python's `array` and
 * `ctypes` letters), for `SharedArray`/`Value` and the manager's `Array`.
 *
 * @module
 */

/** Typecode -> typed array constructor (`l`/`L` are 32-bit: see `sharedctypes.ts`). */
export const TYPECODE_ARRAYS = {
  b: Int8Array,
  B: Uint8Array,
  h: Int16Array,
  H: Uint16Array,
  i: Int32Array,
  I: Uint32Array,
  l: Int32Array,
  L: Uint32Array,
  q: BigInt64Array,
  Q: BigUint64Array,
  f: Float32Array,
  d: Float64Array,
} as const;
