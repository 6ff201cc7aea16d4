/**
 * The codec's decoder: bytes in the layout of `_layout.ts` back to values,
 * never reading past the end it was given.
 *
 * @module
 */

import * as layout from "./_layout.ts";

// Module-local copies: V8 reads a module's own consts faster than imported
// bindings (imported in the hot paths: encode + decode of a small object ~10% slower).
const {
  BUFFER_RAW_AT,
  DATAVIEW_KIND,
  DOM_EXCEPTION,
  ERRORS,
  KINDS,
  RAW_COUNTS_BYTES,
  RAW_LENGTH_BYTES,
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
  TYPED_KIND_AT,
  TYPED_RAW_AT,
} = layout;

/** Slots of the decoder's cache of object keys (a power of two). */
const KEY_CACHE = 1024;

const textDecoder = new TextDecoder();

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

/**
 * The {@linkcode RawPlan} of an encoding of `total` bytes whose first
 * `RAW_HEAD` bytes are `head`, or undefined when the value is
 * anything else.
 */
export function rawPlan(head: Uint8Array, total: number): RawPlan | undefined {
  const u32 = (at: number) =>
    (head[at] | (head[at + 1] << 8) | (head[at + 2] << 16) |
      (head[at + 3] << 24)) >>> 0;
  if (head[0] === T_TYPED) {
    const kind = head[TYPED_KIND_AT];
    const length = u32(TYPED_RAW_AT);
    const skip = TYPED_RAW_AT + RAW_COUNTS_BYTES +
      head[TYPED_RAW_AT + RAW_LENGTH_BYTES];
    if (!KINDS[kind] || skip + length !== total) return undefined;
    return { skip, length, finish: (b) => view(kind, b) };
  }
  if (head[0] === T_ARRAYBUFFER) {
    const length = u32(BUFFER_RAW_AT);
    const skip = BUFFER_RAW_AT + RAW_COUNTS_BYTES +
      head[BUFFER_RAW_AT + RAW_LENGTH_BYTES];
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
    this.#need(RAW_COUNTS_BYTES);
    const n = this.#view.getUint32(this.#pos, true);
    this.#pos += RAW_COUNTS_BYTES + this.#buf[this.#pos + RAW_LENGTH_BYTES];
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
