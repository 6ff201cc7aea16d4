/**
 * The queues' wire format: a compact binary encoding of every
 * structured-cloneable value, with the same result as `structuredClone`
 * (prototypes dropped, repeats and cycles kept, typed arrays keeping their
 * offsets and the buffers they share). What structured clone cannot copy
 * fails with an {@linkcode EncodeError} naming where it sits, and so do
 * the few things it copies that a queue cannot carry (Blobs, which cannot
 * be read synchronously; shared memory; views of resizable buffers).
 * The layout is `_layout.ts`'s; `_decode.ts` reads it back.
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
import { reduceSymbol } from "../reduction.ts";
import { isRefusedPlatformObject, platformWhy, PROXY_WHY } from "../_values.ts";
import { DESCEND, pathString, pathTo } from "../_walk.ts";
import {
  BLOB_WHY,
  CLONE_WHY,
  clonesAsObject,
  describe,
  DETACHED_WHY,
  EncodeError,
  hostWhy,
  isPortable,
  notQueueable,
  RESIZABLE_WHY,
  SHARED_WHY,
} from "./_refusals.ts";
import * as layout from "./_layout.ts";

// Module-local copies: V8 reads a module's own consts faster than imported
// bindings (imported in the hot paths: encode + decode of a small object ~10% slower).
const {
  DOM_EXCEPTION,
  ERROR_KIND,
  KIND_OF,
  RAW_ALIGN,
  RAW_HEAD_MAX,
  RAW_LENGTH_BYTES,
  RAW_MIN,
  T_ARRAY,
  T_ARRAY_EX,
  T_ARRAYBUFFER,
  T_BIGINT,
  T_BIGINT64,
  T_BOXED,
  T_DATE,
  T_END,
  T_ERROR,
  T_FALSE,
  T_FLOAT64,
  T_INT32,
  T_MAP,
  T_NULL,
  T_OBJECT,
  T_REF,
  T_REGEXP,
  T_RESIZABLE,
  T_SET,
  T_SMALLINT,
  T_STR16,
  T_STR32,
  T_STR8,
  T_TRUE,
  T_TYPED,
  T_UNDEFINED,
  T_VIEW,
} = layout;

/** Strings up to this many UTF-16 units always fit a one-byte length (3 bytes a unit). */
const SHORT_STRING = 85;

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
    portable = isPortable(why),
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
    this.#ensure(RAW_HEAD_MAX);
    this.#buf[this.#pos++] = tag;
    if (kind >= 0) this.#buf[this.#pos++] = kind;
    if (max >= 0) {
      this.#view.setUint32(this.#pos, max, true);
      this.#pos += 4;
    }
    this.#view.setUint32(this.#pos, bytes.length, true);
    this.#pos += RAW_LENGTH_BYTES;
    // Pad so the raw bytes start 8-aligned in the encoding, hence in the
    // ring: V8 copies shared memory word by word only when both sides are
    // aligned alike, byte by byte (many times slower) otherwise.
    const pad =
      (RAW_ALIGN - ((this.#pos + this.#rawBytes + 1) & (RAW_ALIGN - 1))) &
      (RAW_ALIGN - 1);
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

function hasHoles(a: unknown[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === undefined && !(i in a)) return true;
  }
  return false;
}
