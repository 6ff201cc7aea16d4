/**
 * The queues' wire format: a compact binary encoding of the common types
 * (numbers, strings, booleans, null/undefined, bigint, arrays and plain
 * objects of them, typed arrays and ArrayBuffers copied raw), falling back
 * to V8's structured-clone serializer (`node:v8`) only for the rest (Map,
 * Set, Date, RegExp, Error, class instances, sparse arrays, ...).
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
 * | 10 | array | varint length, items |
 * | 11 | plain object | (string, value) pairs, then a 0 byte |
 * | 12 | typed array / DataView | u8 kind, u32 byte length, padding, bytes |
 * | 13 | ArrayBuffer | u32 byte length, padding, bytes |
 * | 14 | a repeat of an object seen before | varint index |
 * | 15 | anything else | u32 length, `node:v8` serialization |
 * | 16 | string with lone surrogates | u32 length, UTF-16 units |
 *
 * Padding: a u8 count then that many zero bytes, so that raw bytes start
 * 8-aligned from the start of the encoding.
 *
 * Objects (arrays, plain objects, typed arrays, buffers, fallbacks) are
 * numbered in the order they are met, so repeats and cycles come back as
 * the same object, as structured clone does.
 *
 * An encoded value is a list of parts: the encoder's scratch bytes and, for
 * typed arrays of {@linkcode RAW_MIN} bytes or more, views of the caller's
 * own memory, so that a big buffer is copied once, straight into the ring.
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";
import { reduceSymbol } from "./reduction.ts";

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_INT32 = 4;
const T_FLOAT64 = 5;
const T_STR8 = 6;
const T_STR32 = 7;
const T_BIGINT64 = 8;
const T_BIGINT = 9;
const T_ARRAY = 10;
const T_OBJECT = 11;
const T_TYPED = 12;
const T_ARRAYBUFFER = 13;
const T_REF = 14;
const T_CLONE = 15;
const T_STR16 = 16;
/** Ends a plain object's entries (where a key's string tag would be). */
const T_END = 0;
const T_SMALLINT = 0x80;

/** Typed arrays at least this big are copied straight from the caller's memory. */
export const RAW_MIN = 4096;

/** Slots of the decoder's cache of object keys (a power of two). */
const KEY_CACHE = 1024;

/** Strings up to this many UTF-16 units always fit a one-byte length (3 bytes a unit). */
const SHORT_STRING = 85;

type TypedCtor = {
  new (
    buffer: ArrayBuffer,
    byteOffset: number,
    length: number,
  ): ArrayBufferView;
  BYTES_PER_ELEMENT: number;
};

