/**
 * The objects a manager's server holds, as plain JS structures in the server
 * process: list, dict, Namespace, Value, Array, Queue, Lock, RLock,
 * Semaphore, BoundedSemaphore, Event, Condition, Barrier. Each kind has a fixed table of methods a proxy may
 * call (anything else is refused by name). Methods that wait (Queue.get on
 * an empty queue, Lock.acquire, Event.wait, ...) return a promise that
 * settles later; a waiter whose client is gone is dropped, and locks held by
 * a client that is gone are released, so a dead client never blocks others.
 *
 * @module
 */

import { BrokenBarrierError, Empty, Full, ProcessError } from "./errors.ts";
import { REF_KEY } from "./_manager_wire.ts";
import {
  checkArrayTypecode,
  TYPECODE_ARRAYS,
  TYPECODES,
} from "./_typecodes.ts";
import { isPlain } from "./_values.ts";
import { show } from "./_show.ts";
import { checkKeys } from "./_options.ts";
import { checkTimeout } from "./_wait.ts";

/** What a server-side method knows of the client calling it. */
export interface Caller {
  /** Unique per client connection. */
  readonly id: number;
  /** True once the client is gone. */
  readonly closed: boolean;
  /** Runs `fn` when the client goes away; returns a function that cancels it. */
  onClose(fn: () => void): () => void;
}

// deno-lint-ignore no-explicit-any
type Method = (self: any, args: unknown[], caller: Caller) => unknown;

/**
 * Finds the object a proxy passed as an argument stands for (its reference
 * as the server received it); throws a `ReferenceError` naming the id when
 * the server holds no such object.
 */
export type Lookup = (ref: unknown, what: string) => {
  kind: string;
  value: unknown;
};

/** A kind of object: how to make one and what may be called on it. */
export interface Kind {
  /** Creates the server-side state from the factory's arguments. */
  create(args: unknown[], lookup: Lookup): unknown;
  /** The methods proxies may call, by name. */
  methods: Record<string, Method>;
}

// ---------------------------------------------------------------- references

/**
 * A reference to an object stored inside another object's value (a proxy
 * put in a list, a dict, a queue, ...). It holds one reference for as long
 * as the server keeps it (the server counts it out once it is collected);
 * it crosses the wire as `{ [REF_KEY]: [id, kind] }`.
 */
export class StoredRef {
  readonly [REF_KEY]: [number, string];
  /** A reference to object `id`, of `kind`. */
  constructor(id: number, kind: string) {
    this[REF_KEY] = [id, kind];
  }
}

/**
 * The caller's own object when `v` is one wrapped by the client's encoding
 * (`{ [REF_KEY]: object }`: it has a field named {@linkcode REF_KEY}),
 * else `v`: for the arguments whose fields a method reads.
 */
function unwrap(v: unknown): unknown {
  if (v === null || typeof v !== "object" || !isPlain(v)) return v;
  if (!Object.hasOwn(v, REF_KEY)) return v;
  const inner = (v as Record<string, unknown>)[REF_KEY];
  return inner !== null && typeof inner === "object" && !Array.isArray(inner)
    ? inner
    : v;
}

/**
 * `o`, a plain object made here with the caller's keys, wrapped when one
 * is named {@linkcode REF_KEY} (so the client never takes it for a
 * reference).
 */
function wrapped(o: Record<string, unknown>): unknown {
  return Object.hasOwn(o, REF_KEY) ? { [REF_KEY]: o } : o;
}

// ---------------------------------------------------------------- equality

