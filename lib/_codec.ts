/**
 * The queues' wire format: a compact binary encoding of every
 * structured-cloneable value, with the same result as `structuredClone`
 * (prototypes dropped, repeats and cycles kept, typed arrays keeping their
 * offsets and the buffers they share). What structured clone cannot copy
 * fails with an {@linkcode EncodeError} naming where it sits, and so do
 * the few things it copies that a queue cannot carry (Blobs, which cannot
 * be read synchronously; shared memory; views of resizable buffers).
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
 * An encoded value is a list of parts: the encoder's scratch bytes and, for
 * typed arrays of {@linkcode RAW_MIN} bytes or more, views of the caller's
 * own memory, so that a big buffer is copied once, straight into the ring.
 *
 * @module
 */

import {
  isArrayBuffer,
  isBigIntObject,
  isBooleanObject,
  isBoxedPrimitive,
  isDate,
  isMap,
  isNativeError,
  isNumberObject,
  isProxy,
  isRegExp,
  isSet,
  isStringObject,
} from "node:util/types";
import { reduceSymbol } from "./reduction.ts";
import { isRefusedPlatformObject, platformWhy, PROXY_WHY } from "./_values.ts";
import { DESCEND, pathString, pathTo } from "./_walk.ts";

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
const T_STR16 = 16;
const T_VIEW = 17;
const T_RESIZABLE = 18;
const T_ARRAY_EX = 19;
const T_MAP = 20;
const T_SET = 21;
const T_DATE = 22;
const T_REGEXP = 23;
const T_BOXED = 24;
const T_ERROR = 25;
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

/** Error constructors by kind (structured clone keeps only these prototypes). */
const ERRORS: ErrorConstructor[] = [
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
];
const ERROR_KIND = new Map<string, number>(
  ERRORS.map((ctor, i) => [ctor.name, i]),
);
/** The error kind of a DOMException (kept as one, with its name). */
const DOM_EXCEPTION = ERRORS.length;

const ArrayBufferProto = ArrayBuffer.prototype as unknown as {
  detached?: boolean;
  resizable?: boolean;
};
type ABInfo = ArrayBuffer & {
  detached?: boolean;
  resizable?: boolean;
  maxByteLength?: number;
};
const HAS_DETACHED = "detached" in ArrayBufferProto;
const dateTime = Date.prototype.getTime;
const objectToString = Object.prototype.toString;
const regexpSource = Object.getOwnPropertyDescriptor(
  RegExp.prototype,
  "source",
)!.get!;
const regexpFlags = Object.getOwnPropertyDescriptor(
  RegExp.prototype,
  "flags",
)!.get!;

/** Deno's mark of objects its structured clone copies natively (Blob, File, MessagePort, CryptoKey, DOMException, ...). */
const HOST_OBJECT = Symbol.for("Deno.core.hostObject");

type NonIndexKeys = (a: unknown[]) => boolean;

/** Node's binding, once loaded (see {@linkcode hasOtherKeys}). */
let nonIndexKeys: NonIndexKeys | undefined;
let bindingRequested = false;

/** Loads Node's `getOwnNonIndexProperties` in the background, once. */
function requestBinding(): void {
  bindingRequested = true;
  // `node:process` costs ~10 ms to load in a worker: never at start-up (every
  // child would pay it), only once long arrays are met.
  import("node:process").then(({ default: process }) => {
    const util = (process as unknown as {
      binding(name: string): {
        getOwnNonIndexProperties?: (o: object, filter: number) => unknown[];
        ONLY_ENUMERABLE?: number;
        SKIP_SYMBOLS?: number;
      };
    }).binding("util");
    const keys = util.getOwnNonIndexProperties;
    const filter = (util.ONLY_ENUMERABLE ?? 2) | (util.SKIP_SYMBOLS ?? 16);
    const probe = Object.assign([1], { k: 1, [Symbol()]: 1 });
    Object.defineProperty(probe, "h", { value: 1, enumerable: false });
    if (
      typeof keys === "function" && keys(probe, filter).length === 1 &&
      keys([1, 2], filter).length === 0
    ) {
      nonIndexKeys = (a) => keys(a, filter).length !== 0;
    }
  }).catch(() => {
    // No binding: keep counting.
  });
}

