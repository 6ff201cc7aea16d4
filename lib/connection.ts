/**
 * Pipes: two connected ends that send any structured-cloneable value (and
 * the module's shared objects) between processes, over a MessageChannel.
 *
 * Beside the channel, each pipe has a small SharedArrayBuffer: a message
 * counter per direction (so a receiver sleeps on `Atomics.waitAsync` and
 * takes messages with `receiveMessageOnPort`, without an event listener that
 * would keep the program alive), a closed flag per end, and which process
 * holds each end, so `recv()` sees EOF when the peer closes *or its process
 * ends* instead of hanging.
 *
 * @example
 * ```ts
 * import { Pipe, Process } from "@mp/multiprocessing";
 * import type { Connection } from "@mp/multiprocessing";
 *
 * export function child(conn: Connection) {
 *   conn.send("hello from the child");
 *   conn.close();
 * }
 *
 * if (import.meta.main) {
 *   const [parentEnd, childEnd] = Pipe();
 *   const p = new Process({ target: child, args: [childEnd] });
 *   await p.start();
 *   console.log(await parentEnd.recv()); // "hello from the child"
 *   await p.join();
 *   parentEnd.close();
 * }
 * ```
 *
 * @module
 */

import { receiveMessageOnPort } from "node:worker_threads";
import {
  findUncloneable,
  rebuild,
  reduce,
  reduceSymbol,
  registerRebuilder,
} from "./reduction.ts";
import type { Reduced } from "./reduction.ts";
import { currentIdent, isIdentAlive } from "./_proctable.ts";
import {
  checkTimeout,
  deadline,
  SLICE_MS,
  waitAsync,
  waitSync,
} from "./_wait.ts";
import { EOFError, ProcessError } from "./errors.ts";

// Control words, per end `side` (0 or 1):
const SENT = 0; // [SENT + side]: messages sent *to* end `side`
const CLOSED = 2; // [CLOSED + side]: end `side` closed
const HOLDER = 4; // [HOLDER + side]: ident of the process holding end `side`
const WORDS = 6;

const TAG = "mp.Connection";
/** How long `recv()` may block the thread for a fast reply before it parks (ms). */
const SPIN_MS = 0.2;
/** A parked wait shorter than this (ms) means messages come fast: spin again. */
const RESPIN_MS = 1;

type Received = { message: unknown } | undefined;

/**
 * The ends that live in this thread, by pipe. Deno loses messages still
 * queued for a port in the *same* thread when the sending port closes, so
 * closing an end first moves what it sent into its local peer's buffer.
 */
const localEnds = new Map<
  SharedArrayBuffer,
  (WeakRef<Connection> | undefined)[]
>();

/**
 * One end of a {@linkcode Pipe}: Python's `multiprocessing.connection.Connection`.
 * Send it to a child inside `args` (or through another pipe) to give the
 * child that end.
 *
 * @example
 * ```ts
 * import { Pipe } from "@mp/multiprocessing";
 * using ends = Pipe();
 * const [a, b] = ends;
 * a.send({ n: 1 });
 * console.log(await b.recv()); // { n: 1 }
 * ```
 */
export class Connection implements AsyncIterable<unknown>, Disposable {
  #port: MessagePort | null;
  #ctl: Int32Array;
  #side: 0 | 1;
  #readable: boolean;
  #writable: boolean;
  #received: number;
  #buffer: unknown[] = [];
  #spin = true;

  /** Internal: use {@linkcode Pipe}. */
  constructor(
    port: MessagePort,
    ctl: Int32Array,
    side: 0 | 1,
    readable: boolean,
    writable: boolean,
    received = 0,
  ) {
    this.#port = port;
    this.#ctl = ctl;
    this.#side = side;
    this.#readable = readable;
    this.#writable = writable;
    this.#received = received;
    Atomics.store(ctl, HOLDER + side, currentIdent());
    const key = ctl.buffer as SharedArrayBuffer;
    const ends = localEnds.get(key) ?? [];
    ends[side] = new WeakRef(this);
    localEnds.set(key, ends);
  }