/** Python's `==` for the values a manager holds: by value, not identity. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return a === b;
  if (
    a === null || b === null || typeof a !== "object" || typeof b !== "object"
  ) {
    return false;
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  // References to manager objects (proxies stored or passed): by object.
  if (a instanceof StoredRef || b instanceof StoredRef) {
    return a instanceof StoredRef && b instanceof StoredRef &&
      a[REF_KEY][0] === b[REF_KEY][0];
  }
  if (a instanceof Date && b instanceof Date) {
    return a.getTime() === b.getTime();
  }
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) {
      if (!b.has(k) || !deepEqual(v, b.get(k))) return false;
    }
    return true;
  }
  if (a instanceof Set && b instanceof Set) {
    if (a.size !== b.size) return false;
    for (const v of a) if (!b.has(v)) return false;
    return true;
  }
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return a.constructor === b.constructor && deepEqual([...x], [...y]);
  }
  if (isPlain(a) && isPlain(b)) {
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    const rb = b as Record<string, unknown>, ra = a as Record<string, unknown>;
    for (const k of ka) {
      if (!Object.hasOwn(rb, k) || !deepEqual(ra[k], rb[k])) return false;
    }
    return true;
  }
  return false;
}

function describe(v: unknown): string {
  // NaN and the infinities (which JSON writes as null) as themselves.
  if (typeof v === "number") return String(v);
  try {
    const s = typeof v === "bigint" ? `${v}n` : JSON.stringify(v);
    if (s === undefined) return String(v);
    return s.length > 60 ? s.slice(0, 57) + "..." : s;
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------- list

function index(
  i: unknown,
  length: number,
  what: string,
  noun = "list",
): number {
  if (typeof i !== "number" || !Number.isInteger(i)) {
    throw new TypeError(`${what} must be an integer, got ${describe(i)}`);
  }
  const j = i < 0 ? i + length : i;
  if (j < 0 || j >= length) {
    throw new RangeError(
      `${what} ${i} is out of range for ${
        noun === "array" ? "an" : "a"
      } ${noun} of length ${length}${
        length > 0 ? ` (valid: ${-length}..${length - 1})` : ""
      }`,
    );
  }
  return j;
}

function sliceBound(i: unknown, length: number, dflt: number): number {
  if (i === undefined || i === null) return dflt;
  if (typeof i !== "number" || !Number.isInteger(i)) {
    throw new TypeError(`slice bounds must be integers, got ${describe(i)}`);
  }
  const j = i < 0 ? i + length : i;
  return Math.max(0, Math.min(length, j));
}

function toItems(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set || v instanceof Map) return [...v];
  if (v === undefined || v === null) return [];
  throw new TypeError(
    `${what} must be an array (or Set), got ${typeof v}`,
  );
}

const list: Kind = {
  create: ([init]) => [...toItems(init, "the list's initial items")],
  methods: {
    append: (l: unknown[], [v]) => void l.push(v),
    extend: (l: unknown[], [items]) => {
      for (const v of toItems(items, "extend(items)")) l.push(v);
    },
    get: (l: unknown[], [i]) => l[index(i, l.length, "list index")],
    set: (l: unknown[], [i, v]) => {
      l[index(i, l.length, "list index")] = v;
    },
    pop: (l: unknown[], args) => {
      if (l.length === 0) throw new RangeError("pop from empty list");
      const j = index(args.length ? args[0] : -1, l.length, "pop index");
      return l.splice(j, 1)[0];
    },
    insert: (l: unknown[], [i, v]) => {
      if (typeof i !== "number" || !Number.isInteger(i)) {
        throw new TypeError(
          `insert index must be an integer, got ${describe(i)}`,
        );
      }
      const j = Math.max(0, Math.min(l.length, i < 0 ? i + l.length : i));
      l.splice(j, 0, v);
    },
    remove: (l: unknown[], [v]) => {
      const j = l.findIndex((x) => deepEqual(x, v));
      if (j < 0) {
        throw new RangeError(`list.remove(x): ${describe(v)} is not in list`);
      }
      l.splice(j, 1);
    },
    index: (l: unknown[], [v, start, end]) => {
      const s = sliceBound(start, l.length, 0);
      const e = sliceBound(end, l.length, l.length);
      for (let j = s; j < e; j++) if (deepEqual(l[j], v)) return j;
      throw new RangeError(`${describe(v)} is not in list`);
    },
    count: (l: unknown[], [v]) => l.filter((x) => deepEqual(x, v)).length,
    includes: (l: unknown[], [v]) => l.some((x) => deepEqual(x, v)),
    len: (l: unknown[]) => l.length,
    toArray: (l: unknown[]) => l,
    slice: (l: unknown[], [start, end]) =>
      l.slice(
        sliceBound(start, l.length, 0),
        sliceBound(end, l.length, l.length),
      ),
    clear: (l: unknown[]) => void (l.length = 0),
    reverse: (l: unknown[]) => void l.reverse(),
  },
};

// ---------------------------------------------------------------- dict

const KEY = "\u0000mp.key:";

/** Dict keys by value: tuples (arrays) and objects compare by content. */
function norm(key: unknown): unknown {
  if (key === null || typeof key !== "object") return key;
  return KEY + JSON.stringify(
    key,
    (_k, v) => typeof v === "bigint" ? `${v}n` : v,
  );
}