/**
 * True when dense array `a` has own enumerable string keys besides its
 * indices (structured clone keeps them). Counting all its keys walks the
 * indices too: for long arrays, Node's binding lists the non-index keys
 * alone, at a fixed cost whatever the length (loaded on first need).
 */
function hasOtherKeys(a: unknown[]): boolean {
  if (a.length > 6) {
    if (nonIndexKeys) return nonIndexKeys(a);
    if (!bindingRequested && a.length > 64) requestBinding();
  }
  return Object.keys(a).length !== a.length;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * A shared object (one with `[reduceSymbol]`) that is not shared memory may
 * define this as the reason a queue cannot carry it, and where it can go
 * instead: the codec's error then says it (by default: "it holds shared
 * memory, ...").
 */
export const notQueueable: unique symbol = Symbol.for("mp.notQueueable");

/** Thrown when a value cannot be encoded; names where in the value the culprit sits. */
export class EncodeError extends TypeError {
  /**
   * True when `postMessage` can still carry the value faithfully (shared
   * memory and objects, a Blob, a MessagePort, a CryptoKey, ...), false when
   * structured clone refuses it too (or, for a URL, Headers, ... nested in
   * it, would silently make it `{}`).
   */
  readonly portable: boolean;
  /** Builds the message from the culprit's path and type. */
  constructor(path: string, type: string, why: string, portable = false) {
    super(`${path} is ${type}: ${why}`);
    this.name = "DataCloneError";
    this.portable = portable;
  }
}

function describe(v: unknown): string {
  if (typeof v === "function") {
    return `a function${v.name ? ` (${v.name})` : ""}`;
  }
  if (typeof v === "symbol") return `a symbol (${String(v)})`;
  if (v === null || typeof v !== "object") return `a ${typeof v}`;
  if (isProxy(v)) return "a Proxy";
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name ? `a ${name}` : "an object";
}

/** Internal: unwinds the encoder when a value cannot be sent. */
class Failure {
  constructor(
    readonly culprit: unknown,
    readonly why: string,
    readonly portable: boolean,
  ) {}
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
   * {@linkcode EncodeError} (a TypeError named `DataCloneError`) for what
   * cannot be sent.
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
        const culprit = e.culprit;
        const found = pathTo(
          value,
          (v) =>
            v === culprit ? "culprit" : v !== null && typeof v === "object" &&
              !ArrayBuffer.isView(v) && !isArrayBuffer(v) && DESCEND,
        );
        throw new EncodeError(
          pathString("item", found?.path ?? []),
          describe(e.culprit),
          e.why,
          e.portable,
        );
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

  #fail(
    v: unknown,
    why: string,
    portable = PORTABLE.has(why) || why.startsWith(HOST_PREFIX),
  ): never {
    throw new Failure(v, why, portable);
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

  #tag(tag: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = tag;
  }

  /** Registers an object; returns true when it was seen before (a ref was written). */
  #seen(o: object): boolean {
    const objects = this.#objects;
    const count = this.#count;
    const index = this.#index;
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
    this.#add(o);
    return false;
  }

  /** Whether `o` was met already (without registering it). */
  #met(o: object): boolean {
    if (this.#index) return this.#index.has(o);
    const objects = this.#objects;
    for (let j = 0; j < this.#count; j++) if (objects[j] === o) return true;
    return false;
  }

  #add(o: object): void {
    const objects = this.#objects;
    const count = this.#count;
    objects[count] = o;
    this.#count = count + 1;
    let index = this.#index;
    if (index) index.set(o, count);
    else if (count >= 16) {
      index = this.#index = new Map();
      for (let j = 0; j <= count; j++) index.set(objects[j]!, j);
    }
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
      if (
        Object.getPrototypeOf(o) === Array.prototype && !isProxy(o) &&
        !hasHoles(o) && !hasOtherKeys(o)
      ) {
        return this.#array(o);
      }
      return this.#arrayEx(o);
    }
    const proto = Object.getPrototypeOf(o);
    if (proto === Object.prototype || proto === null) {
      if (isProxy(o)) this.#fail(o, PROXY_WHY);
      // Not quite plain: an arguments object, a module namespace, a
      // built-in given another prototype, a toStringTag, a shared object.
      if (
        objectToString.call(o) !== "[object Object]" ||
        typeof (o as Record<symbol, unknown>)[reduceSymbol] === "function"
      ) {
        return this.#other(o);
      }
      return this.#plain(o as Record<string, unknown>);
    }
    if (ArrayBuffer.isView(o)) return this.#typed(o);
    // (instanceof first, as the cheaper test; both for a changed prototype)
    if (o instanceof ArrayBuffer || isArrayBuffer(o)) return this.#buffer(o);
    this.#other(o);
  }

  #array(a: unknown[]): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = T_ARRAY;
    const n = a.length;
    this.#varint(n);
    for (let i = 0; i < n; i++) this.#value(a[i]);
  }

  /** An array with holes or other own keys, or of a subclass: its length and own enumerable keys. */
  #arrayEx(a: unknown[]): void {
    if (isProxy(a)) this.#fail(a, PROXY_WHY);
    const keys = Object.keys(a);
    this.#tag(T_ARRAY_EX);
    this.#varint(a.length);
    this.#varint(keys.length);
    for (const k of keys) {
      this.#string(k);
      this.#value((a as unknown as Record<string, unknown>)[k]);
    }
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

  /** A non-plain ordinary object (a class instance, ...): a plain object of its own enumerable keys. */
  #ordinary(o: Record<string, unknown>): void {
    this.#tag(T_OBJECT);
    for (const k of Object.keys(o)) {
      this.#string(k);
      this.#value(o[k]);
    }
    this.#tag(T_END);
  }

  #typed(v: ArrayBufferView): void {
    const buffer = v.buffer as ABInfo;
    if (buffer instanceof SharedArrayBuffer) this.#fail(v, SHARED_WHY);
    if (HAS_DETACHED && buffer.detached) this.#fail(v, DETACHED_WHY);
    if (buffer.resizable) this.#fail(v, RESIZABLE_WHY);
    const name = (v as unknown as Record<symbol, string>)[Symbol.toStringTag] ??
      "DataView";
    const kind = KIND_OF.get(name);
    if (kind === undefined) this.#fail(v, CLONE_WHY);
    const offset = v.byteOffset;
    const length = v.byteLength;
    if (
      offset === 0 && length === buffer.byteLength && !this.#met(buffer)
    ) {
      // A whole buffer's only view: its bytes, and the buffer numbered after it.
      this.#raw(T_TYPED, kind, new Uint8Array(buffer, 0, length));
      this.#add(buffer);
      return;
    }
    this.#ensure(2);
    this.#buf[this.#pos++] = T_VIEW;
    this.#buf[this.#pos++] = kind;
    this.#varint(offset);
    this.#varint(length);
    if (!this.#seen(buffer)) this.#buffer(buffer);
  }

  #buffer(b: ABInfo): void {
    if (HAS_DETACHED && b.detached) this.#fail(b, DETACHED_WHY);
    if (b.resizable) {
      return this.#raw(
        T_RESIZABLE,
        -1,
        new Uint8Array(b, 0, b.byteLength),
        b.maxByteLength,
      );
    }
    this.#raw(T_ARRAYBUFFER, -1, new Uint8Array(b));
  }

  #raw(tag: number, kind: number, bytes: Uint8Array, max = -1): void {
    this.#ensure(18);
    this.#buf[this.#pos++] = tag;
    if (kind >= 0) this.#buf[this.#pos++] = kind;
    if (max >= 0) {
      this.#view.setUint32(this.#pos, max, true);
      this.#pos += 4;
    }
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

  /** Objects that are neither plain, arrays, typed arrays nor buffers. */
  #other(o: object): void {
    if (isProxy(o)) this.#fail(o, PROXY_WHY);
    if (o instanceof SharedArrayBuffer) this.#fail(o, SHARED_WHY);
    if (typeof (o as Record<symbol, unknown>)[reduceSymbol] === "function") {
      // A shared object may say what it holds and where it can go instead.
      const why = (o as Record<symbol, unknown>)[notQueueable];
      this.#fail(o, typeof why === "string" ? why : SHARED_WHY, true);
    }
    if (isDate(o)) {
      this.#ensure(9);
      this.#buf[this.#pos++] = T_DATE;
      this.#view.setFloat64(this.#pos, dateTime.call(o), true);
      this.#pos += 8;
      return;
    }
    if (isMap(o)) {
      const items: unknown[] = [];
      Map.prototype.forEach.call(o, (v, k) => items.push(k, v));
      this.#tag(T_MAP);
      this.#varint(items.length / 2);
      for (const x of items) this.#value(x);
      return;
    }
    if (isSet(o)) {
      const items: unknown[] = [];
      Set.prototype.forEach.call(o, (v) => items.push(v));
      this.#tag(T_SET);
      this.#varint(items.length);
      for (const x of items) this.#value(x);
      return;
    }
    if (isNativeError(o)) return this.#error(o as Error);
    if (isRegExp(o)) {
      this.#tag(T_REGEXP);
      this.#string(regexpSource.call(o));
      this.#string(regexpFlags.call(o));
      return;
    }
    if (isBoxedPrimitive(o)) {
      const value = isNumberObject(o)
        ? Number.prototype.valueOf.call(o)
        : isStringObject(o)
        ? String.prototype.valueOf.call(o)
        : isBooleanObject(o)
        ? Boolean.prototype.valueOf.call(o)
        : isBigIntObject(o)
        ? BigInt.prototype.valueOf.call(o)
        : this.#fail(o, CLONE_WHY); // a Symbol object
      this.#tag(T_BOXED);
      return this.#value(value);
    }
    if (isRefusedPlatformObject(o)) this.#fail(o, platformWhy(o));
    if (typeof Blob === "function" && o instanceof Blob) {
      this.#fail(o, BLOB_WHY);
    }
    if (HOST_OBJECT in o) this.#fail(o, hostWhy(o));
    if (objectToString.call(o) !== "[object Object]" && !clonesAsObject(o)) {
      this.#fail(o, CLONE_WHY);
    }
    this.#ordinary(o as Record<string, unknown>);
  }

  /** As V8 does: the prototype (by name), own message, stack, own cause. */
  #error(e: Error): void {
    const dom = typeof DOMException === "function" && e instanceof DOMException;
    const name = String(e.name);
    const kind = dom ? DOM_EXCEPTION : ERROR_KIND.get(name) ?? 0;
    let message: string | undefined;
    let cause: PropertyDescriptor | undefined;
    if (dom) message = String(e.message);
    else {
      const m = Object.getOwnPropertyDescriptor(e, "message");
      if (m && "value" in m) message = String(m.value);
      cause = Object.getOwnPropertyDescriptor(e, "cause");
      if (cause && !("value" in cause)) cause = undefined;
    }
    const stack = e.stack;
    this.#ensure(3);
    this.#buf[this.#pos++] = T_ERROR;
    this.#buf[this.#pos++] = kind;
    this.#buf[this.#pos++] = (message !== undefined ? 1 : 0) |
      (typeof stack === "string" ? 2 : 0) | (cause ? 4 : 0);
    if (dom) this.#string(name);
    if (message !== undefined) this.#string(message);
    if (typeof stack === "string") this.#string(stack);
    if (cause) this.#value(cause.value);
  }
}

