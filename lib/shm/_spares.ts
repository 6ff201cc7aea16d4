/**
 * Spare shared buffers for payloads too big for a ring record, handed back
 * by the side that read them. A fresh MiB costs 0.3-0.9 ms here to allocate
 * and first touch (page faults), filling a reused one 0.04 ms: a pool's
 * 1 MiB tasks spent more time in `new SharedArrayBuffer` than in the copies.
 *
 * @module
 */

/** Most bytes one side keeps spare (beyond it, buffers are dropped). */
export const SPARE_BYTES = 32 << 20;
/** Most buffers one side keeps spare. */
export const SPARE_COUNT = 8;
/** Buffers are made in whole multiples of this, so that sizes near one another share them. */
const GRAIN = 1 << 16;

/** One side's spare buffers: take one for a payload, give one back once read. */
export class SpareBuffers {
  #free: SharedArrayBuffer[] = [];
  #bytes = 0;

  /**
   * A buffer of at least `bytes`: a spare one no more than twice that, else
   * a new one.
   */
  take(bytes: number): SharedArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const len = this.#free[i].byteLength;
      if (
        len >= bytes && len <= 2 * bytes + GRAIN &&
        (best < 0 || len < this.#free[best].byteLength)
      ) best = i;
    }
    if (best < 0) {
      return new SharedArrayBuffer(Math.ceil(bytes / GRAIN) * GRAIN);
    }
    const b = this.#free[best];
    this.#free[best] = this.#free[this.#free.length - 1];
    this.#free.pop();
    this.#bytes -= b.byteLength;
    return b;
  }

  /** Keeps `b` for a later {@linkcode SpareBuffers.take}, room allowing. */
  give(b: SharedArrayBuffer): void {
    if (
      this.#free.length >= SPARE_COUNT ||
      this.#bytes + b.byteLength > SPARE_BYTES
    ) return;
    this.#free.push(b);
    this.#bytes += b.byteLength;
  }

  /** Drops every spare buffer. */
  clear(): void {
    this.#free = [];
    this.#bytes = 0;
  }
}