type Dict = Map<unknown, [unknown, unknown]>;

function entriesOf(v: unknown, what: string): [unknown, unknown][] {
  if (v === undefined || v === null) return [];
  if (v instanceof Map) return [...v];
  if (Array.isArray(v)) {
    return v.map((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new TypeError(
          `${what}: item ${i} is not a [key, value] pair`,
        );
      }
      return [pair[0], pair[1]];
    });
  }
  if (typeof v === "object") return Object.entries(unwrap(v) as object);
  throw new TypeError(
    `${what} must be an object, a Map or an array of [key, value] pairs, got ${typeof v}`,
  );
}

function keyError(key: unknown): RangeError {
  return new RangeError(`key ${describe(key)} is not in the dict`);
}

const dict: Kind = {
  create: ([init]) => {
    const d: Dict = new Map();
    for (const [k, v] of entriesOf(init, "the dict's initial items")) {
      d.set(norm(k), [k, v]);
    }
    return d;
  },
  methods: {
    get: (d: Dict, [k, dflt]) => {
      const e = d.get(norm(k));
      return e ? e[1] : dflt;
    },
    set: (d: Dict, [k, v]) => {
      const n = norm(k), e = d.get(n);
      if (e) e[1] = v;
      else d.set(n, [k, v]);
    },
    has: (d: Dict, [k]) => d.has(norm(k)),
    delete: (d: Dict, [k]) => d.delete(norm(k)),
    pop: (d: Dict, args) => {
      const n = norm(args[0]), e = d.get(n);
      if (e) {
        d.delete(n);
        return e[1];
      }
      if (args.length > 1) return args[1];
      throw keyError(args[0]);
    },
    setdefault: (d: Dict, [k, dflt]) => {
      const n = norm(k), e = d.get(n);
      if (e) return e[1];
      d.set(n, [k, dflt]);
      return dflt;
    },
    keys: (d: Dict) => [...d.values()].map((e) => e[0]),
    values: (d: Dict) => [...d.values()].map((e) => e[1]),
    items: (d: Dict) => [...d.values()].map((e) => [e[0], e[1]]),
    len: (d: Dict) => d.size,
    update: (d: Dict, [other]) => {
      for (const [k, v] of entriesOf(other, "update(other)")) {
        const n = norm(k), e = d.get(n);
        if (e) e[1] = v;
        else d.set(n, [k, v]);
      }
    },
    clear: (d: Dict) => d.clear(),
    toObject: (d: Dict) => {
      const o: Record<string, unknown> = {};
      for (const [k, v] of d.values()) o[String(k)] = v;
      return wrapped(o);
    },
    toMap: (d: Dict) => new Map([...d.values()]),
  },
};

// ---------------------------------------------------------------- Namespace

function attr(name: unknown): string {
  if (typeof name !== "string") {
    throw new TypeError(
      `a Namespace attribute name must be a string, got ${typeof name}`,
    );
  }
  return name;
}

type Ns = Map<string, unknown>;

