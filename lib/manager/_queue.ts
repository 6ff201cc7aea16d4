/**
 * The Queue a manager serves (Python's `queue.Queue`, with `taskDone()` and `join()`).
 *
 * @module
 */

import { Empty, Full, ProcessError } from "../errors.ts";
import {
  type Caller,
  describe,
  firstLive,
  type Kind,
  park,
  type Waiter,
  type WaitOptions,
  waitOptions,
} from "./_kind.ts";

// ---------------------------------------------------------------- Queue

export class ServerQueue {
  items: unknown[] = [];
  head = 0;
  getters: Waiter<unknown>[] = [];
  putters: (Waiter<void> & { item: unknown })[] = [];
  unfinished = 0;
  joiners: Waiter<void>[] = [];
  constructor(readonly maxsize: number) {}

  get size(): number {
    return this.items.length - this.head;
  }
  full(): boolean {
    return this.maxsize > 0 && this.size >= this.maxsize;
  }
  take(): unknown {
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
  /** Puts `item`, handing it straight to a waiting getter when there is one. */
  add(item: unknown): void {
    this.unfinished++;
    const g = firstLive(this.getters);
    if (g) g.resolve(item);
    else this.items.push(item);
  }
  /** After a take: lets a waiting putter in. */
  admit(): void {
    while (!this.full()) {
      const p = firstLive(this.putters);
      if (!p) return;
      this.add(p.item);
      p.resolve(undefined);
    }
  }
}

export function queueSize(args: unknown[]): number {
  const o = args[0];
  const m = o !== null && typeof o === "object"
    ? (o as { maxsize?: unknown }).maxsize ?? 0
    : o ?? 0;
  if (typeof m !== "number" || !Number.isInteger(m)) {
    throw new TypeError(
      `Queue maxsize must be an integer (0 = unbounded), got ${describe(m)}; ` +
        `e.g. manager.Queue({ maxsize: 10 }) or manager.Queue(10)`,
    );
  }
  return m;
}

export function put(
  q: ServerQueue,
  item: unknown,
  o: WaitOptions,
  caller: Caller,
) {
  if (!q.full()) {
    q.add(item);
    return undefined;
  }
  if (!o.block || o.timeout === 0) throw new Full("the queue is full");
  return park<void>(
    q.putters as Waiter<void>[],
    caller,
    o.timeout,
    (w) => w.reject(new Full(`the queue stayed full for ${o.timeout} ms`)),
    { item },
  );
}

export function get(q: ServerQueue, o: WaitOptions, caller: Caller): unknown {
  if (q.size > 0) {
    const v = q.take();
    q.admit();
    return v;
  }
  if (!o.block || o.timeout === 0) throw new Empty("the queue is empty");
  return park<unknown>(
    q.getters,
    caller,
    o.timeout,
    (w) => w.reject(new Empty(`the queue stayed empty for ${o.timeout} ms`)),
  );
}

export const queue: Kind = {
  create: (args) => new ServerQueue(queueSize(args)),
  methods: {
    put: (q: ServerQueue, [item, o], c) =>
      put(q, item, waitOptions(o, "put()"), c),
    putNowait: (q: ServerQueue, [item], c) =>
      put(q, item, { block: false, timeout: undefined }, c),
    get: (q: ServerQueue, [o], c) => get(q, waitOptions(o, "get()"), c),
    getNowait: (q: ServerQueue, _a, c) =>
      get(q, { block: false, timeout: undefined }, c),
    qsize: (q: ServerQueue) => q.size,
    empty: (q: ServerQueue) => q.size === 0,
    full: (q: ServerQueue) => q.full(),
    taskDone: (q: ServerQueue) => {
      if (q.unfinished <= 0) {
        throw new ProcessError(
          "taskDone() called more times than there were items put",
        );
      }
      if (--q.unfinished === 0) {
        for (const j of [...q.joiners]) j.resolve(undefined);
      }
    },
    join: (q: ServerQueue, _a, c) =>
      q.unfinished === 0 ? undefined : park(q.joiners, c, undefined, () => {}),
  },
};
