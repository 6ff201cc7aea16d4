/**
 * Python's typecodes (the `array` and `ctypes` letters): the typed array that
 * holds each numeric one, for `SharedArray`/`Value` and the manager's
 * `Array`, and the checks a manager's factories make before they call.
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

/** Every typecode a manager's `Value` takes (as `array` and ctypes know them). */
export const TYPECODES: readonly string[] = [
  ...Object.keys(TYPECODE_ARRAYS),
  "c",
  "u",
];

/** The typecodes `manager.Array()` takes: Python's `array` ones. */
export const ARRAY_TYPECODES: readonly string[] = [
  ...Object.keys(TYPECODE_ARRAYS),
  "u",
];

/** Checks an Array typecode; the error lists the valid ones. */
export function checkArrayTypecode(typecode: unknown): string {
  if (typeof typecode === "string" && ARRAY_TYPECODES.includes(typecode)) {
    return typecode;
  }
  let shown: string;
  try {
    shown = typeof typecode === "string"
      ? JSON.stringify(typecode).slice(0, 60)
      : String(typecode);
  } catch {
    shown = typeof typecode;
  }
  throw new TypeError(
    `unknown Array typecode ${shown}: use one of ${
      ARRAY_TYPECODES.join(" ")
    } (q and Q hold bigints, u one-character strings)${
      typecode === "c"
        ? "; Python's array has no 'c' either: use 'B' for bytes or 'u' for characters"
        : ""
    }`,
  );
}