const namespace: Kind = {
  create: ([init]) => {
    if (init !== undefined && (init === null || typeof init !== "object")) {
      throw new TypeError(
        `Namespace(init): init must be an object of attributes, got ${
          init === null ? "null" : typeof init
        }`,
      );
    }
    return new Map(Object.entries((unwrap(init) ?? {}) as object));
  },
  methods: {
    get: (ns: Ns, [name]) => ns.get(attr(name)),
    set: (ns: Ns, [name, v]) => void ns.set(attr(name), v),
    has: (ns: Ns, [name]) => ns.has(attr(name)),
    delete: (ns: Ns, [name]) => ns.delete(attr(name)),
    toObject: (ns: Ns) => wrapped(Object.fromEntries(ns)),
  },
};

// ---------------------------------------------------------------- Value

interface Val {
  typecode: string;
  value: unknown;
}

const value: Kind = {
  create: ([typecode, v]) => {
    if (typeof typecode !== "string" || !TYPECODES.includes(typecode)) {
      throw new TypeError(
        `unknown typecode ${describe(typecode)}: use one of ${
          TYPECODES.join(" ")
        }`,
      );
    }
    return { typecode, value: v } as Val;
  },
  methods: {
    get: (v: Val) => v.value,
    set: (v: Val, [x]) => void (v.value = x),
    typecode: (v: Val) => v.typecode,
  },
};

// ---------------------------------------------------------------- Array

type Typed =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** The typed array holding each numeric typecode (as `SharedArray` uses). */
const TYPED: Record<string, new (n: number) => Typed> = TYPECODE_ARRAYS;

/**
 * Checks `x` fits typecode `t` (a number; for q/Q a bigint or an integral
 * number; for u one character) and converts it as `SharedArray` does; the
 * typed array then stores it (integers wrap, floats round).
 */
function arrayElement(t: string, x: unknown): number | bigint | string {
  if (t === "u") {
    if (typeof x === "string" && [...x].length === 1) return x;
    throw new TypeError(
      `typecode 'u' holds one-character strings, got ${describe(x)}`,
    );
  }
  if (t === "q" || t === "Q") {
    if (typeof x === "bigint") return x;
    if (typeof x === "number") {
      if (Number.isInteger(x)) return BigInt(x);
      throw new RangeError(
        `typecode '${t}' holds integers (bigints), got ${describe(x)}`,
      );
    }
  } else if (typeof x === "number") return x;
  throw new TypeError(
    `typecode '${t}' holds ${
      t === "q" || t === "Q" ? "bigints" : "numbers"
    }, got ${typeof x === "string" ? `'${x}'` : typeof x}`,
  );
}

interface ServerArray {
  typecode: string;
  data: Typed | string[];
}

function arrayOf(t: string, init: unknown): ServerArray {
  let items: unknown[] | undefined;
  let length: number;
  if (typeof init === "number") {
    if (!Number.isInteger(init) || init < 0) {
      throw new RangeError(
        `Array size must be a non-negative integer, got ${describe(init)}`,
      );
    }
    length = init;
  } else if (typeof init === "string" && t === "u") {
    items = [...init];
    length = items.length;
  } else if (Array.isArray(init) || ArrayBuffer.isView(init)) {
    items = Array.from(init as ArrayLike<unknown>);
    length = items.length;
  } else {
    throw new TypeError(
      `Array(typecode, sequenceOrSize): sequenceOrSize must be a non-negative integer or a sequence of ${
        t === "u" ? "characters" : "numbers"
      }, got ${init === null ? "null" : typeof init}`,
    );
  }
  if (t === "u") {
    const data = items
      ? items.map((x) => arrayElement(t, x) as string)
      : new Array<string>(length).fill("\0");
    return { typecode: t, data };
  }
  const data = new TYPED[t](length);
  if (items) {
    for (let i = 0; i < length; i++) {
      (data as unknown as unknown[])[i] = arrayElement(t, items[i]);
    }
  }
  return { typecode: t, data };
}

