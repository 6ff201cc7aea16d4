/**
 * Queues between processes (Python's `multiprocessing.Queue`,
 * `SimpleQueue`, `JoinableQueue`): many producers and many consumers in any
 * processes, FIFO per producer, nothing lost or duplicated.
 *
 * A queue is a ring buffer in a SharedArrayBuffer: `put` encodes the item
 * once, straight into the ring (a compact binary encoding for the common
 * types, structured clone for the rest), and `get` decodes it out; waiting
 * is `Atomics.waitAsync` (or `Atomics.wait` in the `...Sync` forms). No
 * thread or message per item. Items bigger than the ring stream through it.
 * A consumer or producer that dies mid-item never leaves the queue corrupt
 * or the others blocked.
 *
 * As in Python, `put` never blocks on a queue without `maxsize`: an item
 * that does not fit the ring yet is kept by the putting process and written
 * as space frees (a child process writes them all before it ends; see
 * {@linkcode Queue.joinThread}).
 *
 * @example
 * ```ts
 * import { Process, Queue } from "@mp/multiprocessing";
 *
 * export function squares(q: Queue<number>) {
 *   for (const n of [1, 2, 3, 4]) q.putNowait(n * n);
 * }
 *
 * if (import.meta.main) {
 *   using q = new Queue<number>();
 *   const p = new Process({ target: squares, args: [q] });
 *   await p.start();
 *   await p.join();
 *   while (!q.empty()) console.log(await q.get()); // 1 4 9 16
 * }
 * ```
 *
 * @module
 */

import { Encoder } from "./wire/_codec.ts";
import { ItemRing, NOTHING } from "./shm/_ring.ts";
import {
  DEFAULT_CAPACITY,
  MAX_CAPACITY,
  ringCapacity,
} from "./shm/_ring_layout.ts";
import { addUnfinished, allDone, taskDone } from "./shm/_tasks.ts";
import { checkTimeout, deadline } from "./shm/_wait.ts";
import { Empty, Full, ProcessError, TimeoutError } from "./errors.ts";
import { type Reduced, reduceSymbol, registerRebuilder } from "./reduction.ts";
import { repr } from "./_inspect.ts";
import { show, showNumber } from "./_show.ts";
import { checkKeys } from "./_options.ts";

/**
 * Options of {@linkcode Queue} and {@linkcode JoinableQueue}.
 *
 * @example
 * ```ts
 * import { Queue, type QueueOptions } from "@mp/multiprocessing";
 * const options: QueueOptions = { maxsize: 10, capacityBytes: 64 * 1024 };
 * using q = new Queue<string>(options);
 * q.putNowait("a");
 * console.log(q.qsize()); // 1
 * ```
 */
export interface QueueOptions {
  /** Most items the queue holds; `put` waits (or throws `Full`) beyond. 0 (default): no limit. */
  maxsize?: number;
  /**
   * Bytes of the shared ring (rounded up to a power of two, 4 KiB to
   * 1 GiB; default 1 MiB). Bigger items still pass, streamed through it.
   */
  capacityBytes?: number;
}

/**
 * Options of `put` and `get`.
 *
 * @example
 * ```ts
 * import { Empty, Queue, type BlockOptions } from "@mp/multiprocessing";
 * using q = new Queue<number>();
 * const wait: BlockOptions = { block: true, timeout: 10 };
 * try {
 *   await q.get(wait);
 * } catch (e) {
 *   console.log(e instanceof Empty); // true: nothing came within 10 ms
 * }
 * ```
 */
export interface BlockOptions {
  /** Wait for room (put) or an item (get); default true. `false`: the `Nowait` form. */
  block?: boolean;
  /** Most milliseconds to wait when blocking; undefined: forever. Then `Full`/`Empty`. */
  timeout?: number;
}

const KIND_QUEUE = 0;
const KIND_SIMPLE = 1;
const KIND_JOINABLE = 2;

const RESOLVED: Promise<void> = Promise.resolve();

/** One encoder for every queue of this process: encode and write are one synchronous step. */
const encoder = new Encoder();

/** Set by the rebuilder: the constructor adopts this ring instead of making one. */
let adopting: ItemRing | undefined;

let ringOf: (q: Queue<unknown>) => ItemRing;