const KINDS: [string, TypedCtor | undefined][] = [
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
const KIND_OF = new Map<string, number>(KINDS.map(([name], i) => [name, i]));
const DATAVIEW_KIND = KINDS.length - 1;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Thrown when a value cannot be encoded; names where in the value the culprit sits. */
export class EncodeError extends TypeError {
  /** Builds the message from the culprit's path and type. */
  constructor(path: string, type: string, why: string) {
    super(`${path} is ${type}: ${why}`);
    this.name = "DataCloneError";
  }
}

function describe(v: unknown): string {
  if (typeof v === "function") {
    return `a function${v.name ? ` (${v.name})` : ""}`;
  }
  if (typeof v === "symbol") return `a symbol (${String(v)})`;
  if (v === null || typeof v !== "object") return `a ${typeof v}`;
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name ? `a ${name}` : "an object";
}

/** Internal: unwinds the encoder when a value cannot be sent. */
class Failure {
  constructor(readonly culprit: unknown, readonly why: string) {}
}

/** Scratch buffers bigger than this are dropped after use. */
const SCRATCH_KEEP = 1 << 20;

/**
 * Encodes values into a reusable scratch buffer. One encoder per queue per
 * process. After {@linkcode Encoder.encode}, `size` and
 * {@linkcode Encoder.copyTo} describe the encoding until the next call.
 *
 * The encoding is the scratch bytes with, at recorded scratch positions,
 * the caller's own big typed arrays spliced in (copied once, by `copyTo`).
 */
export class Encoder {
  #buf: Uint8Array = new Uint8Array(4096);
  #view: DataView = new DataView(this.#buf.buffer);
  #pos = 0;
  /** Raw views spliced into the scratch bytes, at scratch position `#rawAt[i]`. */
  #raws: Uint8Array[] = [];
  #rawAt: number[] = [];
  #rawBytes = 0;
  /** Objects met so far, `#objects[0, #count)` (the array keeps its size). */
  #objects: (object | undefined)[] = [];
  #count = 0;
  #index: Map<object, number> | undefined;

  /** Total bytes of the last encoding. */
  size = 0;

  /**
   * Encodes `value`, returning its size in bytes; throws
   * {@linkcode EncodeError} (a TypeError) for what cannot be sent.
   */
  encode(value: unknown): number {
    if (this.#buf.length > SCRATCH_KEEP) {
      this.#buf = new Uint8Array(4096);
      this.#view = new DataView(this.#buf.buffer);
    }
    this.#pos = 0;
    if (this.#raws.length) {
      this.#raws.length = 0;
      this.#rawAt.length = 0;
      this.#rawBytes = 0;
    }
    try {
      this.#value(value);
    } catch (e) {
      this.size = 0;
      if (e instanceof Failure) {
        const bad = findBad(value);
        throw bad
          ? new EncodeError(pathString(bad.path), describe(bad.value), bad.why)
          : new EncodeError("item", describe(e.culprit), e.why);
      }
      throw e;
    } finally {
      // Drop the references, keeping the array's storage.
      const objects = this.#objects;
      for (let i = this.#count - 1; i >= 0; i--) objects[i] = undefined;
      this.#count = 0;
      this.#index = undefined;
    }
    return this.size = this.#pos + this.#rawBytes;
  }

  /** Copies bytes `[from, to)` of the last encoding into `dst` at `at`. */
  copyTo(dst: Uint8Array, at: number, from: number, to: number): void {
    const buf = this.#buf;
    const raws = this.#raws;
    if (raws.length === 0) {
      if (to - from <= 32) {
        for (let i = from; i < to; i++) dst[at++] = buf[i];
      } else dst.set(buf.subarray(from, to), at);
      return;
    }
    // Walk the scratch runs and raw views in order.
    let logical = 0; // logical offset where the current piece starts
    let scratch = 0; // scratch offset where the current run starts
    for (let i = 0; i <= raws.length && from < to; i++) {
      const runEnd = i < raws.length ? this.#rawAt[i] : this.#pos;
      const runLen = runEnd - scratch;
      if (from < logical + runLen) {
        const a = from - logical;
        const b = Math.min(to, logical + runLen) - logical;
        dst.set(buf.subarray(scratch + a, scratch + b), at);
        at += b - a;
        from = logical + b;
      }
      logical += runLen;
      scratch = runEnd;
      if (i === raws.length) break;
      const raw = raws[i];
      if (from < to && from < logical + raw.length) {
        const a = from - logical;
        const b = Math.min(to, logical + raw.length) - logical;
        dst.set(a === 0 && b === raw.length ? raw : raw.subarray(a, b), at);
        at += b - a;
        from = logical + b;
      }
      logical += raw.length;
    }
  }

  /** A private copy of the last encoding. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    this.copyTo(out, 0, 0, this.size);
    return out;
  }

  #fail(v: unknown, why: string): never {
    throw new Failure(v, why);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  #varint(n: number): void {
    this.#ensure(5);
    const b = this.#buf;
    while (n >= 0x80) {
      b[this.#pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    b[this.#pos++] = n;
  }

  /** Registers an object; returns true when it was seen before (a ref was written). */
  #seen(o: object): boolean {
    const objects = this.#objects;
    const count = this.#count;
    let index = this.#index;
    let i = -1;
    if (index) i = index.get(o) ?? -1;
    else {
      for (let j = 0; j < count; j++) {
        if (objects[j] === o) {
          i = j;
          break;
        }
      }
    }
    if (i >= 0) {
      this.#ensure(1);
      this.#buf[this.#pos++] = T_REF;
      this.#varint(i);
      return true;
    }
    objects[count] = o;
    this.#count = count + 1;
    if (index) index.set(o, count);
    else if (count >= 16) {
      index = this.#index = new Map();
      for (let j = 0; j <= count; j++) index.set(objects[j]!, j);
    }
    return false;
  }

  #value(v: unknown): void {
    switch (typeof v) {
      case "number":
        return this.#number(v);
      case "string":
        return this.#string(v);
      case "boolean":
        this.#ensure(1);
        this.#buf[this.#pos++] = v ? T_TRUE : T_FALSE;
        return;
      case "undefined":
        this.#ensure(1);
        this.#buf[this.#pos++] = T_UNDEFINED;
        return;
      case "bigint":
        return this.#bigint(v);
      case "object":
        if (v === null) {
          this.#ensure(1);
          this.#buf[this.#pos++] = T_NULL;
          return;
        }
        return this.#object(v);
      default:
        this.#fail(v, CLONE_WHY);
    }
  }

  #number(v: number): void {
    this.#ensure(9);
    if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
      if (v >= 0 && v < 128) {
        this.#buf[this.#pos++] = T_SMALLINT | v;
        return;
      }
      this.#buf[this.#pos++] = T_INT32;
      this.#view.setInt32(this.#pos, v, true);
      this.#pos += 4;
      return;
    }
    this.#buf[this.#pos++] = T_FLOAT64;
    this.#view.setFloat64(this.#pos, v, true);
    this.#pos += 8;
  }

  #string(s: string): void {
    const n = s.length;
    if (n <= SHORT_STRING) {
      this.#ensure(2 + 3 * n);
      const b = this.#buf;
      const start = this.#pos;
      let p = start + 2;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          if (!s.isWellFormed()) return this.#utf16(s);
          p = start + 2 +
            textEncoder.encodeInto(s, b.subarray(start + 2)).written;
          break;
        }
        b[p++] = c;
      }
      b[start] = T_STR8;
      b[start + 1] = p - start - 2;
      this.#pos = p;
      return;
    }
    if (!s.isWellFormed()) return this.#utf16(s);
    this.#ensure(5 + 3 * n);
    const start = this.#pos;
    const written =
      textEncoder.encodeInto(s, this.#buf.subarray(start + 5)).written;
    this.#buf[start] = T_STR32;
    this.#view.setUint32(start + 1, written, true);
    this.#pos = start + 5 + written;
  }

  /** Strings with lone surrogates, which UTF-8 cannot hold: UTF-16 units. */
  #utf16(s: string): void {
    const n = s.length;
    this.#ensure(5 + 2 * n);
    this.#buf[this.#pos++] = T_STR16;
    this.#view.setUint32(this.#pos, n, true);
    this.#pos += 4;
    for (let i = 0; i < n; i++) {
      this.#view.setUint16(this.#pos, s.charCodeAt(i), true);
      this.#pos += 2;
    }
  }

  #bigint(v: bigint): void {
    if (v === BigInt.asIntN(64, v)) {
      this.#ensure(9);
      this.#buf[this.#pos++] = T_BIGINT64;
      this.#view.setBigInt64(this.#pos, v, true);
      this.#pos += 8;
      return;
    }
    const negative = v < 0n;
    let m = negative ? -v : v;
    const words: bigint[] = [];
    while (m > 0n) {
      words.push(BigInt.asUintN(64, m));
      m >>= 64n;
    }
    this.#ensure(2);
    this.#buf[this.#pos++] = T_BIGINT;
    this.#buf[this.#pos++] = negative ? 1 : 0;
    this.#varint(words.length);
    this.#ensure(8 * words.length);
    for (const w of words) {
      this.#view.setBigUint64(this.#pos, w, true);
      this.#pos += 8;
    }
  }

  #object(o: object): void {
    if (this.#seen(o)) return;
    if (Array.isArray(o)) {
      if (Object.getPrototypeOf(o) === Array.prototype && !hasHoles(o)) {
        return this.#array(o);
      }
      return this.#clone(o);
    }
    const proto = Object.getPrototypeOf(o);
    if (proto === Object.prototype || proto === null) {
      if (typeof (o as Record<symbol, unknown>)[reduceSymbol] === "function") {
        this.#fail(o, SHARED_WHY);
      }
      return this.#plain(o as Record<string, unknown>);
    }
    if (ArrayBuffer.isView(o)) return this.#typed(o);
    if (o instanceof ArrayBuffer) {
      return this.#raw(T_ARRAYBUFFER, -1, new Uint8Array(o));
    }
    if (
      o instanceof SharedArrayBuffer ||
      typeof (o as Record<symbol, unknown>)[reduceSymbol] === "function"
    ) {
      this.#fail(o, SHARED_WHY);
    }
    this.#clone(o);
  }

  #array(a: unknown[]): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = T_ARRAY;
    const n = a.length;
    this.#varint(n);
    for (let i = 0; i < n; i++) this.#value(a[i]);
  }

  #plain(o: Record<string, unknown>): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = T_OBJECT;
    // for-in reads fields through V8's enum cache, allocating nothing.
    for (const k in o) {
      this.#string(k);
      this.#value(o[k]);
    }
    this.#ensure(1);
    this.#buf[this.#pos++] = T_END;
  }

  #typed(v: ArrayBufferView): void {
    if (v.buffer instanceof SharedArrayBuffer) this.#fail(v, SHARED_WHY);
    const name = (v as unknown as Record<symbol, string>)[Symbol.toStringTag] ??
      "DataView";
    const kind = KIND_OF.get(name);
    if (kind === undefined) return this.#clone(v);
    this.#raw(
      T_TYPED,
      kind,
      new Uint8Array(v.buffer as ArrayBuffer, v.byteOffset, v.byteLength),
    );
  }

  #raw(tag: number, kind: number, bytes: Uint8Array): void {
    this.#ensure(14);
    this.#buf[this.#pos++] = tag;
    if (kind >= 0) this.#buf[this.#pos++] = kind;
    this.#view.setUint32(this.#pos, bytes.length, true);
    this.#pos += 4;
    // Pad so the raw bytes start 8-aligned in the encoding, hence in the
    // ring: V8 copies shared memory word by word only when both sides are
    // aligned alike, byte by byte (many times slower) otherwise.
    const pad = (8 - ((this.#pos + this.#rawBytes + 1) & 7)) & 7;
    this.#buf[this.#pos++] = pad;
    for (let i = 0; i < pad; i++) this.#buf[this.#pos++] = 0;
    if (bytes.length < RAW_MIN) {
      this.#ensure(bytes.length);
      this.#buf.set(bytes, this.#pos);
      this.#pos += bytes.length;
      return;
    }
    this.#raws.push(bytes);
    this.#rawAt.push(this.#pos);
    this.#rawBytes += bytes.length;
  }

  #clone(o: object): void {
    let bytes: Uint8Array;
    try {
      bytes = serialize(o);
    } catch {
      this.#fail(o, CLONE_WHY);
    }
    this.#ensure(5 + bytes.length);
    this.#buf[this.#pos++] = T_CLONE;
    this.#view.setUint32(this.#pos, bytes.length, true);
    this.#pos += 4;
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }
}

