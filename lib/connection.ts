/**
 * Pipes: two connected ends that send any structured-cloneable value (and
 * the module's shared objects) between processes.
 *
 * Plain data travels through shared memory: one ring buffer per direction
 * (the queues' ring, `shm/_ring.ts`), each message encoded once straight into it
 * by the queues' codec (`wire/_codec.ts`), so a round trip costs a few
 * microseconds instead of a structured clone and an event-loop hop each way.
 * Messages that hold the module's shared objects (another Connection, a
 * Queue, a Lock, ...) or MessagePorts go through a MessageChannel beside
 * the rings, in order: the ring carries a mark where such a message stands.
 * The receiver never listens on the port (a listening port keeps the program
 * alive in Deno); it takes messages with `receiveMessageOnPort`.
 *
 * A small control buffer says which end closed and which process holds each
 * end (or that it is on its way to another), so `recv()` sees EOF when the
 * peer closes *or its process ends* instead of hanging, and what waits to be
 * sent to an end nobody can read any more is dropped instead of holding the
 * program.
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

import { loadThreads, threads } from "./process/_threads.ts";
import { Spinner } from "./shm/_spin.ts";
import {
  findUncloneable,
  rebuild,
  reduce,
  reduceSymbol,
  registerRebuilder,
} from "./reduction.ts";
import type { Reduced } from "./reduction.ts";
import { currentIdent, isIdentAlive } from "./shm/_proctable.ts";
import { checkTimeout, deadline, waitSync } from "./shm/_wait.ts";
import { EOFError, ProcessError } from "./errors.ts";
import { EncodeError, Encoder } from "./wire/_codec.ts";
import { repr } from "./_inspect.ts";
import { show } from "./_show.ts";
import { ItemRing, NOTHING } from "./shm/_ring.ts";
import { WORDS as RING_WORDS } from "./shm/_ring_layout.ts";
import { Fifo } from "./_fifo.ts";

// Control words, per end `side` (0 or 1):
const CLOSED = 0; // [CLOSED + side]: end `side` closed
const HOLDER = 2; // [HOLDER + side]: ident of the process holding end `side`
// [TRANSIT + side]: 1 while end `side` travels to another process (HOLDER
// still names the sender, which may end before the receiver takes it up).
const TRANSIT = 4;
const WORDS = 6;

/** Bytes of each direction's ring (bigger messages stream through it). */
const RING_BYTES = 64 * 1024;
/** Tells a pipe's rings apart from the queues' (see `ItemRing.kind`). */
const KIND_PIPE = 16;
/** Stands in the ring where a message went through the port. */
const PORT_MARK = "\u0000mp:port-message\u0000";

const TAG = "mp.Connection";
/** How long `recv()` may block the thread for a fast reply before it parks (ms). */
const FAST_MS = 0.2;
/** A parked wait shorter than this (ms) means messages come fast again. */
const REFAST_MS = 1;

const encoder = new Encoder();
const pause = new Int32Array(new SharedArrayBuffer(4));

type Received = { message: unknown } | undefined;

/**
 * The ends that live in this thread, by pipe. Deno loses port messages still
 * queued for a port in the *same* thread when the sending port closes, so
 * closing an end first moves them into its local peer's buffer.
 */
const localEnds = new Map<
  SharedArrayBuffer,
  (WeakRef<Connection> | undefined)[]
>();