function parseOptions(
  options: QueueOptions | number | undefined,
  what: string,
): { maxsize: number; capacity: number } {
  const opts: QueueOptions = typeof options === "number"
    ? { maxsize: options }
    : options ?? {};
  if (typeof opts !== "object") {
    throw new TypeError(
      `${what} options must be an object like { maxsize, capacityBytes }, got ${
        show(opts)
      }`,
    );
  }
  checkKeys(opts, ["maxsize", "capacityBytes"], `${what} option`);
  const maxsize = opts.maxsize ?? 0;
  if (
    typeof maxsize !== "number" || !Number.isInteger(maxsize) || maxsize < 0 ||
    maxsize > 0x7fffffff
  ) {
    throw new RangeError(
      `${what}: maxsize must be a non-negative integer number of items (0 = no limit), got ${
        showNumber(maxsize)
      }`,
    );
  }
  const bytes = opts.capacityBytes ?? DEFAULT_CAPACITY;
  if (
    typeof bytes !== "number" || !Number.isInteger(bytes) || bytes <= 0 ||
    bytes > MAX_CAPACITY
  ) {
    throw new RangeError(
      `${what}: capacityBytes must be a positive integer up to ${MAX_CAPACITY} (1 GiB), got ${
        showNumber(bytes)
      }`,
    );
  }
  return { maxsize, capacity: ringCapacity(bytes) };
}

