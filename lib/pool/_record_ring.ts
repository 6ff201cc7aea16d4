/**
 * A single-producer, single-consumer ring of records in a SharedArrayBuffer:
 * how a pool and one of its workers exchange tasks and results without
 * `postMessage` (slow in Deno: microseconds per message, a millisecond per
 * 100 kB). One ring per direction per worker.
 *
 * Layout: a 16-byte header (`W`: bytes ever written, `R`: bytes ever read,
 * both as wrapping int32 counters), then `capacity` bytes of records. A
 * record is an 8-byte head (payload length, type) and the payload, padded
 * to 8 bytes, so Float64 views of payloads are aligned. A record never
 * wraps: when it does not fit before the end, a pad record (length -1)
 * fills the rest and the record starts at 0. The producer writes the bytes,
 * then publishes them with `Atomics.store(W)`; the consumer reads them, then
 * frees them with `Atomics.store(R)`: the atomics order the plain accesses.
 *
 * @module
 */

import { PAGE_BYTES, pageBuffer } from "../shm/_pages.ts";

/** Header word: bytes ever written (wrapping int32). */
export const W = 0;
/** Header word: bytes ever read (wrapping int32). */
export const R = 1;
const HEADER = 16;
const PAD = -1;

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * One direction of a pool worker's channel: one producer, one consumer,
 * whole records (`shm/_ring.ts`'s ItemRing is the ring of items that many
 * processes share).
 */
export class RecordRing {
  /** The shared memory (header and records). */
  readonly buffer: SharedArrayBuffer;
  /** Header words, for waiting on `W` (new records) or `R` (freed space). */
  readonly hdr: Int32Array;
  /** Bytes, Int32 and Float64 views of the whole buffer. */
  readonly u8: Uint8Array;
  /** Int32 view of the whole buffer. */
  readonly i32: Int32Array;
  /** Float64 view of the whole buffer. */
  readonly f64: Float64Array;
  readonly #cap: number;
  readonly #mask: number;
  // Producer state between begin() and commit().
  #w = 0;
  #pad = 0;
  #at = 0;
  // Consumer state between next() and release().
  #r = 0;
  #size = 0;
  /** Type of the record `next()` found. */
  type = 0;
  /** Byte offset (in the whole buffer) of that record's payload. */
  at = 0;
  /** Payload length of that record. */
  length = 0;

  /** Wraps `buffer`, or makes a ring of `capacity` bytes (a power of two). */
  constructor(buffer: SharedArrayBuffer | number) {
    if (typeof buffer === "number") {
      checkCapacity(buffer);
      // Whole pages from a 64 KiB ring up (rounding stays under the next
      // power of two, so the other side reads the same capacity).
      this.buffer = buffer >= PAGE_BYTES
        ? pageBuffer(HEADER + buffer)
        : new SharedArrayBuffer(HEADER + buffer);
    } else this.buffer = buffer;
    // A page buffer is rounded up to pages: its ring is the biggest power of
    // two that fits; any other buffer must be a power of two exactly.
    const room = this.buffer.byteLength - HEADER;
    this.#cap = this.buffer.byteLength % PAGE_BYTES === 0
      ? 2 ** Math.floor(Math.log2(room))
      : room;
    checkCapacity(this.#cap);
    this.#mask = this.#cap - 1;
    this.hdr = new Int32Array(this.buffer, 0, 4);
    this.u8 = new Uint8Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.f64 = new Float64Array(this.buffer);
  }

  /** The largest payload a record can hold. */
  get maxPayload(): number {
    return (this.#cap >> 1) - 8;
  }

  /**
   * Reserves room for a payload of `length` bytes. Returns the byte offset
   * (in the whole buffer) to write it at, or -1 when the ring has no room
   * now. Follow with {@linkcode RecordRing.commit}.
   */
  begin(length: number): number {
    if (length > this.maxPayload) return -1;
    const size = 8 + align8(length);
    const w = Atomics.load(this.hdr, W);
    const used = (w - Atomics.load(this.hdr, R)) | 0;
    const off = w & this.#mask;
    const toEnd = this.#cap - off;
    const pad = toEnd < size ? toEnd : 0;
    if (this.#cap - used < pad + size) return -1;
    this.#w = w;
    this.#pad = pad;
    this.#at = pad ? 0 : off;
    return HEADER + this.#at + 8;
  }

  /** Publishes the record reserved by `begin()`, with its type and length. */
  commit(type: number, length: number): void {
    const i32 = this.i32;
    if (this.#pad) {
      i32[(HEADER + (this.#w & this.#mask)) >> 2] = PAD;
    }
    const head = (HEADER + this.#at) >> 2;
    i32[head] = length;
    i32[head + 1] = type;
    Atomics.store(this.hdr, W, (this.#w + this.#pad + 8 + align8(length)) | 0);
    Atomics.notify(this.hdr, W);
  }

  /** Finds the next record (sets `type`, `at`, `length`); false when none. */
  next(): boolean {
    let r = Atomics.load(this.hdr, R);
    const w = Atomics.load(this.hdr, W);
    if (r === w) return false;
    let off = r & this.#mask;
    let length = this.i32[(HEADER + off) >> 2];
    if (length === PAD) {
      r = (r + this.#cap - off) | 0;
      off = 0;
      length = this.i32[HEADER >> 2];
    }
    this.#r = r;
    this.#size = 8 + align8(length);
    this.type = this.i32[((HEADER + off) >> 2) + 1];
    this.at = HEADER + off + 8;
    this.length = length;
    return true;
  }

  /** Frees the record `next()` found. */
  release(): void {
    Atomics.store(this.hdr, R, (this.#r + this.#size) | 0);
    Atomics.notify(this.hdr, R);
  }

  /** True when nothing is waiting to be read. */
  empty(): boolean {
    return Atomics.load(this.hdr, R) === Atomics.load(this.hdr, W);
  }
}

function checkCapacity(cap: number): void {
  if (!(cap >= 64) || (cap & (cap - 1)) !== 0) {
    throw new RangeError(
      `ring capacity must be at least 64 bytes and a power of two, got ${cap}`,
    );
  }
}
