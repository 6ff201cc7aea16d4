/**
 * Length-prefixed frames over a byte stream (a TCP connection): each frame is
 * a 4-byte big-endian length, then that many bytes. A frame longer than the
 * reader's limit is refused before any of it is read, so a peer claiming
 * 4 GiB costs nothing.
 *
 * @module
 */

/** The largest frame a manager connection accepts by default (64 MiB). */
export const MAX_FRAME: number = 64 * 1024 * 1024;

/** A frame broke the protocol (too long, or cut short); its connection must close. */
export class FrameError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** The smallest byte stream frames need: a Deno.Conn fits. */
export interface ByteStream {
  /** Reads into `p`; null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`, returning how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Reads whole frames from a stream, buffering what arrived past a frame. */
export class FrameReader {
  #stream: ByteStream;
  #buf: Uint8Array = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  /** The longest frame accepted; longer ones throw {@linkcode FrameError}. */
  maxFrame: number;

  /** Reads frames from `stream`, refusing any longer than `maxFrame` bytes. */
  constructor(stream: ByteStream, maxFrame: number = MAX_FRAME) {
    this.#stream = stream;
    this.maxFrame = maxFrame;
  }

  /** Whether a whole frame is already buffered (no read needed). */
  get buffered(): number {
    return this.#end - this.#start;
  }

  async #fill(need: number): Promise<boolean> {
    while (this.#end - this.#start < need) {
      if (this.#end === this.#buf.length) {
        if (this.#start > 0) {
          this.#buf.copyWithin(0, this.#start, this.#end);
          this.#end -= this.#start;
          this.#start = 0;
        } else {
          // Grow step by step, so a peer that only claims a long frame
          // costs no more memory than it actually sent.
          const next = new Uint8Array(
            Math.min(this.#buf.length * 2, Math.max(need, this.#end + 1)),
          );
          next.set(this.#buf.subarray(0, this.#end));
          this.#buf = next;
        }
      }
      const n = await this.#stream.read(this.#buf.subarray(this.#end));
      if (n === null) return false;
      this.#end += n;
    }
    return true;
  }

  /**
   * The next frame's payload (a copy), or null when the stream ended cleanly
   * between frames. Throws {@linkcode FrameError} for a frame longer than
   * `maxFrame`, or a stream that ends inside a frame.
   */
  async read(): Promise<Uint8Array | null> {
    if (!await this.#fill(4)) {
      if (this.#end > this.#start) {
        throw new FrameError("the connection ended inside a frame header");
      }
      return null;
    }
    const b = this.#buf, s = this.#start;
    const len = ((b[s] << 24) >>> 0) + (b[s + 1] << 16) + (b[s + 2] << 8) +
      b[s + 3];
    if (len > this.maxFrame) {
      throw new FrameError(
        `a frame of ${len} bytes is longer than the limit of ${this.maxFrame} bytes`,
      );
    }
    if (!await this.#fill(4 + len)) {
      throw new FrameError(
        `the connection ended inside a frame of ${len} bytes`,
      );
    }
    const start = this.#start + 4;
    const out = this.#buf.slice(start, start + len);
    this.#start = start + len;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return out;
  }
}

/** The frame for `payload`: its 4-byte big-endian length, then the bytes. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** Writes all of `bytes` to `stream`. */
export async function writeAll(
  stream: ByteStream,
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await stream.write(bytes.subarray(off));
}

/** Writes one frame holding `payload`. */
export function writeFrame(
  stream: ByteStream,
  payload: Uint8Array,
): Promise<void> {
  return writeAll(stream, encodeFrame(payload));
}

/**
 * Writes frames in order without waiting for the previous write to be
 * awaited: the first write starts at once (no promise hop), later ones
 * queue behind it. A failed write calls `onError` once; later writes are
 * dropped.
 */
export class FrameWriter {
  #stream: ByteStream;
  #queue: Uint8Array[] = [];
  #busy = false;
  #failed = false;
  #onError: (e: unknown) => void;

  /** Writes to `stream`; `onError` hears of the first failure. */
  constructor(stream: ByteStream, onError: (e: unknown) => void) {
    this.#stream = stream;
    this.#onError = onError;
  }

  /** Queues `bytes` (a whole frame) for writing. */
  write(bytes: Uint8Array): void {
    if (this.#failed) return;
    if (this.#busy) {
      this.#queue.push(bytes);
      return;
    }
    this.#busy = true;
    this.#run(bytes);
  }

  async #run(first: Uint8Array): Promise<void> {
    let bytes: Uint8Array | undefined = first;
    try {
      while (bytes) {
        let off = 0;
        while (off < bytes.length) {
          off += await this.#stream.write(
            off === 0 ? bytes : bytes.subarray(off),
          );
        }
        bytes = this.#queue.shift();
      }
    } catch (e) {
      this.#failed = true;
      this.#queue = [];
      this.#onError(e);
    } finally {
      this.#busy = false;
    }
  }
}
