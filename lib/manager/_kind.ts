/**
 * What every kind a manager's server serves is made of. The objects are
 * plain JS structures in the server process; each kind has a fixed table
 * of methods a proxy may call (anything else is refused by name). Methods
 * that wait (Queue.get on an empty queue, Lock.acquire, Event.wait, ...)
 * return a promise that settles later ({@linkcode park}); a waiter whose
 * client is gone is dropped, and locks held by a client that is gone are
 * released, so a dead client never blocks others. The kinds themselves:
 * `_containers.ts`, `_queue.ts`, `_locks.ts`, `_sync.ts`, and `_kinds.ts`
 * (the table of them all, and users' classes).
 *
 * @module
 */

import { REF_KEY } from "./_wire.ts";
import { isPlain } from "../_values.ts";
import { show } from "../_show.ts";
import { checkKeys } from "../_options.ts";
import { checkTimeout } from "../shm/_wait.ts";

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
export type Method = (self: any, args: unknown[], caller: Caller) => unknown;

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
export function unwrap(v: unknown): unknown {
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
export function wrapped(o: Record<string, unknown>): unknown {
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

export function describe(v: unknown): string {
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

// ---------------------------------------------------------------- waiting

export interface WaitOptions {
  block: boolean;
  timeout: number | undefined;
}

export function waitOptions(
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
export interface Waiter<T> {
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
export function park<T>(
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
export function firstLive<W extends Waiter<never>>(queue: W[]): W | undefined {
  while (queue.length > 0) {
    const w = queue[0];
    if (!w.caller.closed) return w;
    w.done();
  }
  return undefined;
}
