/**
 * The codec's binary layout, defined once: the tag of each kind of value
 * and where the fields of its body sit. The encoder (`_encode.ts`) writes
 * it, the decoder (`_decode.ts`) reads it.
 *
 * Layout: one tag byte per value, then its body, little-endian.
 *
 * | tag | value | body |
 * | --- | --- | --- |
 * | 0x80-0xff | integer 0..127 | none |
 * | 0 / 1 / 2 / 3 | undefined / null / false / true | none |
 * | 4 | int32 | 4 bytes |
 * | 5 | float64 | 8 bytes |
 * | 6 | string, up to 255 UTF-8 bytes | u8 length, UTF-8 |
 * | 7 | string | u32 length, UTF-8 |
 * | 8 | bigint in int64 | 8 bytes |
 * | 9 | bigint | u8 sign, varint word count, u64 words |
 * | 10 | dense array, no other own keys | varint length, items |
 * | 11 | object (plain or not: own enumerable keys) | (string, value) pairs, then a 0 byte |
 * | 12 | typed array / DataView over all of a buffer not met before | u8 kind, u32 byte length, padding, bytes |
 * | 13 | ArrayBuffer | u32 byte length, padding, bytes |
 * | 14 | a repeat of an object seen before | varint index |
 * | 15 | (unused) | |
 * | 16 | string with lone surrogates | u32 length, UTF-16 units |
 * | 17 | any other typed array / DataView | u8 kind, varint byte offset, varint byte length, its buffer (a value) |
 * | 18 | resizable ArrayBuffer | u32 max byte length, u32 byte length, padding, bytes |
 * | 19 | sparse array, or with other own keys | varint length, varint key count, (string, value) pairs |
 * | 20 / 21 | Map / Set | varint size, keys and values / items |
 * | 22 | Date | float64 time |
 * | 23 | RegExp | source, flags (strings) |
 * | 24 | Boolean / Number / String / BigInt object | its primitive (a value) |
 * | 25 | Error | u8 kind, u8 has (1 message, 2 stack, 4 cause), [name,] message, stack, cause |
 *
 * Padding: a u8 count then that many zero bytes, so that raw bytes start
 * 8-aligned from the start of the encoding.
 *
 * Objects are numbered in the order they are met (a typed array of tag 12
 * takes two numbers: itself, then its buffer), so repeats and cycles come
 * back as the same object, as structured clone does.
 *
 * @module
 */

export const T_UNDEFINED = 0;
export const T_NULL = 1;
export const T_FALSE = 2;
export const T_TRUE = 3;
export const T_INT32 = 4;
export const T_FLOAT64 = 5;
export const T_STR8 = 6;
export const T_STR32 = 7;
export const T_BIGINT64 = 8;
export const T_BIGINT = 9;
export const T_ARRAY = 10;
export const T_OBJECT = 11;
export const T_TYPED = 12;
export const T_ARRAYBUFFER = 13;
export const T_REF = 14;
export const T_STR16 = 16;
export const T_VIEW = 17;
export const T_RESIZABLE = 18;
export const T_ARRAY_EX = 19;
export const T_MAP = 20;
export const T_SET = 21;
export const T_DATE = 22;
export const T_REGEXP = 23;
export const T_BOXED = 24;
export const T_ERROR = 25;
/** Ends a plain object's entries (where a key's string tag would be). */
export const T_END = 0;
export const T_SMALLINT = 0x80;

/** Typed arrays at least this big are copied straight from the caller's memory. */
export const RAW_MIN = 4096;

/**
 * A raw body (tags 12, 13, 18) after its tag and fields: a u32 byte length,
 * a u8 pad count, the pad, then the bytes, which start `RAW_ALIGN`-aligned.
 */
export const RAW_LENGTH_BYTES = 4;
/** The u32 length and the u8 pad count of a raw body. */
export const RAW_COUNTS_BYTES = RAW_LENGTH_BYTES + 1;
/** Raw bytes start this aligned from the start of the encoding. */
export const RAW_ALIGN = 8;
/** Where a tag-12 value's kind byte sits; its raw body follows. */
export const TYPED_KIND_AT = 1;
/** Where a tag-12 value's raw body starts. */
export const TYPED_RAW_AT = TYPED_KIND_AT + 1;
/** Where a tag-13 value's raw body starts. */
export const BUFFER_RAW_AT = 1;
/** The most bytes before a raw value's bytes: tag, kind, u32 max, counts, pad. */
export const RAW_HEAD_MAX = TYPED_RAW_AT + 4 + RAW_COUNTS_BYTES + RAW_ALIGN - 1;
/** Bytes of the encoding that `rawPlan` needs to see: a tag-12 head up to its pad. */
export const RAW_HEAD = TYPED_RAW_AT + RAW_COUNTS_BYTES;

export type TypedCtor = {
  new (
    buffer: ArrayBuffer,
    byteOffset: number,
    length: number,
  ): ArrayBufferView;
  BYTES_PER_ELEMENT: number;
};

export const KINDS: [string, TypedCtor | undefined][] = [
  ["Int8Array", Int8Array],
  ["Uint8Array", Uint8Array],
  ["Uint8ClampedArray", Uint8ClampedArray],
  ["Int16Array", Int16Array],
  ["Uint16Array", Uint16Array],
  ["Int32Array", Int32Array],
  ["Uint32Array", Uint32Array],
  ["Float32Array", Float32Array],
  ["Float64Array", Float64Array],
  ["BigInt64Array", BigInt64Array],
  ["BigUint64Array", BigUint64Array],
  [
    "Float16Array",
    (globalThis as unknown as { Float16Array?: TypedCtor }).Float16Array,
  ],
  ["DataView", undefined],
];
export const KIND_OF = new Map<string, number>(
  KINDS.map(([name], i) => [name, i]),
);
export const DATAVIEW_KIND = KINDS.length - 1;

/** Error constructors by kind (structured clone keeps only these prototypes). */
export const ERRORS: ErrorConstructor[] = [
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
];
export const ERROR_KIND = new Map<string, number>(
  ERRORS.map((ctor, i) => [ctor.name, i]),
);
/** The error kind of a DOMException (kept as one, with its name). */
export const DOM_EXCEPTION = ERRORS.length;
