/**
 * The proxies of a manager's built-in kinds (list, dict, Namespace, Value,
 * Queue, locks, Event, Condition, Barrier, Array): each method is a call of
 * the object's method in the server.
 *
 * @module
 */

import { TimeoutError } from "../errors.ts";
import { checkTimeout, deadline } from "../shm/_wait.ts";
import { BaseProxy, call, PROXY_CLASSES, proxyMethods } from "./proxy.ts";

/** The items of `items` as an array; a `TypeError` naming `what` when it is not iterable. */
export function itemsOf<T>(items: Iterable<T>, what: string): T[] {
  if (
    items === null || items === undefined ||
    typeof (items as { [Symbol.iterator]?: unknown })[Symbol.iterator] !==
      "function"
  ) {
    throw new TypeError(
      `${what}: items must be iterable (an array, a Set, a string, a generator, ...), got ${
        items === null ? "null" : typeof items
      }`,
    );
  }
  return [...items];
}

/**
 * Options of waiting queue calls.
 *
 * @example
 * ```ts
 * import { Manager, type ProxyQueueWaitOptions } from "@mp/multiprocessing";
 * if (import.meta.main) {
 *   await using manager = await Manager.start();
 *   const q = await manager.Queue();
 *   const wait: ProxyQueueWaitOptions = { timeout: 10 };
 *   await q.get(wait).catch((e) => console.log(e.name)); // "Empty"
 * }
 * ```
 */
export interface ProxyQueueWaitOptions {
  /** Wait when the queue is empty (get) or full (put); default true. */
  block?: boolean;
  /** Give up after this many milliseconds (`Empty`/`Full`); undefined = forever. */
  timeout?: number;
}

/**
 * Options of `acquire()`.
 *
 * @example
 * ```ts
 * import { Manager, type ProxyAcquireOptions } from "@mp/multiprocessing";
 * if (import.meta.main) {
 *   await using manager = await Manager.start();
 *   const lock = await manager.Lock();
 *   const tryOnce: ProxyAcquireOptions = { blocking: false };
 *   console.log(await lock.acquire(tryOnce)); // true
 *   await lock.release();
 * }
 * ```
 */
export interface ProxyAcquireOptions {
  /** Wait for the lock; default true. With false, returns false at once when it is taken. */
  blocking?: boolean;
  /** Give up after this many milliseconds (returns false); undefined = forever. */
  timeout?: number;
}

/** The methods of {@linkcode ListProxy} that call the object's own in the server. */
export interface ListProxy<T = unknown> {
  /** Adds `item` at the end. */
  append(item: T): Promise<void>;
  /**
   * The item at `index` (negative: from the end).
   *
   * @throws {RangeError} (rejects) when `index` is out of range.
   */
  get(index: number): Promise<T>;
  /** Replaces the item at `index`. */
  set(index: number, item: T): Promise<void>;
  /** Inserts `item` before `index`. */
  insert(index: number, item: T): Promise<void>;
  /**
   * Removes the first item equal to `item`.
   *
   * @throws {RangeError} (rejects) when no item equals it.
   */
  remove(item: T): Promise<void>;
  /**
   * The index of the first item equal to `item` (within `[start, end)`).
   *
   * @throws {RangeError} (rejects) when no item equals it.
   */
  index(item: T, start?: number, end?: number): Promise<number>;
  /** How many items equal `item`. */
  count(item: T): Promise<number>;
  /** Whether an item equals `item` (Python's `in`). */
  includes(item: T): Promise<boolean>;
  /** The number of items (Python's `len()`). */
  len(): Promise<number>;
  /** A copy of the items from `start` to `end` (Python's `l[start:end]`). */
  slice(start?: number, end?: number): Promise<T[]>;
  /** Removes every item. */
  clear(): Promise<void>;
  /** Reverses the list in place. */
  reverse(): Promise<void>;
  /** A copy of the whole list (Python's `l[:]`). */
  toArray(): Promise<T[]>;
}