/** True when end `side` of the pipe whose control words are `ctl` closed, or its process ended (not while the end travels to another). */
function endGone(ctl: Int32Array, side: 0 | 1): boolean {
  return Atomics.load(ctl, CLOSED + side) === 1 ||
    (Atomics.load(ctl, TRANSIT + side) === 0 &&
      !isIdentAlive(Atomics.load(ctl, HOLDER + side)));
}

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
  #inbox: ItemRing | null;
  #outbox: ItemRing | null;
  /** Values poll() took out of the ring. */
  #buffer: unknown[] = [];
  /** Port messages moved here by a same-thread peer that closed. */
  #portBuffer = new Fifo<unknown>();
  /** Whether recv() blocks briefly for a fast reply before it parks. */
  #fast = true;
  #spinner = new Spinner();
  /** Set when this end was sent to another process (then closed here). */
  #sent = false;

  /** Internal: use {@linkcode Pipe}. */
  constructor(
    port: MessagePort,
    ctl: Int32Array,
    side: 0 | 1,
    inbox: SharedArrayBuffer | null,
    outbox: SharedArrayBuffer | null,
  ) {
    this.#port = port;
    this.#ctl = ctl;
    this.#side = side;
    loadThreads(); // for receiveMessageOnPort, before it is needed
    this.#inbox = inbox ? ItemRing.attach(inbox) : null;
    this.#outbox = outbox ? ItemRing.attach(outbox) : null;
    // What waits to be sent is dropped once the other end can no longer
    // read it: waiting on, it would hold the program forever.
    const peer = side === 0 ? 1 : 0;
    if (this.#outbox) this.#outbox.readerGone = () => endGone(ctl, peer);
    Atomics.store(ctl, HOLDER + side, currentIdent());
    Atomics.store(ctl, TRANSIT + side, 0);
    this.#enterThread();
  }

  /** Records this end in {@linkcode localEnds}. */
  #enterThread(): void {
    const key = this.#ctl.buffer as SharedArrayBuffer;
    const ends = localEnds.get(key) ?? [];
    ends[this.#side] = new WeakRef(this);
    localEnds.set(key, ends);
  }

  /**
   * Whether the other end lives in this thread: then only the event loop
   * can bring its reply, and spinning or blocking for it just delays it.
   */
  #peerHere(): boolean {
    return localEnds.get(this.#ctl.buffer as SharedArrayBuffer)?.[this.#peer()]
      ?.deref() !== undefined;
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

  /** Moves every port message queued for this end into its buffer. */
  #absorb(): void {
    if (this.#port === null) return;
    let r: Received;
    const { receiveMessageOnPort } = threads();
    while ((r = receiveMessageOnPort(this.#port as never) as Received)) {
      this.#portBuffer.push(r.message);
    }
  }

  /** True once this end is closed (or was sent to another process). */
  get closed(): boolean {
    return this.#port === null;
  }

  /** Whether this end can receive. */
  get readable(): boolean {
    return this.#inbox !== null;
  }

  /** Whether this end can send. */
  get writable(): boolean {
    return this.#outbox !== null;
  }

  #open(): MessagePort {
    if (this.#port === null) throw this.#closedError();
    return this.#port;
  }

  #closedError(): ProcessError {
    return new ProcessError(
      this.#sent
        ? "connection is closed here: this end was sent to another process (in a Process's args or through a pipe), which holds it now; " +
          "make another Pipe() for this process"
        : "connection is closed",
    );
  }

  #peer(): 0 | 1 {
    return this.#side === 0 ? 1 : 0;
  }

  /** True when the other end closed or its process ended. */
  #peerGone(): boolean {
    return endGone(this.#ctl, this.#peer());
  }

  /**
   * Sends `obj` to the other end, without waiting for it to be received.
   *
   * @param obj Any structured-cloneable value; the module's shared objects
   *   inside it (queues, locks, other connections, ...) arrive shared.
   * @throws {EOFError} when the other end is closed or its process ended.
   * @throws {TypeError} naming the part of `obj` that cannot be sent.
   * @throws {ProcessError} when this end is closed or read-only
   *   (`Pipe(false)`'s first end).
   */
  send(obj: unknown): void {
    const port = this.#open();
    const outbox = this.#outbox;
    if (!outbox) throw new ProcessError("connection is read-only");
    if (this.#peerGone()) {
      throw new EOFError("the other end of the pipe is closed");
    }
    const transfer: Transferable[] = [];
    const undo: (() => void)[] = [];
    const wire = reduce(obj, transfer, undo, "obj");
    try {
      let viaPort = wire !== obj || transfer.length > 0;
      if (!viaPort) {
        try {
          encoder.encode(obj);
        } catch (e) {
          // What structured clone carries and the codec does not (a Blob,
          // a CryptoKey, ...) goes by the port; the rest is refused.
          if (!(e instanceof EncodeError && e.portable)) throw e;
          viaPort = true;
        }
      }
      if (viaPort) {
        port.postMessage(wire, transfer);
        encoder.encode(PORT_MARK);
      }
    } catch (e) {
      for (const f of undo) f(); // what reducing lent for the way
      const bad = findUncloneable(obj, "obj");
      throw new TypeError(
        bad
          ? `send(): ${bad.path} is a ${bad.type}, which cannot be sent to another process`
          : `send(): the value cannot be sent to another process: ${
            (e as Error).message
          }`,
      );
    }
    outbox.put(encoder, encoder.size);
  }

  /**
   * Sends bytes (a copy of `buf`, or of `size` bytes from `offset`), for
   * {@linkcode Connection.recvBytes} at the other end.
   *
   * @param size Default: the rest of `buf` after `offset`.
   * @throws {TypeError} when `buf` is not bytes (a string, an array, ...).
   * @throws {RangeError} when `offset` or `size` reach outside `buf`.
   * @throws {EOFError} when the other end is gone, as `send`.
   */
  sendBytes(
    buf: ArrayBufferView | ArrayBuffer,
    offset = 0,
    size?: number,
  ): void {
    if (!(buf instanceof ArrayBuffer) && !ArrayBuffer.isView(buf)) {
      throw new TypeError(
        `sendBytes() takes bytes (a typed array, DataView or ArrayBuffer), got ${
          show(buf)
        }; send other values with send(), or text as new TextEncoder().encode(text)`,
      );
    }
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
    const view = bytes.subarray(offset, offset + n);
    // A copy, as promised: a view of shared memory would go as shared.
    this.send(bytes.buffer instanceof SharedArrayBuffer ? view.slice() : view);
  }

  #check(): ItemRing {
    this.#open();
    if (!this.#inbox) throw new ProcessError("connection is write-only");
    return this.#inbox;
  }

  /** The message a ring mark stands for: it was posted before the mark. */
  #takePort(): unknown {
    for (let i = 0;; i++) {
      const raw: Received = this.#portBuffer.length > 0
        ? { message: this.#portBuffer.shift() }
        : threads().receiveMessageOnPort(this.#open() as never) as Received;
      if (raw) return rebuild(raw.message);
      // Posted, but not visible yet (a port in transit): a moment away.
      if (i > 1000 && this.#peerGone()) {
        throw new EOFError("the other end of the pipe is closed");
      }
      waitSync(pause, 0, 0, 0.05);
    }
  }

  /** The next message if one is here now, else NOTHING. */
  #take(inbox: ItemRing): unknown {
    if (this.#buffer.length > 0) return this.#buffer.shift();
    const v = inbox.tryGet();
    return v === PORT_MARK ? this.#takePort() : v;
  }

  /**
   * One attempt to receive: the message, or NOTHING (the ring says what to
   * wait for). Throws `EOFError` once the peer is gone and everything it
   * sent was received.
   */
  #step(inbox: ItemRing): unknown {
    const v = this.#take(inbox);
    if (v !== NOTHING || !this.#peerGone()) return v;
    // What the peer put just before it closed is in the ring by now.
    const last = this.#take(inbox);
    if (last !== NOTHING) return last;
    throw new EOFError("the other end of the pipe is closed");
  }

  /**
   * Receives the next message, waiting for one.
   *
   * @returns A copy of what was sent; shared objects inside it are shared.
   * @throws {EOFError} (rejects) once the other end closed or its process
   *   ended and every message it sent was received.
   * @throws {ProcessError} (rejects) when this end is closed (also while it
   *   waits) or write-only.
   */
  async recv(): Promise<unknown> {
    const inbox = this.#check();
    while (true) {
      const v = this.#step(inbox);
      if (v !== NOTHING) return v;
      if (this.#fast && !this.#peerHere()) {
        // A reply usually comes within microseconds: watch for it a moment
        // (while that pays, see Spinner), then block the thread for it
        // briefly (a futex wait, no CPU burnt, woken in microseconds)
        // rather than park on Atomics.waitAsync (tens of microseconds to
        // wake in Deno). Once that comes back empty, park until messages
        // come fast again.
        this.#spinner.spinThenBlock(
          inbox.ctl,
          inbox.waitWord,
          inbox.waitValue,
          FAST_MS,
          inbox.blockSync,
        );
        const w = this.#step(inbox);
        if (w !== NOTHING) return w;
        this.#fast = false;
      }
      const t = performance.now();
      await inbox.waitAsync(Infinity, false); // one slice: then look at the peer again
      if (this.#port === null) throw this.#closedError();
      if (performance.now() - t < REFAST_MS) this.#fast = true;
    }
  }

  /** Like {@linkcode Connection.recv}, blocking the thread with `Atomics.wait` (for workers). */
  recvSync(): unknown {
    const inbox = this.#check();
    while (true) {
      const v = this.#step(inbox);
      if (v !== NOTHING) return v;
      inbox.waitSync(Infinity, false);
    }
  }

  /**
   * Receives a message sent with {@linkcode Connection.sendBytes}, as a
   * Uint8Array.
   *
   * @throws {TypeError} (rejects) when the next message is not bytes; it
   *   stays the next message, for `recv()`.
   * @throws {EOFError} (rejects) as `recv`.
   */
  async recvBytes(): Promise<Uint8Array> {
    const m = await this.recv();
    if (m instanceof Uint8Array) return m;
    if (m instanceof ArrayBuffer) return new Uint8Array(m);
    this.#buffer.unshift(m);
    throw new TypeError(
      `recvBytes(): the message received is a ${
        m === null ? "null" : typeof m
      }, not bytes; use recv() for it`,
    );
  }

  /**
   * Whether a message (or EOF) is ready. Like Python's `poll()`, it does not
   * wait by default.
   *
   * @param timeoutMs How long to wait for one: 0 (default) does not wait,
   *   `Infinity` waits until something arrives.
   * @returns True when `recv()` would not wait: a message is here, or the
   *   other end is gone (then `recv()` throws `EOFError`).
   * @throws {RangeError} for a negative or NaN `timeoutMs`.
   */
  async poll(timeoutMs = 0): Promise<boolean> {
    const inbox = this.#check();
    const end = deadline(checkTimeout(timeoutMs, "poll timeout"));
    while (true) {
      if (this.#buffer.length > 0) return true;
      const v = this.#take(inbox);
      if (v !== NOTHING) {
        this.#buffer.push(v);
        return true;
      }
      if (this.#peerGone()) return true;
      if (performance.now() >= end) return false;
      await inbox.waitAsync(end);
      if (this.#port === null) throw this.#closedError();
    }
  }

  /**
   * Closes this end; the other end's `recv()` gets `EOFError` once it has
   * received everything sent before.
   */
  close(): void {
    const port = this.#port;
    if (port === null) return;
    this.#port = null;
    const peer = this.#leaveThread();
    if (peer) peer.#absorb();
    const outbox = this.#outbox;
    const done = () => {
      Atomics.store(this.#ctl, CLOSED + this.#side, 1);
      // Wake a peer waiting for data, so it sees the close now.
      if (outbox) Atomics.notify(outbox.ctl, RING_WORDS.TAIL);
      port.close();
    };
    // Messages still buffered in this process (the ring was full) go first.
    if (outbox?.buffering) outbox.drain().then(done, done);
    else done();
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
    if (this.#buffer.length > 0 || this.#portBuffer.length > 0) {
      throw new ProcessError(
        "cannot send a connection that holds a message already taken by poll() or refused by recvBytes(); recv() it first",
      );
    }
    if (this.#outbox?.buffering) {
      throw new ProcessError(
        "cannot send a connection while messages it sent wait for room in the pipe; " +
          "send it once the other end has read them",
      );
    }
    // The port moves; this object must not use it again.
    this.#port = null;
    this.#sent = true;
    this.#leaveThread();
    Atomics.store(this.#ctl, TRANSIT + this.#side, 1);
    return {
      tag: TAG,
      state: [
        port,
        this.#ctl.buffer,
        this.#side,
        this.#inbox?.sab ?? null,
        this.#outbox?.sab ?? null,
      ],
      transfer: [port],
      // Not sent after all (the port did not move): this end stays here.
      undo: () => {
        this.#port = port;
        this.#sent = false;
        this.#enterThread();
        Atomics.store(this.#ctl, TRANSIT + this.#side, 0);
      },
    };
  }

  /** `Connection { readable: true, writable: true, closed: false }`: this end's own state. */
  toString(): string {
    return repr("Connection", {
      readable: this.readable,
      writable: this.writable,
      closed: this.closed,
    });
  }

  /** {@linkcode Connection.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

registerRebuilder(TAG, (state) => {
  const [port, ctl, side, inbox, outbox] = state as [
    MessagePort,
    SharedArrayBuffer,
    0 | 1,
    SharedArrayBuffer | null,
    SharedArrayBuffer | null,
  ];
  return new Connection(port, new Int32Array(ctl), side, inbox, outbox);
});

/**
 * The two ends of a pipe; disposing it closes both (`using ends = Pipe()`).
 *
 * @example
 * ```ts
 * import { Pipe, type PipeEnds } from "@mp/multiprocessing";
 * using ends: PipeEnds = Pipe(); // both ends close when the scope ends
 * const [a, b] = ends;
 * a.send(1);
 * console.log(await b.recv()); // 1
 * ```
 */
export type PipeEnds = [Connection, Connection] & Disposable;

/**
 * Creates a pipe and returns its two ends (Python's `multiprocessing.Pipe`).
 *
 * @param duplex True (default): both ends send and receive. False: the first
 *   end only receives and the second only sends.
 * @returns The two ends; disposing the pair closes both.
 * @throws {TypeError} when `duplex` is not a boolean.
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
  if (typeof duplex !== "boolean") {
    throw new TypeError(
      `Pipe(duplex): duplex must be true or false, got ${
        show(duplex)
      }; write Pipe(false) for a one-way pipe (Python's Pipe(duplex=False))`,
    );
  }
  const { port1, port2 } = new MessageChannel();
  const ctl = new Int32Array(new SharedArrayBuffer(WORDS * 4));
  const toA = ItemRing.create(RING_BYTES, 0, KIND_PIPE).sab;
  const toB = duplex ? ItemRing.create(RING_BYTES, 0, KIND_PIPE).sab : null;
  const a = new Connection(port1, ctl, 0, toA, toB);
  const b = new Connection(port2, ctl, 1, toB, toA);
  const ends = [a, b] as PipeEnds;
  Object.defineProperty(ends, Symbol.dispose, {
    value: () => {
      a.close();
      b.close();
    },
  });
  return ends;
}