const array: Kind = {
  create: ([typecode, init]) => arrayOf(checkArrayTypecode(typecode), init),
  methods: {
    get: (a: ServerArray, [i]) =>
      a.data[index(i, a.data.length, "Array index", "array")],
    set: (a: ServerArray, [i, x]) => {
      const j = index(i, a.data.length, "Array index", "array");
      (a.data as unknown[])[j] = arrayElement(a.typecode, x);
    },
    len: (a: ServerArray) => a.data.length,
    toArray: (a: ServerArray) => Array.from(a.data as ArrayLike<unknown>),
    slice: (a: ServerArray, [start, end]) =>
      Array.from(
        a.data.slice(
          sliceBound(start, a.data.length, 0),
          sliceBound(end, a.data.length, a.data.length),
        ) as ArrayLike<unknown>,
      ),
    typecode: (a: ServerArray) => a.typecode,
  },
};

// ---------------------------------------------------------------- waiting

interface WaitOptions {
  block: boolean;
  timeout: number | undefined;
}

function waitOptions(
  o: unknown,
  what: string,
  blockKey = "block",
): WaitOptions {
  if (o === undefined || o === null) return { block: true, timeout: undefined };
  if (typeof o !== "object") {
    throw new TypeError(
      `${what} options must be an object like { ${blockKey}: false } or { timeout: 1000 }, got ${
        show(o)
      }`,
    );
  }
  checkKeys(o, [blockKey, "timeout"], `${what} option`);
  const r = o as Record<string, unknown>;
  return {
    block: r[blockKey] === undefined ? true : Boolean(r[blockKey]),
    // null: Python's None.
    timeout: r.timeout === null
      ? undefined
      : checkTimeout(r.timeout, `${what} timeout`),
  };
}

/** A client waiting for something; dropped when it leaves or times out. */
interface Waiter<T> {
  caller: Caller;
  resolve(v: T): void;
  reject(e: unknown): void;
  done(): void;
}

/**
 * How many parked waiters were settled so far: the server watches it to
 * hand its microtasks a turn after a call woke a waiter, so that the
 * waiter's reply goes out at once (its reply is a promise reaction).
 */
export const wakes = { count: 0 };

/**
 * Parks a waiter on `queue` until `settle` is called, its timeout passes
 * (`onTimeout` decides what that means) or its client leaves.
 */
function park<T>(
  queue: Waiter<T>[],
  caller: Caller,
  timeout: number | undefined,
  onTimeout: (w: Waiter<T>) => void,
  extra?: object,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const w: Waiter<T> = {
      ...extra,
      caller,
      resolve: (v) => {
        w.done();
        wakes.count++;
        resolve(v);
      },
      reject: (e) => {
        w.done();
        wakes.count++;
        reject(e);
      },
      done: () => {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        cancel();
        const i = queue.indexOf(w);
        if (i >= 0) queue.splice(i, 1);
      },
    };
    const cancel = caller.onClose(() => w.done());
    queue.push(w);
    if (timeout !== undefined) timer = setTimeout(() => onTimeout(w), timeout);
  });
}

/** The first waiter whose client is still there. */
function firstLive<W extends Waiter<never>>(queue: W[]): W | undefined {
  while (queue.length > 0) {
    const w = queue[0];
    if (!w.caller.closed) return w;
    w.done();
  }
  return undefined;
}

// ---------------------------------------------------------------- Queue

