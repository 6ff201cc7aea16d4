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

/**
 * Reads whole frames from a stream, buffering what arrived past a frame.
 *
 * Two ways to read: {@linkcode FrameReader.read} (one frame at a time, a
 * copy), or in place, for hot loops: {@linkcode FrameReader.next} hands out
 * every frame already buffered without copying (its bytes are
 * `bytes[at, at + length)`, valid until the next {@linkcode FrameReader.more}),
 * and `more()` reads once from the stream into the same buffer. One read
 * usually brings a whole frame, or several: each is parsed where it landed.
 */
export class FrameReader {
  #stream: ByteStream;
  #buf: Uint8Array = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  /** The longest frame accepted; longer ones throw {@linkcode FrameError}. */
  maxFrame: number;
  /** Where the frame `next()` returned starts in {@linkcode FrameReader.bytes}. */
  at = 0;

  /** Reads frames from `stream`, refusing any longer than `maxFrame` bytes. */
  constructor(stream: ByteStream, maxFrame: number = MAX_FRAME) {
    this.#stream = stream;
    this.maxFrame = maxFrame;
  }

  /** Bytes buffered but not yet handed out. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The buffer `next()`'s frames are in (it changes when it grows). */
  get bytes(): Uint8Array {
    return this.#buf;
  }

  /** The length of the buffered frame's payload, or -1 when its header is not all here. */
  #peek(): number {
    const b = this.#buf, s = this.#start;
    if (this.#end - s < 4) return -1;
    const len = ((b[s] << 24) >>> 0) + (b[s + 1] << 16) + (b[s + 2] << 8) +
      b[s + 3];
    if (len > this.maxFrame) {
      throw new FrameError(
        `a frame of ${len} bytes is longer than the limit of ${this.maxFrame} bytes`,
      );
    }
    return len;
  }