function pathString(path: (string | number)[]): string {
  let s = "item";
  for (const p of path) {
    s += typeof p === "number"
      ? `[${p}]`
      : /^[A-Za-z_$][\w$]*$|^<.*>$/.test(p)
      ? `.${p}`
      : `[${JSON.stringify(p)}]`;
  }
  return s;
}

const CLONE_WHY =
  "it cannot be cloned to another process (only structured-cloneable values can be put on a queue)";
const SHARED_WHY =
  "it holds shared memory, which a queue cannot carry (a queue copies bytes); " +
  "pass shared objects to a child in its Process args instead";

function hasHoles(a: unknown[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === undefined && !(i in a)) return true;
  }
  return false;
}

/** Finds what V8's serializer refused inside `o`, for the error message. */
function findBad(
  o: unknown,
): { path: (string | number)[]; value: unknown; why: string } | undefined {
  const seen = new Set<object>();
  const walk = (
    v: unknown,
    path: (string | number)[],
  ): { path: (string | number)[]; value: unknown; why: string } | undefined => {
    if (typeof v === "function" || typeof v === "symbol") {
      return { path, value: v, why: CLONE_WHY };
    }
    if (v === null || typeof v !== "object" || seen.has(v)) return undefined;
    seen.add(v);
    if (
      v instanceof SharedArrayBuffer ||
      typeof (v as Record<symbol, unknown>)[reduceSymbol] === "function" ||
      (ArrayBuffer.isView(v) && v.buffer instanceof SharedArrayBuffer)
    ) {
      return { path, value: v, why: SHARED_WHY };
    }
    if (v instanceof Map) {
      let i = 0;
      for (const [k, x] of v) {
        const r = walk(k, [...path, `<key ${i}>`]) ??
          walk(x, [...path, `<value ${i}>`]);
        if (r) return r;
        i++;
      }
      return undefined;
    }
    if (v instanceof Set) {
      let i = 0;
      for (const x of v) {
        const r = walk(x, [...path, `<item ${i++}>`]);
        if (r) return r;
      }
      return undefined;
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return undefined;
    for (const k of Object.keys(v)) {
      const r = walk((v as Record<string, unknown>)[k], [
        ...path,
        Array.isArray(v) ? Number(k) : k,
      ]);
      if (r) return r;
    }
    try {
      serialize(v);
    } catch {
      return {
        path,
        value: v,
        why: CLONE_WHY,
      };
    }
    return undefined;
  };
  return walk(o, []);
}

/** A typed array (or DataView) of `kind` over all of `bytes`. */
function view(kind: number, bytes: ArrayBuffer): ArrayBufferView {
  const entry = KINDS[kind];
  if (!entry) throw new RangeError(`corrupt queue item: kind ${kind}`);
  if (kind === DATAVIEW_KIND) return new DataView(bytes);
  const ctor = entry[1];
  if (!ctor) {
    throw new TypeError(`${entry[0]} is not available in this runtime`);
  }
  return new ctor(bytes, 0, bytes.byteLength / ctor.BYTES_PER_ELEMENT);
}

/**
 * How to receive an encoded value that is a single typed array or
 * ArrayBuffer straight into its own final buffer (one copy, no decoding):
 * skip `skip` bytes of the encoding, copy the `length` that follow into a
 * new buffer, then `finish` it.
 */
export interface RawPlan {
  /** Bytes of the encoding before the raw bytes. */
  skip: number;
  /** The raw bytes. */
  length: number;
  /** The value over the filled buffer. */
  finish(buffer: ArrayBuffer): unknown;
}

/** Bytes of the encoding that {@linkcode rawPlan} needs to see. */
export const RAW_HEAD = 7;

/**
 * The {@linkcode RawPlan} of an encoding of `total` bytes whose first
 * {@linkcode RAW_HEAD} bytes are `head`, or undefined when the value is
 * anything else.
 */
export function rawPlan(head: Uint8Array, total: number): RawPlan | undefined {
  const u32 = (at: number) =>
    (head[at] | (head[at + 1] << 8) | (head[at + 2] << 16) |
      (head[at + 3] << 24)) >>> 0;
  if (head[0] === T_TYPED) {
    const kind = head[1];
    const length = u32(2);
    const skip = 7 + head[6];
    if (!KINDS[kind] || skip + length !== total) return undefined;
    return { skip, length, finish: (b) => view(kind, b) };
  }
  if (head[0] === T_ARRAYBUFFER) {
    const length = u32(1);
    const skip = 6 + head[5];
    if (skip + length !== total) return undefined;
    return { skip, length, finish: (b) => b };
  }
  return undefined;
}

/**
 * Decodes values from bytes (a private buffer or a view of the shared ring).
 * Everything it returns is freshly allocated: nothing aliases the input.
 */
export class Decoder {
  #buf: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(new ArrayBuffer(0));
  #pos = 0;
  /** Objects made so far, `#objects[0, #count)` (the array keeps its size). */
  #objects: unknown[] = [];
  #count = 0;
  #scratch: Uint8Array = new Uint8Array(0);
  #keyBytes: (Uint8Array | undefined)[] = new Array(KEY_CACHE);
  #keyStrings: string[] = new Array(KEY_CACHE);

  /** Decodes the value in `bytes[start, end)`. Throws on malformed input. */
  decode(bytes: Uint8Array, start: number, end: number): unknown {
    if (bytes !== this.#buf) {
      this.#buf = bytes;
      this.#view = new DataView(
        bytes.buffer,
        bytes.byteOffset,
        bytes.byteLength,
      );
    }
    this.#pos = start;
    try {
      const v = this.#value();
      if (this.#pos !== end) {
        throw new RangeError(
          `corrupt queue item: ${end - this.#pos} bytes left after the value`,
        );
      }
      return v;
    } finally {
      const objects = this.#objects;
      for (let i = this.#count - 1; i >= 0; i--) objects[i] = undefined;
      this.#count = 0;
    }
  }

  #varint(): number {
    const b = this.#buf;
    let n = 0;
    let shift = 0;
    for (;;) {
      const byte = b[this.#pos++];
      n += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return n;
      shift += 7;
    }
  }

  #value(): unknown {
    const tag = this.#buf[this.#pos++];
    if (tag >= T_SMALLINT) return tag & 0x7f;
    switch (tag) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_INT32: {
        const v = this.#view.getInt32(this.#pos, true);
        this.#pos += 4;
        return v;
      }
      case T_FLOAT64: {
        const v = this.#view.getFloat64(this.#pos, true);
        this.#pos += 8;
        return v;
      }
      case T_STR8:
        return this.#string(this.#buf[this.#pos++]);
      case T_STR32: {
        const n = this.#view.getUint32(this.#pos, true);
        this.#pos += 4;
        return this.#string(n);
      }
      case T_STR16: {
        const n = this.#view.getUint32(this.#pos, true);
        this.#pos += 4;
        let s = "";
        for (let i = 0; i < n; i++) {
          s += String.fromCharCode(this.#view.getUint16(this.#pos, true));
          this.#pos += 2;
        }
        return s;
      }
      case T_BIGINT64: {
        const v = this.#view.getBigInt64(this.#pos, true);
        this.#pos += 8;
        return v;
      }
      case T_BIGINT: {
        const negative = this.#buf[this.#pos++] === 1;
        const n = this.#varint();
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) {
          v = (v << 64n) | this.#view.getBigUint64(this.#pos + 8 * i, true);
        }
        this.#pos += 8 * n;
        return negative ? -v : v;
      }
      case T_ARRAY: {
        const n = this.#varint();
        const a: unknown[] = [];
        this.#objects[this.#count++] = a;
        for (let i = 0; i < n; i++) a.push(this.#value());
        return a;
      }
      case T_OBJECT: {
        const o: Record<string, unknown> = {};
        this.#objects[this.#count++] = o;
        const b = this.#buf;
        for (;;) {
          if (b[this.#pos] === T_END) {
            this.#pos++;
            break;
          }
          const k = this.#key();
          if (k === "__proto__") {
            Object.defineProperty(o, k, {
              value: this.#value(),
              enumerable: true,
              writable: true,
              configurable: true,
            });
          } else o[k] = this.#value();
        }
        return o;
      }
      case T_TYPED: {
        const kind = this.#buf[this.#pos++];
        const bytes = this.#bytes();
        const v = view(kind, bytes);
        this.#objects[this.#count++] = v;
        return v;
      }
      case T_ARRAYBUFFER: {
        const v = this.#bytes();
        this.#objects[this.#count++] = v;
        return v;
      }
      case T_REF:
        return this.#objects[this.#varint()];
      case T_CLONE: {
        const n = this.#view.getUint32(this.#pos, true);
        this.#pos += 4;
        const copy = new Uint8Array(n);
        copy.set(this.#buf.subarray(this.#pos, this.#pos + n));
        this.#pos += n;
        const v = deserialize(copy);
        this.#objects[this.#count++] = v;
        return v;
      }
      default:
        throw new RangeError(`corrupt queue item: tag ${tag}`);
    }
  }

  /** An object key: short ASCII keys come from a cache of strings already made. */
  #key(): string {
    const b = this.#buf;
    const p = this.#pos;
    const n = b[p + 1];
    if (b[p] !== T_STR8 || n > 24) return this.#value() as string;
    let h = n;
    for (let i = p + 2; i < p + 2 + n; i++) h = (h * 31 + b[i]) | 0;
    const slot = h & (KEY_CACHE - 1);
    const cached = this.#keyBytes[slot];
    if (cached !== undefined && cached.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (cached[i] !== b[p + 2 + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.#pos = p + 2 + n;
        return this.#keyStrings[slot];
      }
    }
    const s = this.#value() as string;
    this.#keyBytes[slot] = b.slice(p + 2, p + 2 + n);
    this.#keyStrings[slot] = s;
    return s;
  }

  #bytes(): ArrayBuffer {
    const n = this.#view.getUint32(this.#pos, true);
    this.#pos += 5 + this.#buf[this.#pos + 4];
    const out = new Uint8Array(n);
    out.set(this.#buf.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return out.buffer;
  }

  #string(n: number): string {
    const b = this.#buf;
    const start = this.#pos;
    const end = start + n;
    this.#pos = end;
    if (n <= 4) {
      // One string made at once, for the shortest (the commonest keys and values).
      switch (n) {
        case 0:
          return "";
        case 1:
          if (b[start] < 0x80) return String.fromCharCode(b[start]);
          break;
        case 2:
          if ((b[start] | b[start + 1]) < 0x80) {
            return String.fromCharCode(b[start], b[start + 1]);
          }
          break;
        case 3:
          if ((b[start] | b[start + 1] | b[start + 2]) < 0x80) {
            return String.fromCharCode(b[start], b[start + 1], b[start + 2]);
          }
          break;
        default:
          if ((b[start] | b[start + 1] | b[start + 2] | b[start + 3]) < 0x80) {
            return String.fromCharCode(
              b[start],
              b[start + 1],
              b[start + 2],
              b[start + 3],
            );
          }
      }
      return this.#utf8(start, end);
    }
    if (n <= 32) {
      let s = "";
      for (let i = start; i < end; i++) {
        const c = b[i];
        if (c >= 0x80) return this.#utf8(start, end);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.#utf8(start, end);
  }

  #utf8(start: number, end: number): string {
    const b = this.#buf;
    if (!(b.buffer instanceof SharedArrayBuffer)) {
      return textDecoder.decode(b.subarray(start, end));
    }
    // TextDecoder is slow on shared memory: copy out first.
    const n = end - start;
    if (this.#scratch.length < n) {
      this.#scratch = new Uint8Array(Math.max(n, 2 * this.#scratch.length));
    }
    this.#scratch.set(b.subarray(start, end));
    return textDecoder.decode(this.#scratch.subarray(0, n));
  }
}