class ServerQueue {
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

function queueSize(args: unknown[]): number {
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

function put(q: ServerQueue, item: unknown, o: WaitOptions, caller: Caller) {
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

function get(q: ServerQueue, o: WaitOptions, caller: Caller): unknown {
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

const queue: Kind = {
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

// ---------------------------------------------------------------- locks

class ServerLock {
  owner: Caller | null = null;
  count = 0;
  waiters: Waiter<boolean>[] = [];
  releaseOnClose: (() => void) | null = null;
  constructor(readonly reentrant: boolean, readonly name: string) {}

  grant(c: Caller): void {
    this.owner = c;
    this.count = 1;
    // A client that leaves while holding the lock releases it.
    this.releaseOnClose = c.onClose(() => {
      if (this.owner === c) this.handOff();
    });
  }
  handOff(): void {
    this.releaseOnClose?.();
    this.releaseOnClose = null;
    this.owner = null;
    this.count = 0;
    const w = firstLive(this.waiters);
    if (w) {
      this.grant(w.caller);
      w.resolve(true);
    }
  }
}

function acquire(l: ServerLock, args: unknown[], c: Caller): unknown {
  const o = waitOptions(args[0], "acquire()", "blocking");
  if (l.owner === null) {
    l.grant(c);
    return true;
  }
  if (l.reentrant && l.owner.id === c.id) {
    l.count++;
    return true;
  }
  if (!o.block || o.timeout === 0) return false;
  return park(l.waiters, c, o.timeout, (w) => w.resolve(false));
}

function release(l: ServerLock, c: Caller): void {
  if (l.owner === null) {
    throw new ProcessError(
      `release() of an unlocked ${l.name}: acquire it first (or use \`await using _ = await lock.hold()\`)`,
    );
  }
  if (l.reentrant) {
    if (l.owner.id !== c.id) {
      throw new ProcessError(
        `release() of an ${l.name} held by another process: only its holder can release it`,
      );
    }
    if (--l.count > 0) return;
  }
  l.handOff();
}

function lockKind(reentrant: boolean, name: string): Kind {
  return {
    create: () => new ServerLock(reentrant, name),
    methods: {
      acquire: (l: ServerLock, args, c) => acquire(l, args, c),
      release: (l: ServerLock, _a, c) => release(l, c),
      locked: (l: ServerLock) => l.owner !== null,
    },
  };
}

class ServerSemaphore {
  waiters: Waiter<boolean>[] = [];
  constructor(public value: number, readonly bound: number | null) {}
}

function semaphoreKind(bounded: boolean): Kind {
  const name = bounded ? "BoundedSemaphore" : "Semaphore";
  return {
    create: ([v]) => {
      const value = v ?? 1;
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
        throw new RangeError(
          `${name} value must be a non-negative integer, got ${
            describe(value)
          }`,
        );
      }
      return new ServerSemaphore(value, bounded ? value : null);
    },
    methods: {
      acquire: (s: ServerSemaphore, args, c) => {
        const o = waitOptions(args[0], "acquire()", "blocking");
        if (s.value > 0) {
          s.value--;
          return true;
        }
        if (!o.block || o.timeout === 0) return false;
        return park(s.waiters, c, o.timeout, (w) => w.resolve(false));
      },
      release: (s: ServerSemaphore, [n]) => {
        const times = n === undefined ? 1 : n;
        if (
          typeof times !== "number" || !Number.isInteger(times) || times < 1
        ) {
          throw new RangeError(
            `release(n): n must be a positive integer, got ${describe(times)}`,
          );
        }
        if (s.bound !== null && s.value + times > s.bound) {
          throw new ProcessError(
            `BoundedSemaphore released too many times (past its start value ${s.bound})`,
          );
        }
        for (let i = 0; i < times; i++) {
          const w = firstLive(s.waiters);
          if (w) w.resolve(true);
          else s.value++;
        }
      },
      getValue: (s: ServerSemaphore) => s.value,
    },
  };
}

// ---------------------------------------------------------------- Event

class ServerEvent {
  flag = false;
  waiters: Waiter<boolean>[] = [];
}

const event: Kind = {
  create: () => new ServerEvent(),
  methods: {
    set: (e: ServerEvent) => {
      e.flag = true;
      for (const w of [...e.waiters]) w.resolve(true);
    },
    clear: (e: ServerEvent) => void (e.flag = false),
    isSet: (e: ServerEvent) => e.flag,
    wait: (e: ServerEvent, [timeout], c) => {
      if (e.flag) return true;
      const o = waitOptions({ timeout }, "wait()");
      if (o.timeout === 0) return false;
      return park(e.waiters, c, o.timeout, (w) => w.resolve(false));
    },
  },
};

// ---------------------------------------------------------------- Condition

/**
 * A condition variable over a server lock (its own RLock, or a manager
 * Lock/RLock given to `manager.Condition(lock)`). `wait` releases the lock
 * wholly (an RLock's depth is kept), parks, then takes the lock again before
 * it answers, as Python's `threading.Condition.wait` does.
 */
class ServerCondition {
  waiters: Waiter<boolean>[] = [];
  constructor(readonly lock: ServerLock) {}

  mustHold(c: Caller, what: string): void {
    if (this.lock.owner?.id !== c.id) {
      throw new ProcessError(
        `Condition.${what}() without holding its lock: acquire it first (\`await using _ = await cond.hold()\`)`,
      );
    }
  }
}

/** Takes `l` for `c` once it is free (no timeout: as Python, after a wait). */
function lockFor(l: ServerLock, c: Caller): Promise<unknown> | undefined {
  if (l.owner === null) {
    l.grant(c);
    return undefined;
  }
  return park(l.waiters, c, undefined, () => {});
}

async function conditionWait(
  cond: ServerCondition,
  timeout: unknown,
  c: Caller,
): Promise<boolean> {
  const o = waitOptions({ timeout }, "wait()");
  cond.mustHold(c, "wait");
  const l = cond.lock;
  const depth = l.count;
  l.handOff();
  let notified = false;
  try {
    if (o.timeout !== 0) {
      notified = await park(
        cond.waiters,
        c,
        o.timeout,
        (w) => w.resolve(false),
      );
    }
  } finally {
    await lockFor(l, c);
    l.count = depth;
  }
  return notified;
}

function notifyCount(n: unknown): number {
  const k = n === undefined ? 1 : n;
  if (typeof k !== "number" || !Number.isInteger(k) || k < 0) {
    throw new RangeError(
      `notify(n): n must be a non-negative integer, got ${describe(k)}`,
    );
  }
  return k;
}

const condition: Kind = {
  create: ([lock], lookup) => {
    if (lock === undefined || lock === null) {
      return new ServerCondition(new ServerLock(true, "RLock"));
    }
    const obj = lookup(lock, "Condition(lock)");
    if (!(obj.value instanceof ServerLock)) {
      throw new TypeError(
        `Condition(lock): lock must be a manager Lock or RLock, got a ${obj.kind}`,
      );
    }
    return new ServerCondition(obj.value);
  },
  methods: {
    acquire: (cv: ServerCondition, args, c) => acquire(cv.lock, args, c),
    release: (cv: ServerCondition, _a, c) => release(cv.lock, c),
    locked: (cv: ServerCondition) => cv.lock.owner !== null,
    wait: (cv: ServerCondition, [timeout], c) => conditionWait(cv, timeout, c),
    notify: (cv: ServerCondition, [n], c) => {
      let k = notifyCount(n);
      cv.mustHold(c, "notify");
      for (; k > 0; k--) {
        const w = firstLive(cv.waiters);
        if (!w) break;
        w.resolve(true);
      }
    },
    notifyAll: (cv: ServerCondition, _a, c) => {
      cv.mustHold(c, "notifyAll");
      for (const w of [...cv.waiters]) w.resolve(true);
    },
  },
};

// ---------------------------------------------------------------- Barrier

/**
 * Python's `threading.Barrier`, served: a wait parks until `parties` waits
 * are parked, then all resolve with their arrival index (0..parties-1). A
 * wait that times out, or `abort()`, breaks it: every wait then rejects
 * with `BrokenBarrierError` until `reset()`. A waiter whose client is gone
 * no longer counts as arrived.
 */
class ServerBarrier {
  waiters: Waiter<number>[] = [];
  broken = false;
  constructor(readonly parties: number, readonly timeout: number | undefined) {}

  live(): number {
    return this.waiters.filter((w) => !w.caller.closed).length;
  }
  /** Rejects every waiter with `BrokenBarrierError`. */
  fail(why: string): void {
    for (const w of [...this.waiters]) w.reject(new BrokenBarrierError(why));
  }
  break(why: string): void {
    this.broken = true;
    this.fail(why);
  }
}

const BROKEN_HINT = "reset() it to use it again";

const barrier: Kind = {
  create: ([parties, options]) => {
    if (
      typeof parties !== "number" || !Number.isInteger(parties) || parties < 1
    ) {
      throw new RangeError(
        `Barrier parties must be a positive integer, got ${describe(parties)}`,
      );
    }
    if (options !== undefined && options !== null) {
      if (typeof options !== "object") {
        throw new TypeError(
          `Barrier(parties, options): options must be an object like { timeout: 1000 }, got ${typeof options}`,
        );
      }
      if ((options as Record<string, unknown>).action !== undefined) {
        throw new TypeError(
          "a manager Barrier takes no action: a function cannot reach the server; " +
            "run it yourself in the process whose wait() resolved parties - 1",
        );
      }
    }
    const o = waitOptions(options, "Barrier");
    return new ServerBarrier(parties, o.timeout);
  },
  methods: {
    wait: (b: ServerBarrier, [timeout], c) => {
      const o = waitOptions(
        { timeout: timeout === undefined ? b.timeout : timeout },
        "wait()",
      );
      if (b.broken) {
        throw new BrokenBarrierError(`the barrier is broken; ${BROKEN_HINT}`);
      }
      // Dead clients' waits are dropped as they go; prune any not seen yet.
      for (const w of [...b.waiters]) if (w.caller.closed) w.done();
      if (b.waiters.length + 1 >= b.parties) {
        const arrived = [...b.waiters];
        arrived.forEach((w, i) => w.resolve(i));
        return b.parties - 1;
      }
      const why = (ms: number | undefined) =>
        `a wait on the barrier timed out after ${ms} ms (${b.live()} of ${b.parties} parties had arrived); ${BROKEN_HINT}`;
      if (o.timeout === 0) {
        b.break(why(0));
        throw new BrokenBarrierError(why(0));
      }
      return park(b.waiters, c, o.timeout, () => b.break(why(o.timeout)));
    },
    reset: (b: ServerBarrier) => {
      b.broken = false;
      b.fail("the barrier was reset while this wait was parked");
    },
    abort: (b: ServerBarrier) =>
      b.break(`the barrier was aborted (abort()); ${BROKEN_HINT}`),
    parties: (b: ServerBarrier) => b.parties,
    nWaiting: (b: ServerBarrier) => b.live(),
    broken: (b: ServerBarrier) => b.broken,
  },
};

/** Every kind a manager can create, by the name its factory uses. */
export const KINDS: Record<string, Kind> = {
  list,
  dict,
  Namespace: namespace,
  Value: value,
  Array: array,
  Queue: queue,
  Lock: lockKind(false, "Lock"),
  RLock: lockKind(true, "RLock"),
  Semaphore: semaphoreKind(false),
  BoundedSemaphore: semaphoreKind(true),
  Event: event,
  Condition: condition,
  Barrier: barrier,
};

// ---------------------------------------------------------------- a user's class

/**
 * The public methods of `cls` (Python's default `exposed`): every function
 * on its prototype chain below `Object.prototype`, but the constructor,
 * accessors and names that begin with `_`.
 */
export function publicMethods(cls: { prototype: unknown }): string[] {
  const names = new Set<string>();
  for (
    let p = cls.prototype as object | null;
    p !== null && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name === "constructor" || name.startsWith("_")) continue;
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (d && typeof d.value === "function") names.add(name);
    }
  }
  return [...names];
}

/**
 * The kind of a user's class served by a manager (`manager.create(Cls)`,
 * `Manager.register(typeid, Cls)`): objects made with `new cls(...args)`,
 * whose public methods proxies may call (an async one's promise is waited
 * for, as a parked call's).
 */
export function classKind(
  cls: new (...args: unknown[]) => object,
): Kind {
  const methods: Record<string, Method> = {};
  for (const name of publicMethods(cls)) {
    methods[name] = (
      self: Record<string, (...a: unknown[]) => unknown>,
      args,
    ) => self[name](...args);
  }
  return { create: (args) => new cls(...args), methods };
}