  /**
   * The next whole frame already buffered, in place: returns its payload's
   * length and sets {@linkcode FrameReader.at}; -1 when no whole frame is
   * buffered (then call `more()`). Throws {@linkcode FrameError} for a frame
   * longer than `maxFrame`.
   */
  next(): number {
    const len = this.#peek();
    if (len < 0 || this.#end - this.#start < 4 + len) return -1;
    this.at = this.#start + 4;
    this.#start = this.at + len;
    return len;
  }

  /**
   * Reads once from the stream (making room for the frame under way first).
   * False at the end of the stream; throws {@linkcode FrameError} when it
   * ends inside a frame.
   */
  async more(): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    const len = this.#peek();
    this.#room(len < 0 ? 4 : 4 + len);
    const n = await this.#stream.read(
      this.#end === 0 ? this.#buf : this.#buf.subarray(this.#end),
    );
    if (n === null) {
      if (this.#end > this.#start) {
        throw new FrameError(
          this.#end - this.#start < 4
            ? "the connection ended inside a frame header"
            : `the connection ended inside a frame of ${this.#peek()} bytes`,
        );
      }
      return false;
    }
    this.#end += n;
    return true;
  }

  /** Makes room after the buffered bytes, for a frame of `need` bytes in all. */
  #room(need: number): void {
    if (this.#end < this.#buf.length) return;
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
      return;
    }
    // Grow step by step, so a peer that only claims a long frame costs no
    // more memory than it actually sent.
    const next = new Uint8Array(
      Math.min(this.#buf.length * 2, Math.max(need, this.#end + 1)),
    );
    next.set(this.#buf.subarray(0, this.#end));
    this.#buf = next;
  }

  /**
   * The next frame's payload (a copy), or null when the stream ended cleanly
   * between frames. Throws {@linkcode FrameError} for a frame longer than
   * `maxFrame`, or a stream that ends inside a frame.
   */
  async read(): Promise<Uint8Array | null> {
    let len: number;
    while ((len = this.next()) < 0) {
      if (!await this.more()) return null;
    }
    return this.#buf.slice(this.at, this.at + len);
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

/** What {@linkcode FrameWriter.frame} copies a payload from (the codec's Encoder fits). */
export interface PayloadSource {
  /** Copies bytes `[from, to)` of the payload into `dst` at `at`. */
  copyTo(dst: Uint8Array, at: number, from: number, to: number): void;
}

/** The staging buffer's usual size; a bigger one is dropped once drained. */
const STAGE_BYTES = 64 * 1024;

/**
 * Writes frames in order without waiting for the previous write to be
 * awaited: a write starts at once when none is under way (no promise hop
 * first); frames queued meanwhile go out together, in one write, when it
 * ends. Frames are built in a reusable staging buffer (no allocation per
 * frame): a write only ever covers bytes that nothing changes until it
 * ends. A failed write calls `onError` once; later writes are dropped.
 */
export class FrameWriter {
  #stream: ByteStream;
  #onError: (e: unknown) => void;
  #failed = false;
  #buf: Uint8Array = new Uint8Array(STAGE_BYTES);
  /** Bytes `[#sent, #end)` of `#buf` wait for the write under way to end. */
  #sent = 0;
  #end = 0;
  /** The bytes of the write under way (undefined: none). */
  #current: Uint8Array | undefined;
  #done = (n: number): void => this.#written(n);
  #fail = (e: unknown): void => {
    if (this.#failed) return;
    this.#failed = true;
    this.#current = undefined;
    this.#sent = this.#end = 0;
    this.#onError(e);
  };

  /** Writes to `stream`; `onError` hears of the first failure. */
  constructor(stream: ByteStream, onError: (e: unknown) => void) {
    this.#stream = stream;
    this.#onError = onError;
  }

  /** Room for `n` more bytes at `#end`, keeping the bytes of the write under way intact. */
  #reserve(n: number): void {
    if (this.#end + n <= this.#buf.length) return;
    const waiting = this.#end - this.#sent;
    // Nothing is written from `#buf` while no write is under way, and the
    // one under way holds its own view: the old buffer may be left to it.
    const size = Math.max(STAGE_BYTES, waiting + n);
    const next = this.#current === undefined && size <= this.#buf.length
      ? this.#buf
      : new Uint8Array(size);
    if (next === this.#buf) this.#buf.copyWithin(0, this.#sent, this.#end);
    else next.set(this.#buf.subarray(this.#sent, this.#end));
    this.#buf = next;
    this.#sent = 0;
    this.#end = waiting;
  }

  /** Queues a frame of the `n`-byte payload `src` holds (its header added). */
  frame(src: PayloadSource, n: number): void {
    if (this.#failed) return;
    this.#reserve(4 + n);
    const b = this.#buf, at = this.#end;
    b[at] = n >>> 24;
    b[at + 1] = (n >>> 16) & 0xff;
    b[at + 2] = (n >>> 8) & 0xff;
    b[at + 3] = n & 0xff;
    src.copyTo(b, at + 4, 0, n);
    this.#end = at + 4 + n;
    if (this.#current === undefined) this.#flush();
  }

  /** Queues `bytes` (a whole frame, or several) for writing. */
  write(bytes: Uint8Array): void {
    if (this.#failed) return;
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
    if (this.#current === undefined) this.#flush();
  }

  /** Starts writing what waits (none is under way). */
  #flush(): void {
    const bytes = this.#buf.subarray(this.#sent, this.#end);
    this.#sent = this.#end;
    this.#start(bytes);
  }

  #start(bytes: Uint8Array): void {
    this.#current = bytes;
    let p: Promise<number>;
    try {
      p = this.#stream.write(bytes);
    } catch (e) {
      this.#fail(e);
      return;
    }
    p.then(this.#done, this.#fail);
  }

  #written(n: number): void {
    if (this.#failed) return;
    const cur = this.#current!;
    if (n < cur.length) {
      this.#start(cur.subarray(n));
      return;
    }
    if (this.#end > this.#sent) {
      this.#flush();
      return;
    }
    this.#current = undefined;
    this.#sent = this.#end = 0;
    if (this.#buf.length > STAGE_BYTES) this.#buf = new Uint8Array(STAGE_BYTES);
  }
}