  /** Forgets this end in {@linkcode localEnds}; returns the local peer, if any. */
  #leaveThread(): Connection | undefined {
    const key = this.#ctl.buffer as SharedArrayBuffer;
    const ends = localEnds.get(key);
    if (!ends) return undefined;
    ends[this.#side] = undefined;
    const peer = ends[this.#peer()]?.deref();
    if (!peer) localEnds.delete(key);
    return peer;
  }

  /** Moves every message queued for this end into its buffer. */
  #absorb(): void {
    if (this.#port === null) return;
    let r: Received;
    while ((r = receiveMessageOnPort(this.#port as never) as Received)) {
      this.#received++;
      this.#buffer.push(r.message);
    }
  }

  /** True once this end is closed (or was sent to another process). */
  get closed(): boolean {
    return this.#port === null;
  }

  /** Whether this end can receive. */
  get readable(): boolean {
    return this.#readable;
  }

  /** Whether this end can send. */
  get writable(): boolean {
    return this.#writable;
  }

  #open(): MessagePort {
    if (this.#port === null) throw new ProcessError("connection is closed");
    return this.#port;
  }

  #peer(): 0 | 1 {
    return this.#side === 0 ? 1 : 0;
  }

  /** True when the other end closed or its process ended. */
  #peerGone(): boolean {
    const peer = this.#peer();
    return Atomics.load(this.#ctl, CLOSED + peer) === 1 ||
      !isIdentAlive(Atomics.load(this.#ctl, HOLDER + peer));
  }

  /**
   * Sends `obj` to the other end: any structured-cloneable value, with the
   * module's shared objects (queues, locks, other connections, ...) inside
   * it arriving shared. Throws `EOFError` when the other end is gone.
   */
  send(obj: unknown): void {
    const port = this.#open();
    if (!this.#writable) throw new ProcessError("connection is read-only");
    if (this.#peerGone()) {
      throw new EOFError("the other end of the pipe is closed");
    }
    const transfer: Transferable[] = [];
    const wire = reduce(obj, transfer);
    try {
      port.postMessage(wire, transfer);
    } catch (e) {
      const bad = findUncloneable(obj, "obj");
      throw new TypeError(
        bad
          ? `send(): ${bad.path} is a ${bad.type}, which cannot be sent to another process`
          : `send(): the value cannot be sent to another process: ${
            (e as Error).message
          }`,
      );
    }
    const idx = SENT + this.#peer();
    Atomics.add(this.#ctl, idx, 1);
    Atomics.notify(this.#ctl, idx);
  }

  /**
   * Sends bytes (a copy of `buf`, or of `size` bytes from `offset`), for
   * {@linkcode Connection.recvBytes} at the other end.
   */
  sendBytes(
    buf: ArrayBufferView | ArrayBuffer,
    offset = 0,
    size?: number,
  ): void {
    const bytes = buf instanceof ArrayBuffer
      ? new Uint8Array(buf)
      : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    if (!Number.isInteger(offset) || offset < 0 || offset > bytes.length) {
      throw new RangeError(
        `offset ${offset} is outside the buffer (0..${bytes.length})`,
      );
    }
    const n = size ?? bytes.length - offset;
    if (!Number.isInteger(n) || n < 0 || offset + n > bytes.length) {
      throw new RangeError(
        `size ${size} is outside the buffer (${
          bytes.length - offset
        } bytes after offset)`,
      );
    }
    this.send(bytes.slice(offset, offset + n));
  }

  #take(): Received {
    if (this.#buffer.length > 0) return { message: this.#buffer.shift() };
    if (this.#port === null) throw new ProcessError("connection is closed");
    const r = receiveMessageOnPort(this.#port as never) as Received;
    if (r) this.#received++;
    return r;
  }

  #check(): MessagePort {
    const port = this.#open();
    if (!this.#readable) throw new ProcessError("connection is write-only");
    return port;
  }

  /**
   * Receives the next message. Rejects with `EOFError` once the other end
   * closed or its process ended and every message it sent was received.
   */
  async recv(): Promise<unknown> {
    this.#check();
    while (true) {
      const step = this.#step();
      if (step.done) return step.value;
      const { idx, sent, slice } = step;
      if (this.#spin) {
        // Adaptive spin-then-park: a reply that comes within SPIN_MS is
        // caught by a short blocking wait (a few microseconds to wake),
        // not by Atomics.waitAsync (tens of microseconds in Deno). Once a
        // spin comes back empty, we park until messages come fast again.
        if (waitSync(this.#ctl, idx, sent, SPIN_MS) !== "timed-out") continue;
        this.#spin = false;
      }
      const t = performance.now();
      await waitAsync(this.#ctl, idx, sent, slice);
      if (performance.now() - t < RESPIN_MS) this.#spin = true;
    }
  }

  /** Like {@linkcode Connection.recv}, blocking the thread with `Atomics.wait` (for workers). */
  recvSync(): unknown {
    this.#check();
    while (true) {
      const step = this.#step();
      if (step.done) return step.value;
      waitSync(this.#ctl, step.idx, step.sent, step.slice);
    }
  }

  /**
   * One attempt to receive: the message, or what to wait on before the next
   * attempt (the counter word and the value it had). Throws `EOFError` once
   * the peer is gone and everything it sent was received.
   */
  #step():
    | { done: true; value: unknown }
    | { done: false; idx: number; sent: number; slice: number } {
    const r = this.#take();
    if (r) return { done: true, value: rebuild(r.message) };
    const idx = SENT + this.#side;
    const sent = Atomics.load(this.#ctl, idx);
    if (sent === this.#received && this.#peerGone()) {
      // A last message may have been counted just before the close.
      const last = this.#take();
      if (last) return { done: true, value: rebuild(last.message) };
      throw new EOFError("the other end of the pipe is closed");
    }
    // A message counted but not yet visible is a moment away: look again soon.
    return {
      done: false,
      idx,
      sent,
      slice: sent > this.#received ? 1 : SLICE_MS,
    };
  }

  /** Receives a message sent with {@linkcode Connection.sendBytes}, as a Uint8Array. */
  async recvBytes(): Promise<Uint8Array> {
    const m = await this.recv();
    if (m instanceof Uint8Array) return m;
    if (m instanceof ArrayBuffer) return new Uint8Array(m);
    throw new TypeError(
      `recvBytes(): the message received is a ${
        m === null ? "null" : typeof m
      }, not bytes; use recv() for it`,
    );
  }

  /**
   * Whether a message (or EOF) is ready. Like Python's `poll()`, it does not
   * wait by default; pass `timeoutMs` to wait up to that long, `Infinity` to
   * wait until something arrives.
   */
  async poll(timeoutMs = 0): Promise<boolean> {
    this.#check();
    checkTimeout(timeoutMs, "poll timeout");
    const end = deadline(timeoutMs);
    const idx = SENT + this.#side;
    while (true) {
      if (this.#buffer.length > 0) return true;
      const r = this.#take();
      if (r) {
        this.#buffer.push(r.message);
        return true;
      }
      const sent = Atomics.load(this.#ctl, idx);
      if (sent === this.#received && this.#peerGone()) return true;
      const left = end - performance.now();
      if (left <= 0) return false;
      await waitAsync(
        this.#ctl,
        idx,
        sent,
        Math.min(left, sent > this.#received ? 1 : SLICE_MS),
      );
    }
  }

  /** Closes this end; the other end's `recv()` gets `EOFError` once it drained. */
  close(): void {
    const port = this.#port;
    if (port === null) return;
    this.#port = null;
    const peer = this.#leaveThread();
    if (peer) peer.#absorb();
    Atomics.store(this.#ctl, CLOSED + this.#side, 1);
    const idx = SENT + this.#peer();
    Atomics.notify(this.#ctl, idx);
    port.close();
  }

  /** Closes this end: `using conn = ...`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Yields messages until the other end is gone. */
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown, void, undefined> {
    while (true) {
      try {
        yield await this.recv();
      } catch (e) {
        if (e instanceof EOFError) return;
        throw e;
      }
    }
  }

  /** Sends this end to another process; here it is closed afterwards. */
  [reduceSymbol](): Reduced {
    const port = this.#open();
    if (this.#buffer.length > 0) {
      throw new ProcessError(
        "cannot send a connection that holds a message already taken by poll(); recv() it first",
      );
    }
    // The port moves; this object must not use it again.
    this.#port = null;
    this.#leaveThread();
    return {
      tag: TAG,
      state: [
        port,
        this.#ctl.buffer,
        this.#side,
        this.#readable,
        this.#writable,
        this.#received,
      ],
      transfer: [port],
    };
  }
}

registerRebuilder(TAG, (state) => {
  const [port, buf, side, readable, writable, received] = state as [
    MessagePort,
    SharedArrayBuffer,
    0 | 1,
    boolean,
    boolean,
    number,
  ];
  return new Connection(
    port,
    new Int32Array(buf),
    side,
    readable,
    writable,
    received,
  );
});

/** The two ends of a pipe; disposing it closes both (`using ends = Pipe()`). */
export type PipeEnds = [Connection, Connection] & Disposable;

/**
 * Creates a pipe and returns its two ends (Python's `multiprocessing.Pipe`).
 * With `duplex` (the default) both ends send and receive; with
 * `duplex = false` the first end only receives and the second only sends.
 *
 * @example
 * ```ts
 * import { Pipe } from "@mp/multiprocessing";
 * const [reader, writer] = Pipe(false);
 * writer.send([1, 2, 3]);
 * console.log(await reader.recv()); // [ 1, 2, 3 ]
 * reader.close();
 * writer.close();
 * ```
 */
export function Pipe(duplex = true): PipeEnds {
  const { port1, port2 } = new MessageChannel();
  const ctl = new Int32Array(new SharedArrayBuffer(WORDS * 4));
  const a = new Connection(port1, ctl, 0, true, duplex);
  const b = new Connection(port2, ctl, 1, duplex, true);
  const ends = [a, b] as PipeEnds;
  Object.defineProperty(ends, Symbol.dispose, {
    value: () => {
      a.close();
      b.close();
    },
  });
  return ends;
}