const CLONE_WHY =
  "it cannot be cloned to another process (only structured-cloneable values can be put on a queue)";
const SHARED_WHY =
  "it holds shared memory, which a queue cannot carry (a queue copies bytes); " +
  "pass shared objects to a child in its Process args instead";
const BLOB_WHY =
  "a queue copies values synchronously and a Blob's bytes can only be read asynchronously; " +
  "send `new Uint8Array(await blob.arrayBuffer())` instead (with its type, or a File's name, if needed)";
const DETACHED_WHY =
  "it is (or views) a detached ArrayBuffer, transferred away: there is nothing left to copy";
const RESIZABLE_WHY =
  "it views a resizable ArrayBuffer, whose length tracking a queue cannot reproduce; " +
  "send a fixed copy (view.slice()) or the buffer itself";

/** What `postMessage` carries faithfully (see {@linkcode EncodeError.portable}). */
const PORTABLE = new Set([SHARED_WHY, BLOB_WHY, RESIZABLE_WHY]);
const HOST_PREFIX = "a queue cannot carry ";

function hostWhy(o: object): string {
  const isA = (name: string) => {
    const c = (globalThis as Record<string, unknown>)[name];
    return typeof c === "function" && o instanceof c;
  };
  if (isA("MessagePort")) {
    return `${HOST_PREFIX}a port; pass it to a child in its Process args (or send it through a Pipe) instead`;
  }
  if (isA("CryptoKey")) {
    return `${HOST_PREFIX}a CryptoKey; send \`await crypto.subtle.exportKey(...)\` and import it on the other side`;
  }
  return `${HOST_PREFIX}this platform object (only postMessage can); send the data it holds instead`;
}