function parseBlock(
  options: BlockOptions | undefined,
  what: string,
): { block: boolean; until: number } {
  if (options === undefined) return { block: true, until: Infinity };
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${what} takes options like { block: false } or { timeout: 100 }, got ${
        show(options)
      }`,
    );
  }
  checkKeys(options, ["block", "timeout"], `${what} option`);
  const timeout = checkTimeout(options.timeout, `${what} timeout`);
  const block = options.block ?? true;
  return { block, until: block ? deadline(timeout) : 0 };
}

/**
 * A multi-producer, multi-consumer FIFO queue shared between processes
 * (Python's `multiprocessing.Queue`). Pass it to a child in `args`; there it
 * is the same queue.
 *
 * Items are any structured-cloneable values; numbers, strings, booleans,
 * null/undefined, bigints, plain objects and arrays of them, typed arrays
 * and ArrayBuffers travel fastest. Shared memory (a `SharedArrayBuffer`, a
 * `Lock`, another queue) cannot travel through a queue: pass it in `args`.
 *
 * @example
 * ```ts
 * import { Empty, Queue } from "@mp/multiprocessing";
 * using q = new Queue<string>({ maxsize: 2 });
 * await q.put("a");
 * q.putNowait("b");
 * console.log(q.full(), q.qsize()); // true 2
 * console.log(await q.get(), q.getNowait()); // a b
 * try {
 *   await q.get({ timeout: 10 });
 * } catch (e) {
 *   console.log(e instanceof Empty); // true
 * }
 * ```
 */
export class Queue<T = unknown> implements Disposable {
  #ring: ItemRing;
  #closed = false;

  /**
   * A new queue; `new Queue(5)` is `new Queue({ maxsize: 5 })`.
   *
   * @throws {TypeError} for options that are not an object or have an unknown key.
   * @throws {RangeError} for a `maxsize` that is not a non-negative integer, or a
   *   `capacityBytes` that is not a positive integer up to 1 GiB.
   */
  constructor(options?: QueueOptions | number) {
    if (adopting) {
      this.#ring = adopting;
      adopting = undefined;
      return;
    }
    const is = (c: abstract new (...a: never[]) => unknown) =>
      new.target === c || new.target.prototype instanceof c;
    const kind = is(SimpleQueue)
      ? KIND_SIMPLE
      : is(JoinableQueue)
      ? KIND_JOINABLE
      : KIND_QUEUE;
    const { maxsize, capacity } = parseOptions(options, new.target.name);
    this.#ring = ItemRing.create(capacity, maxsize, kind);
  }

  static {
    ringOf = (q) => q.#ring;
  }

  /** The most items the queue holds (0: no limit). */
  get maxsize(): number {
    return this.#ring.maxsize;
  }

  /**
   * Puts `item` on the queue, waiting for room only when the queue has a
   * `maxsize` and is full.
   *
   * @param item Any structured-cloneable value, copied at once (changing it
   *   afterwards changes nothing in the queue).
   * @param options `{ timeout: 0 }` or `{ block: false }`: do not wait.
   * @throws {Full} (rejects) when the queue is still full once `timeout` ran out,
   *   or is full and `block` is false.
   * @throws {TypeError} (rejects) naming the part of `item` that cannot be sent
   *   (a `DataCloneError`); the queue stays usable.
   * @throws {ProcessError} (rejects) once this object was closed in this process.
   */
  put(item: T, options?: BlockOptions): Promise<void> {
    // The common case without an async function's machinery: room now.
    if (options === undefined && !this.#closed && this.#ring.tryReserve()) {
      try {
        this.#write(item);
      } catch (e) {
        return Promise.reject(e);
      }
      return RESOLVED;
    }
    return this.#putSlow(item, options);
  }

  async #putSlow(item: T, options?: BlockOptions): Promise<void> {
    this.#check("put");
    const { block, until } = parseBlock(options, "put");
    const ring = this.#ring;
    if (ring.tryReserve()) return this.#write(item);
    if (!block) throw this.#full();
    encoder.encode(item); // fail now, not after waiting, on what cannot be sent
    for (;;) {
      if (performance.now() >= until) throw this.#full();
      await ring.waitAsync(until);
      this.#check("put");
      if (ring.tryReserve()) return this.#write(item);
    }
  }

  /**
   * Puts `item` without waiting.
   *
   * @throws {Full} when the queue is full.
   * @throws {TypeError} naming the part of `item` that cannot be sent.
   */
  putNowait(item: T): void {
    this.#check("putNowait");
    if (!this.#ring.tryReserve()) throw this.#full();
    this.#write(item);
  }

  /**
   * {@linkcode Queue.put} that blocks the thread (`Atomics.wait`) while the
   * queue is full.
   *
   * @throws {Full} as `put` rejects with it: still full after `timeout`.
   */
  putSync(item: T, options?: BlockOptions): void {
    this.#check("putSync");
    const { block, until } = parseBlock(options, "putSync");
    const ring = this.#ring;
    if (ring.tryReserve()) return this.#write(item);
    if (!block) throw this.#full();
    encoder.encode(item);
    for (;;) {
      if (performance.now() >= until) throw this.#full();
      ring.waitSync(until);
      if (ring.tryReserve()) return this.#write(item);
    }
  }

  #write(item: T): void {
    const ring = this.#ring;
    let size: number;
    try {
      size = encoder.encode(item);
    } catch (e) {
      ring.unreserve();
      throw e;
    }
    if (ring.kind === KIND_JOINABLE) addUnfinished(ring);
    ring.put(encoder, size);
  }

  /**
   * Takes the next item, waiting for one.
   *
   * @param options `{ timeout: 0 }` or `{ block: false }`: do not wait. An item
   *   that started to arrive (a big one, streamed) is always waited for.
   * @returns The item, a fresh copy of what was put.
   * @throws {Empty} (rejects) when none came within `timeout`, or none is
   *   there and `block` is false.
   */
  get(options?: BlockOptions): Promise<T> {
    // The common case without an async function's machinery: an item now.
    if (options === undefined && !this.#closed) {
      let v: unknown;
      try {
        v = this.#ring.tryGet();
      } catch (e) {
        return Promise.reject(e);
      }
      if (v !== NOTHING) return Promise.resolve(v as T);
    }
    return this.#getSlow(options);
  }

  async #getSlow(options?: BlockOptions): Promise<T> {
    this.#check("get");
    const { block, until } = parseBlock(options, "get");
    const ring = this.#ring;
    for (;;) {
      const v = ring.tryGet();
      if (v !== NOTHING) return v as T;
      // An item begun streams to its end, whatever the timeout.
      if (!ring.reading && (!block || performance.now() >= until)) {
        throw new Empty("queue is empty");
      }
      await ring.waitAsync(ring.reading ? Infinity : until);
    }
  }

  /**
   * Takes the next item without waiting.
   *
   * @throws {Empty} when there is none.
   */
  getNowait(): T {
    this.#check("getNowait");
    return this.#getSync(false, 0);
  }

  /**
   * {@linkcode Queue.get} that blocks the thread (`Atomics.wait`).
   *
   * @throws {Empty} as `get` rejects with it.
   */
  getSync(options?: BlockOptions): T {
    this.#check("getSync");
    const { block, until } = parseBlock(options, "getSync");
    return this.#getSync(block, until);
  }

  #getSync(block: boolean, until: number): T {
    const ring = this.#ring;
    for (;;) {
      // Items this process buffered may be what it waits for, and its
      // async flusher cannot run while this thread blocks: write them now,
      // and wait only when neither writing nor reading moved.
      const moved = ring.moved;
      if (ring.buffering) ring.flushStep();
      const v = ring.tryGet();
      if (v !== NOTHING) return v as T;
      if (ring.buffering && ring.moved !== moved) continue;
      if (!ring.reading && (!block || performance.now() >= until)) {
        throw new Empty("queue is empty");
      }
      ring.waitSync(ring.reading ? Infinity : until);
    }
  }

  /** The number of items in the queue (put and not yet got), approximately. */
  qsize(): number {
    return this.#ring.qsize();
  }

  /** True when the queue holds no item, approximately. */
  empty(): boolean {
    return this.#ring.empty();
  }

  /** True when the queue has a `maxsize` and holds that many items, approximately. */
  full(): boolean {
    const max = this.#ring.maxsize;
    return max > 0 && this.#ring.qsize() >= max;
  }

  /**
   * This process will put and get no more through this object (the queue
   * itself lives on for the others). Items it put are still written out.
   */
  close(): void {
    this.#closed = true;
  }

  /**
   * Resolves once every item this process put is in the shared ring (items
   * that did not fit yet are written as consumers make room). A child
   * process does this by itself before it ends.
   */
  async joinThread(): Promise<void> {
    await this.#ring.drain();
  }

  /**
   * This process will not wait, when it ends, for the items it put that are
   * not yet in the ring (they may be lost). Python's `cancel_join_thread()`.
   */
  cancelJoinThread(): void {
    this.#ring.cancelDrainAtExit();
  }

  /** `using q = new Queue()` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** How the queue crosses into another process: its shared memory. */
  [reduceSymbol](): Reduced {
    return { tag: "mp.Queue", state: this.#ring.sab };
  }

  #check(what: string): void {
    if (this.#closed) {
      throw new ProcessError(
        `${what}() on a closed ${this.constructor.name}: this object was closed in this process`,
      );
    }
  }

  #full(): Full {
    return new Full(`queue is full (maxsize ${this.#ring.maxsize})`);
  }

  /**
   * `Queue { size: 3, maxsize: 0 }` (Python's repr; `closed: true` once
   * closed in this process): reads the ring's counters, never waits.
   */
  toString(): string {
    return repr(this.constructor.name, {
      size: this.#ring.qsize(),
      maxsize: this instanceof SimpleQueue ? undefined : this.#ring.maxsize,
      closed: this.#closed || undefined,
    });
  }

  /** {@linkcode Queue.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/**
 * A simpler queue (Python's `multiprocessing.SimpleQueue`): no `maxsize`.
 * It has the same methods as {@linkcode Queue}.
 *
 * @example
 * ```ts
 * import { SimpleQueue } from "@mp/multiprocessing";
 * using q = new SimpleQueue<number[]>();
 * await q.put([1, 2]);
 * console.log(q.empty(), await q.get()); // false [ 1, 2 ]
 * ```
 */
export class SimpleQueue<T = unknown> extends Queue<T> {
  /** A new queue; `capacityBytes` sizes its shared ring. */
  constructor(options?: Omit<QueueOptions, "maxsize">) {
    if (options && typeof options === "object" && "maxsize" in options) {
      throw new TypeError(
        "SimpleQueue has no maxsize: use new Queue({ maxsize }) for a bounded queue",
      );
    }
    super(options);
  }
}

/**
 * A {@linkcode Queue} that counts unfinished tasks (Python's
 * `multiprocessing.JoinableQueue`): each `put` adds one, each `taskDone()`
 * ends one, and `join()` waits until none is left.
 *
 * @example
 * ```ts
 * import { JoinableQueue } from "@mp/multiprocessing";
 * using q = new JoinableQueue<string>();
 * await q.put("job");
 * console.log(await q.get()); // job
 * q.taskDone();
 * await q.join(); // every task is done
 * ```
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /** A new queue; see {@linkcode QueueOptions}. */
  constructor(options?: QueueOptions | number) {
    super(options);
  }

  /**
   * Marks one task (an item got from the queue) as done.
   *
   * @throws {ProcessError} when called more times than items were put.
   */
  taskDone(): void {
    if (!taskDone(ringOf(this))) {
      throw new ProcessError(
        "taskDone() called more times than there were items put on the queue",
      );
    }
  }

  /**
   * Resolves once every item put has been marked done with `taskDone()`.
   * An item whose consumer ended before its `taskDone()` is never done (as
   * in Python): give a timeout where a consumer may die.
   *
   * @param timeoutMs The most to wait; undefined: forever.
   * @throws {TimeoutError} (rejects) when items are still not done after
   *   `timeoutMs` (as `RedisJoinableQueue.join` does).
   */
  async join(timeoutMs?: number): Promise<void> {
    const until = deadline(checkTimeout(timeoutMs, "join timeout"));
    const ring = ringOf(this);
    while (!allDone(ring)) {
      if (performance.now() >= until) throw this.#notDone(timeoutMs!);
      await ring.waitAsync(until);
    }
  }

  /**
   * {@linkcode JoinableQueue.join} that blocks the thread (`Atomics.wait`).
   *
   * @throws {TimeoutError} as `join` rejects with it.
   */
  joinSync(timeoutMs?: number): void {
    const until = deadline(checkTimeout(timeoutMs, "joinSync timeout"));
    const ring = ringOf(this);
    while (!allDone(ring)) {
      if (performance.now() >= until) throw this.#notDone(timeoutMs!);
      ring.waitSync(until);
    }
  }

  #notDone(timeoutMs: number): TimeoutError {
    return new TimeoutError(
      `JoinableQueue: items were still not marked done (taskDone()) after ${timeoutMs} ms`,
    );
  }
}

const CLASSES = [Queue, SimpleQueue, JoinableQueue];

registerRebuilder("mp.Queue", (state) => {
  const ring = ItemRing.attach(state as SharedArrayBuffer);
  adopting = ring;
  try {
    return new CLASSES[ring.kind]();
  } finally {
    adopting = undefined;
  }
});