/**
 * A proxy for a list held by a manager (`manager.list()`). Indices may be
 * negative (counted from the end) as in Python; `remove`, `index` and
 * `count` compare items by value (so `["Sam", 10]` finds a stored tuple).
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const l = await manager.list([1, 2]);
 * await l.append(3);
 * console.log(await l.get(-1), await l.len()); // 3 3
 * ```
 */
export class ListProxy<T = unknown> extends BaseProxy
  implements AsyncIterable<T> {
  /** Adds every item of `items` at the end. */
  extend(items: Iterable<T>): Promise<void> {
    return call(
      this,
      "extend",
      [itemsOf(items, "ListProxy.extend(items)")],
      false,
    ) as Promise<void>;
  }
  /** Removes and returns the item at `index` (default: the last). */
  pop(index?: number): Promise<T> {
    return call(
      this,
      "pop",
      index === undefined ? [] : [index],
      false,
    ) as Promise<
      T
    >;
  }
  /** Iterates over a snapshot of the list: `for await (const x of list)`. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    yield* await this.toArray();
  }
}
proxyMethods(ListProxy, {
  append: 1,
  get: 1,
  set: 2,
  insert: 2,
  remove: 1,
  index: 3,
  count: 1,
  includes: 1,
  len: 0,
  slice: 2,
  clear: 0,
  reverse: 0,
  toArray: 0,
});

/** The methods of {@linkcode DictProxy} that call the object's own in the server. */
export interface DictProxy<K = unknown, V = unknown> {
  /** Sets `key` to `value`. */
  set(key: K, value: V): Promise<void>;
  /** Whether `key` is in the dict (Python's `in`). */
  has(key: K): Promise<boolean>;
  /** Removes `key`; true when it was there. */
  delete(key: K): Promise<boolean>;
  /** The value of `key`, first setting it to `dflt` when missing. */
  setdefault(key: K, dflt: V): Promise<V>;
  /** The keys, in insertion order. */
  keys(): Promise<K[]>;
  /** The values, in insertion order. */
  values(): Promise<V[]>;
  /** The `[key, value]` pairs, in insertion order. */
  items(): Promise<[K, V][]>;
  /** The number of keys (Python's `len()`). */
  len(): Promise<number>;
  /** Removes every key. */
  clear(): Promise<void>;
  /** A copy as a plain object (keys turned to strings). */
  toObject(): Promise<Record<string, V>>;
  /** A copy as a Map (keys as they are). */
  toMap(): Promise<Map<K, V>>;
}

/**
 * A proxy for a dict held by a manager (`manager.dict()`). Keys may be any
 * cloneable value; arrays (Python's tuples) and plain objects compare by
 * content.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const d = await manager.dict<string, number>({ a: 1 });
 * await d.set("b", 2);
 * console.log(await d.get("b"), await d.len()); // 2 2
 * ```
 */
export class DictProxy<K = unknown, V = unknown> extends BaseProxy {
  /** The value of `key`, or `dflt` (default undefined) when it is missing. */
  get(key: K): Promise<V | undefined>;
  /** The value of `key`, or `dflt` when it is missing. */
  get<D>(key: K, dflt: D): Promise<V | D>;
  get(key: K, ...dflt: unknown[]): Promise<unknown> {
    return call(this, "get", [key, ...dflt.slice(0, 1)], false);
  }
  /**
   * Removes `key` and returns its value, or `dflt` when it is missing.
   *
   * @throws {RangeError} (rejects) for a missing key without `dflt`.
   */
  pop(key: K, ...dflt: [V?]): Promise<V> {
    return call(this, "pop", [key, ...dflt.slice(0, 1)], false) as Promise<V>;
  }
  /** Sets every pair of `other` (an object, a Map or `[key, value]` pairs). */
  update(
    other: Record<string, V> | Map<K, V> | Iterable<[K, V]>,
  ): Promise<void> {
    const o = other instanceof Map || Array.isArray(other) ||
        !(Symbol.iterator in Object(other))
      ? other
      : [...(other as Iterable<[K, V]>)];
    return call(this, "update", [o], false) as Promise<void>;
  }
}
proxyMethods(DictProxy, {
  set: 2,
  has: 1,
  delete: 1,
  setdefault: 2,
  keys: 0,
  values: 0,
  items: 0,
  len: 0,
  clear: 0,
  toObject: 0,
  toMap: 0,
});

/** The methods of {@linkcode NamespaceProxy} that call the object's own in the server. */
export interface NamespaceProxy {
  /** Sets the attribute `name`. */
  set(name: string, value: unknown): Promise<void>;
  /** Whether the attribute `name` is set. */
  has(name: string): Promise<boolean>;
  /** Removes the attribute `name`; true when it was set. */
  delete(name: string): Promise<boolean>;
  /** A copy of all attributes as a plain object. */
  toObject(): Promise<Record<string, unknown>>;
}

/**
 * A proxy for a Namespace held by a manager (`manager.Namespace()`): named
 * attributes, read with `get(name)` and written with `set(name, value)`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const ns = await manager.Namespace({ x: 1 });
 * await ns.set("y", "two");
 * console.log(await ns.get("x"), await ns.get("y")); // 1 two
 * ```
 */
export class NamespaceProxy extends BaseProxy {
  /** The attribute `name` (undefined when not set). */
  get<T = unknown>(name: string): Promise<T> {
    return call(this, "get", [name], false) as Promise<T>;
  }
}
proxyMethods(NamespaceProxy, { set: 2, has: 1, delete: 1, toObject: 0 });

/** The methods of {@linkcode ValueProxy} that call the object's own in the server. */
export interface ValueProxy<T = unknown> {
  /** The value. */
  get(): Promise<T>;
  /** Replaces the value. */
  set(value: T): Promise<void>;
  /** The typecode it was made with. */
  typecode(): Promise<string>;
}

/**
 * A proxy for a Value held by a manager (`manager.Value("i", 0)`). As in
 * Python's manager, the typecode is recorded, not enforced.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const v = await manager.Value("i", 0);
 * await v.set(41);
 * console.log((await v.get()) + 1); // 42
 * ```
 */
export class ValueProxy<T = unknown> extends BaseProxy {
}
proxyMethods(ValueProxy, { get: 0, set: 1, typecode: 0 });

/** The methods of {@linkcode QueueProxy} that call the object's own in the server. */
export interface QueueProxy<T = unknown> {
  /**
   * Puts `item`, waiting while the queue is full (unless `block` is false).
   *
   * @throws {Full} (rejects) when still full after `timeout`, or full and
   *   `block` is false.
   */
  put(item: T, options?: ProxyQueueWaitOptions): Promise<void>;
  /**
   * Puts `item` without waiting.
   *
   * @throws {Full} (rejects) when the queue is full.
   */
  putNowait(item: T): Promise<void>;
  /**
   * Takes the next item, waiting while the queue is empty (unless `block` is
   * false).
   *
   * @throws {Empty} (rejects) when none came within `timeout`, or none is
   *   there and `block` is false.
   */
  get(options?: ProxyQueueWaitOptions): Promise<T>;
  /**
   * Takes the next item without waiting.
   *
   * @throws {Empty} (rejects) when the queue is empty.
   */
  getNowait(): Promise<T>;
  /** The number of items. */
  qsize(): Promise<number>;
  /** Whether the queue is empty. */
  empty(): Promise<boolean>;
  /** Whether the queue is full. */
  full(): Promise<boolean>;
  /** Marks one item taken earlier as processed (for `join()`). */
  taskDone(): Promise<void>;
  /** Waits until every item put was marked done with `taskDone()`. */
  join(): Promise<void>;
}

/**
 * A proxy for a queue held by a manager (`manager.Queue()`): the method names
 * of the module's `Queue` (Python's `queue.Queue`, with `taskDone()` and
 * `join()`), all async. Timeouts are milliseconds; `get` on an empty queue
 * that times out (or `getNowait`) rejects with `Empty`, `put` on a full one
 * with `Full`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const q = await manager.Queue<string>();
 * await q.put("work");
 * console.log(await q.get(), await q.empty()); // work true
 * ```
 */
export class QueueProxy<T = unknown> extends BaseProxy {
}
proxyMethods(QueueProxy, {
  put: 2,
  putNowait: 1,
  get: 1,
  getNowait: 0,
  qsize: 0,
  empty: 0,
  full: 0,
  taskDone: 0,
  join: 0,
}, ["put", "get", "join"]);

/** The methods of {@linkcode LockProxy} that call the object's own in the server. */
export interface LockProxy {
  /** Takes the lock; false when `blocking` is false or `timeout` ran out. */
  acquire(options?: ProxyAcquireOptions): Promise<boolean>;
  /** Releases the lock; releasing an unlocked lock rejects with `ProcessError`. */
  release(): Promise<void>;
  /** Whether the lock is taken (Semaphores: use `getValue()`). */
  locked(): Promise<boolean>;
  /** A Semaphore's current value. */
  getValue(): Promise<number>;
}

/**
 * A proxy for a lock held by a manager (`manager.Lock()`, `manager.RLock()`,
 * `manager.Semaphore(n)`, `manager.BoundedSemaphore(n)`): the method names of
 * the module's `Lock`, async. A lock held by a process that ended is
 * released.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const lock = await manager.Lock();
 * {
 *   await using _ = await lock.hold();
 *   console.log(await lock.locked()); // true
 * }
 * console.log(await lock.locked()); // false
 * ```
 */
export class LockProxy extends BaseProxy {
  /**
   * Takes the lock and returns a guard that releases it:
   * `await using _ = await lock.hold()`.
   */
  hold(
    options?: ProxyAcquireOptions,
  ): Promise<AsyncDisposable & Disposable> {
    return holdGuard(this, options);
  }
}
proxyMethods(LockProxy, { acquire: 1, release: 0, locked: 0, getValue: 0 }, [
  "acquire",
]);

/** Acquires through `proxy` and returns a guard that releases it. */
async function holdGuard(
  proxy: LockProxy | ConditionProxy,
  options: ProxyAcquireOptions | undefined,
): Promise<AsyncDisposable & Disposable> {
  if (!await proxy.acquire(options)) {
    throw new TimeoutError(
      options?.timeout === undefined
        ? "hold(): the lock is taken (blocking: false)"
        : `hold(): the lock was not acquired within ${options.timeout} ms`,
    );
  }
  let released = false;
  const release = () => {
    if (released) return Promise.resolve();
    released = true;
    return proxy.release();
  };
  return {
    [Symbol.asyncDispose]: release,
    [Symbol.dispose]: () => void release().catch(() => {}),
  };
}

/** The methods of {@linkcode EventProxy} that call the object's own in the server. */
export interface EventProxy {
  /** Sets the flag and wakes every waiter. */
  set(): Promise<void>;
  /** Clears the flag. */
  clear(): Promise<void>;
  /** Whether the flag is set. */
  isSet(): Promise<boolean>;
  /** Waits until the flag is set (true) or `timeoutMs` passed (false). */
  wait(timeoutMs?: number): Promise<boolean>;
}

/**
 * A proxy for an Event held by a manager (`manager.Event()`).
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const ev = await manager.Event();
 * await ev.set();
 * console.log(await ev.wait(1000)); // true
 * ```
 */
export class EventProxy extends BaseProxy {
}
proxyMethods(EventProxy, { set: 0, clear: 0, isSet: 0, wait: 1 }, ["wait"]);

/** The methods of {@linkcode ConditionProxy} that call the object's own in the server. */
export interface ConditionProxy {
  /** Takes the condition's lock; false when `blocking` is false or `timeout` ran out. */
  acquire(options?: ProxyAcquireOptions): Promise<boolean>;
  /** Releases the condition's lock. */
  release(): Promise<void>;
  /**
   * Releases the lock, waits for a notify (or `timeoutMs`), then holds the
   * lock again: true when notified, false when the time ran out.
   */
  wait(timeoutMs?: number): Promise<boolean>;
  /** Wakes every process waiting now; needs the lock. */
  notifyAll(): Promise<void>;
}

/**
 * A proxy for a condition variable held by a manager
 * (`manager.Condition(lock?)`, Python's `manager.Condition()`): over its own
 * RLock, or over a manager Lock/RLock given to the factory. `wait()`
 * releases the lock while it waits and holds it again when it resolves;
 * waiting or notifying without holding the lock rejects with
 * `ProcessError`. As every manager lock, the lock is owned per process (the
 * channel), and a process that ends holding it releases it.
 *
 * Async tasks of one process share that ownership. With the default RLock,
 * a second task's `acquire()` re-enters the lock the first task holds
 * instead of waiting: two tasks of one process are then inside at once, and
 * waiting corrupts the condition (one task's `wait()` releases the lock
 * wholly, the other task's hold with it, whose own `wait()` or `release()`
 * then rejects with `ProcessError`). For several tasks of one process, give
 * it a plain Lock: `manager.Condition(await manager.Lock())`.
 * A task's `acquire()` then waits while another task holds the lock, and
 * waits and notifies work across tasks as across processes. The server
 * still checks ownership by process only: it cannot tell which task holds
 * the lock, so a task that did not acquire it can `wait()`, `notify()` or
 * `release()` without the `ProcessError` another process would get; each
 * task must take the lock itself (`await using _ = await cond.hold()`).
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * // A plain Lock: two tasks of this process share it (see above).
 * const cond = await manager.Condition(await manager.Lock());
 * const state = await manager.Namespace({ ready: false });
 * await using _ = await cond.hold();
 * // Another task sets the state; it waits for the lock waitFor releases.
 * const setter = (async () => {
 *   await using _ = await cond.hold();
 *   await state.set("ready", true);
 *   await cond.notifyAll();
 * })();
 * console.log(await cond.waitFor(() => state.get("ready"), 5_000)); // true
 * await setter; // done before the manager shuts down
 * ```
 */
export class ConditionProxy extends BaseProxy {
  /**
   * Takes the lock and returns a guard that releases it:
   * `await using _ = await cond.hold()`.
   */
  hold(
    options?: ProxyAcquireOptions,
  ): Promise<AsyncDisposable & Disposable> {
    return holdGuard(this, options);
  }
  /**
   * Waits until `predicate()` is truthy, or `timeoutMs` ran out; resolves
   * the predicate's last value (Python's `wait_for`). The predicate runs
   * here, in this process, while the lock is held: first, then after each
   * wake-up (it may be async, e.g. read another proxy).
   */
  async waitFor<T>(
    predicate: () => T | Promise<T>,
    timeoutMs?: number,
  ): Promise<T> {
    if (typeof predicate !== "function") {
      throw new TypeError(
        `waitFor(predicate, timeoutMs): predicate must be a function, got ${
          predicate === null ? "null" : typeof predicate
        }`,
      );
    }
    const end = deadline(checkTimeout(timeoutMs, "waitFor() timeout"));
    let result = await predicate();
    while (!result) {
      const left = end === Infinity ? undefined : end - performance.now();
      if (left !== undefined && left <= 0) break;
      await this.wait(left);
      result = await predicate();
    }
    return result;
  }
  /** Wakes up to `n` of the processes waiting now (default 1); needs the lock. */
  notify(n = 1): Promise<void> {
    return call(this, "notify", [n], false) as Promise<void>;
  }
}
proxyMethods(
  ConditionProxy,
  { acquire: 1, release: 0, wait: 1, notifyAll: 0 },
  ["acquire", "wait"],
);

/**
 * Options of `manager.Barrier(parties, options)`.
 *
 * @example
 * ```ts
 * import { Manager, type ProxyBarrierOptions } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const options: ProxyBarrierOptions = { timeout: 1_000 };
 * const barrier = await manager.Barrier(1, options);
 * console.log(await barrier.wait()); // 0
 * ```
 */
export interface ProxyBarrierOptions {
  /** Default timeout of `wait()`, in milliseconds; undefined = forever. */
  timeout?: number;
}

/** The methods of {@linkcode BarrierProxy} that call the object's own in the server. */
export interface BarrierProxy {
  /**
   * Waits until `parties` waits are pending; resolves this one's arrival
   * index. Rejects with `BrokenBarrierError` when the barrier is or gets
   * broken, or `timeoutMs` (default: the barrier's `timeout`) runs out.
   */
  wait(timeoutMs?: number): Promise<number>;
  /** Empties the barrier and mends it; pending waits reject with `BrokenBarrierError`. */
  reset(): Promise<void>;
  /** Breaks the barrier: pending and later waits reject until `reset()`. */
  abort(): Promise<void>;
  /** How many waits release the barrier. */
  parties(): Promise<number>;
  /** How many waits are pending now (Python's `n_waiting`). */
  nWaiting(): Promise<number>;
  /** Whether the barrier is broken. */
  broken(): Promise<boolean>;
}

/**
 * A proxy for a barrier held by a manager (`manager.Barrier(parties)`,
 * Python's `manager.Barrier()`): each `wait()` resolves once `parties`
 * waits are pending, with a distinct arrival index in `0..parties-1`. A wait
 * that times out, or `abort()`, breaks the barrier: pending and later waits
 * reject with `BrokenBarrierError` until `reset()`. (It takes no `action`:
 * run that in the process whose wait resolved `parties - 1`.)
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const barrier = await manager.Barrier(2);
 * const [a, b] = await Promise.all([barrier.wait(5_000), barrier.wait(5_000)]);
 * console.log([a, b].sort()); // [ 0, 1 ]
 * ```
 */
export class BarrierProxy extends BaseProxy {
}
proxyMethods(BarrierProxy, {
  wait: 1,
  reset: 0,
  abort: 0,
  parties: 0,
  nWaiting: 0,
  broken: 0,
}, ["wait"]);

/** The methods of {@linkcode ArrayProxy} that call the object's own in the server. */
export interface ArrayProxy<T = number> {
  /** The element at `index` (negative: from the end). */
  get(index: number): Promise<T>;
  /** The number of elements (Python's `len()`). */
  len(): Promise<number>;
  /** A copy of every element, as a plain array (Python's `arr[:]`). */
  toArray(): Promise<T[]>;
  /** A copy of the elements from `start` to `end` (Python's `arr[start:end]`). */
  slice(start?: number, end?: number): Promise<T[]>;
  /** The typecode it was made with. */
  typecode(): Promise<string>;
}

/**
 * A proxy for an array held by a manager (`manager.Array(typecode,
 * sequenceOrSize)`, Python's `manager.Array()`): a fixed length of numbers
 * of one typecode (bigints for `q`/`Q`, one-character strings for `u`).
 * Elements are checked and stored as the module's `SharedArray` stores them:
 * a value of the wrong type rejects with `TypeError`, an index out of range
 * with `RangeError`; but a number out of the typecode's range is not
 * refused (Python raises `OverflowError`): it is stored as the typed array
 * stores it, as `SharedArray` does. Integers wrap around (in an `"i"` array,
 * `set(0, 2 ** 40)` stores 0; in a `"B"` one, 256 is 0 and -1 is 255),
 * fractions are truncated toward zero (3.7 in `"i"` is 3), NaN and the
 * infinities become 0 (`q`/`Q` refuse a fraction, NaN or an infinity with a
 * `RangeError`), and `"f"` rounds to the nearest float32. Check the range
 * yourself where it matters. Indices may be negative (from the end), as in
 * Python.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const arr = await manager.Array("i", [1, 2, 3]);
 * await arr.set(-1, 30);
 * console.log(await arr.get(0), await arr.toArray()); // 1 [ 1, 2, 30 ]
 * ```
 */
export class ArrayProxy<T = number> extends BaseProxy {
  /** Sets the element at `index` (`q`/`Q` take integral numbers too). */
  set(
    index: number,
    value: T | (T extends bigint ? number : never),
  ): Promise<void> {
    return call(this, "set", [index, value], false) as Promise<void>;
  }
}
proxyMethods(ArrayProxy, { get: 1, len: 0, toArray: 0, slice: 2, typecode: 0 });

Object.assign(PROXY_CLASSES, {
  list: ListProxy,
  dict: DictProxy,
  Namespace: NamespaceProxy,
  Value: ValueProxy,
  Queue: QueueProxy,
  Lock: LockProxy,
  RLock: LockProxy,
  Semaphore: LockProxy,
  BoundedSemaphore: LockProxy,
  Event: EventProxy,
  Array: ArrayProxy,
  Condition: ConditionProxy,
  Barrier: BarrierProxy,
});