/**
 * Whether structured clone takes object `o` (not plain, of no kind the
 * codec knows) as an ordinary object rather than refusing it (Promise,
 * WeakMap, iterators, Intl objects, ...). Asked of `structuredClone`
 * itself (only for such rare objects), not of `node:v8`'s serializer:
 * loading `node:v8` would cost every child ~2 ms at start-up.
 * When it refuses, `o` is blamed only if none of its own values is what
 * it refused (then the codec meets that value and names it).
 */
function clonesAsObject(o: object): boolean {
  try {
    structuredClone(o);
    return true;
  } catch {
    // o itself, or something in it
  }
  for (const k of Object.keys(o)) {
    const v = (o as Record<string, unknown>)[k];
    if (typeof v === "function" || typeof v === "symbol") return true;
    if (v !== null && typeof v === "object") {
      try {
        structuredClone(v);
      } catch {
        return true;
      }
    }
  }
  return false;
}

function hasHoles(a: unknown[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === undefined && !(i in a)) return true;
  }
  return false;
}

/** A typed array (or DataView) of `kind` over `bytes` (all of it, or `[offset, offset + length)`). */
function view(
  kind: number,
  bytes: ArrayBuffer,
  offset = 0,
  length = bytes.byteLength,
): ArrayBufferView {
  const entry = KINDS[kind];
  if (!entry) throw new DecodeError(`typed array kind ${kind}`);
  if (kind === DATAVIEW_KIND) return new DataView(bytes, offset, length);
  const ctor = entry[1];
  if (!ctor) {
    throw new TypeError(`${entry[0]} is not available in this runtime`);
  }
  if (length % ctor.BYTES_PER_ELEMENT !== 0) {
    throw new DecodeError(`a ${entry[0]} of ${length} bytes`);
  }
  return new ctor(bytes, offset, length / ctor.BYTES_PER_ELEMENT);
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
 * Thrown when bytes are not an encoding: cut short, a length or count
 * longer than the bytes left, an unknown tag. The decoder never reads past
 * the end it was given, and never allocates more than the bytes could hold.
 */
export class DecodeError extends RangeError {
  /** `what` says what was wrong; `at` is its byte offset in the input. */
  constructor(what: string, at?: number, options?: ErrorOptions) {
    super(
      `corrupt encoded value${
        at === undefined ? "" : ` at byte ${at}`
      }: ${what}`,
      options,
    );
    this.name = "DecodeError";
  }
}

/** Varints are at most 5 bytes (the encoder writes u32s). */
const VARINT_MAX_SHIFT = 28;

/**
 * Decodes values from bytes (a private buffer or a view of the shared ring).
 * Everything it returns is freshly allocated: nothing aliases the input.
 * Malformed bytes throw {@linkcode DecodeError}, in time bounded by their
 * length.
 */
export class Decoder {
  #buf: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(new ArrayBuffer(0));
  #pos = 0;
  /** Where the value's bytes end: nothing at or past it is read. */
  #end = 0;
  /** Objects made so far, `#objects[0, #count)` (the array keeps its size). */
  #objects: unknown[] = [];
  #count = 0;
  #scratch: Uint8Array = new Uint8Array(0);
  #keyBytes: (Uint8Array | undefined)[] = new Array(KEY_CACHE);
  #keyStrings: string[] = new Array(KEY_CACHE);

  /**
   * Decodes the value in `bytes[start, end)`, reading nothing outside it.
   * Throws {@linkcode DecodeError} on malformed input.
   */
  decode(bytes: Uint8Array, start: number, end: number): unknown {
    if (!(0 <= start && start <= end && end <= bytes.length)) {
      throw new DecodeError(
        `range [${start}, ${end}) is not within the ${bytes.length} bytes given`,
      );
    }
    if (bytes !== this.#buf) {
      this.#buf = bytes;
      this.#view = new DataView(
        bytes.buffer,
        bytes.byteOffset,
        bytes.byteLength,
      );
    }
    this.#pos = start;
    this.#end = end;
    try {
      const v = this.#value();
      if (this.#pos !== end) {
        throw new DecodeError(`${end - this.#pos} bytes left after the value`);
      }
      return v;
    } catch (e) {
      // What the built-ins refuse (a bad RegExp, a view out of its buffer, a
      // nesting too deep for the stack) is malformed input too.
      if (e instanceof DecodeError) throw e;
      throw new DecodeError(
        (e as Error)?.message ?? String(e),
        this.#pos - start,
        { cause: e },
      );
    } finally {
      const objects = this.#objects;
      for (let i = this.#count - 1; i >= 0; i--) objects[i] = undefined;
      this.#count = 0;
    }
  }

  /** Throws unless `n` more bytes are there. */
  #need(n: number): void {
    if (this.#pos + n > this.#end) this.#short(n);
  }

  #short(n: number): never {
    throw new DecodeError(
      `needs ${n} bytes, ${this.#end - this.#pos} are left`,
      this.#pos,
    );
  }

  /** A count of things each at least `size` bytes long: more than the bytes left could hold is malformed. */
  #items(size: number): number {
    const n = this.#varint();
    if (n * size > this.#end - this.#pos) {
      throw new DecodeError(
        `a count of ${n} in ${this.#end - this.#pos} bytes`,
        this.#pos,
      );
    }
    return n;
  }

  #varint(): number {
    const b = this.#buf;
    const end = this.#end;
    let p = this.#pos;
    let n = 0;
    let shift = 0;
    for (;;) {
      if (p >= end || shift > VARINT_MAX_SHIFT) {
        throw new DecodeError("a varint runs off its end", this.#pos);
      }
      const byte = b[p++];
      n += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) {
        this.#pos = p;
        return n;
      }
      shift += 7;
    }
  }

  #value(): unknown {
    if (this.#pos >= this.#end) this.#short(1);
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
        this.#need(4);
        const v = this.#view.getInt32(this.#pos, true);
        this.#pos += 4;
        return v;
      }
      case T_FLOAT64: {
        this.#need(8);
        const v = this.#view.getFloat64(this.#pos, true);
        this.#pos += 8;
        return v;
      }
      case T_STR8:
        this.#need(1);
        return this.#string(this.#buf[this.#pos++]);
      case T_STR32: {
        this.#need(4);
        const n = this.#view.getUint32(this.#pos, true);
        this.#pos += 4;
        return this.#string(n);
      }
      case T_STR16: {
        this.#need(4);
        const n = this.#view.getUint32(this.#pos, true);
        this.#pos += 4;
        this.#need(2 * n);
        let s = "";
        for (let i = 0; i < n; i++) {
          s += String.fromCharCode(this.#view.getUint16(this.#pos, true));
          this.#pos += 2;
        }
        return s;
      }
      case T_BIGINT64: {
        this.#need(8);
        const v = this.#view.getBigInt64(this.#pos, true);
        this.#pos += 8;
        return v;
      }
      case T_BIGINT: {
        this.#need(1);
        const negative = this.#buf[this.#pos++] === 1;
        const n = this.#items(8);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) {
          v = (v << 64n) | this.#view.getBigUint64(this.#pos + 8 * i, true);
        }
        this.#pos += 8 * n;
        return negative ? -v : v;
      }
      case T_ARRAY: {
        const n = this.#items(1);
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
          if (this.#pos >= this.#end) this.#short(1);
          if (b[this.#pos] === T_END) {
            this.#pos++;
            break;
          }
          const k = this.#key();
          if (k === "__proto__") define(o, k, this.#value(), true);
          else o[k] = this.#value();
        }
        return o;
      }
      case T_TYPED: {
        this.#need(1);
        const kind = this.#buf[this.#pos++];
        const bytes = this.#bytes();
        const v = view(kind, bytes);
        this.#objects[this.#count++] = v;
        this.#objects[this.#count++] = bytes;
        return v;
      }
      case T_ARRAYBUFFER: {
        const v = this.#bytes();
        this.#objects[this.#count++] = v;
        return v;
      }
      case T_REF: {
        const at = this.#pos;
        const i = this.#varint();
        if (i >= this.#count) {
          throw new DecodeError(
            `a repeat of object ${i}, of ${this.#count} met`,
            at,
          );
        }
        return this.#objects[i];
      }
      default:
        return this.#rare(tag);
    }
  }

  /** The tags past the common ones. */
  #rare(tag: number): unknown {
    switch (tag) {
      case T_VIEW: {
        const at = this.#count++;
        this.#need(1);
        const kind = this.#buf[this.#pos++];
        const offset = this.#varint();
        const length = this.#varint();
        const bytes = this.#value();
        if (!(bytes instanceof ArrayBuffer)) {
          throw new DecodeError("a view of no buffer", this.#pos);
        }
        return this.#objects[at] = view(kind, bytes, offset, length);
      }
      case T_RESIZABLE: {
        this.#need(4);
        const max = this.#view.getUint32(this.#pos, true);
        this.#pos += 4;
        const v = this.#bytes(max);
        this.#objects[this.#count++] = v;
        return v;
      }
      case T_ARRAY_EX: {
        const length = this.#varint();
        const n = this.#items(2);
        // Not `new Array(length)`: that allocates its storage up front.
        const a: unknown[] = [];
        a.length = length;
        this.#objects[this.#count++] = a;
        for (let i = 0; i < n; i++) {
          const k = this.#key();
          const v = this.#value();
          if (k === "__proto__") define(a, k, v, true);
          else (a as unknown as Record<string, unknown>)[k] = v;
        }
        return a;
      }
      case T_MAP: {
        const n = this.#items(2);
        const m = new Map();
        this.#objects[this.#count++] = m;
        for (let i = 0; i < n; i++) {
          const k = this.#value();
          m.set(k, this.#value());
        }
        return m;
      }
      case T_SET: {
        const n = this.#items(1);
        const s = new Set();
        this.#objects[this.#count++] = s;
        for (let i = 0; i < n; i++) s.add(this.#value());
        return s;
      }
      case T_DATE: {
        this.#need(8);
        const v = new Date(this.#view.getFloat64(this.#pos, true));
        this.#pos += 8;
        this.#objects[this.#count++] = v;
        return v;
      }
      case T_REGEXP: {
        const source = this.#value() as string;
        const v = new RegExp(source, this.#value() as string);
        this.#objects[this.#count++] = v;
        return v;
      }
      case T_BOXED: {
        const at = this.#count++;
        return this.#objects[at] = Object(this.#value());
      }
      case T_ERROR: {
        this.#need(2);
        const kind = this.#buf[this.#pos++];
        const has = this.#buf[this.#pos++];
        const name = kind === DOM_EXCEPTION ? this.#value() as string : "";
        const message = has & 1 ? this.#value() as string : undefined;
        const stack = has & 2 ? this.#value() as string : undefined;
        const ctor = ERRORS[kind];
        if (!ctor && kind !== DOM_EXCEPTION) {
          throw new DecodeError(`error kind ${kind}`, this.#pos);
        }
        // No stack trace of our own: the sender's (or none) replaces it.
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 0;
        let e: Error;
        try {
          e = kind === DOM_EXCEPTION
            ? new DOMException(message, name)
            : message === undefined
            ? new ctor()
            : new ctor(message);
        } finally {
          Error.stackTraceLimit = limit;
        }
        (e as { stack?: string }).stack = stack;
        this.#objects[this.#count++] = e;
        if (has & 4) define(e, "cause", this.#value(), false);
        return e;
      }
      default:
        throw new DecodeError(`tag ${tag}`, this.#pos - 1);
    }
  }

  /** An object key: short ASCII keys come from a cache of strings already made. */
  #key(): string {
    const b = this.#buf;
    const p = this.#pos;
    const n = b[p + 1];
    if (b[p] !== T_STR8 || n > 24 || p + 2 + n > this.#end) {
      return this.#value() as string;
    }
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

  /** Raw bytes, into a new buffer (resizable up to `max` when given). */
  #bytes(max?: number): ArrayBuffer {
    this.#need(5);
    const n = this.#view.getUint32(this.#pos, true);
    this.#pos += 5 + this.#buf[this.#pos + 4];
    // Checked before allocating: a length claims no more than is there.
    this.#need(n);
    const out = max === undefined ? new Uint8Array(n) : new Uint8Array(
      new (ArrayBuffer as new (
        n: number,
        options: { maxByteLength: number },
      ) => ArrayBuffer)(n, { maxByteLength: max }),
    );
    out.set(this.#buf.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return out.buffer as ArrayBuffer;
  }

  #string(n: number): string {
    const b = this.#buf;
    const start = this.#pos;
    const end = start + n;
    if (end > this.#end) this.#short(n);
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

/** An own data property, as structured clone makes them. */
function define(o: object, key: string, value: unknown, enumerable: boolean) {
  Object.defineProperty(o, key, {
    value,
    enumerable,
    writable: true,
    configurable: true,
  });
}
