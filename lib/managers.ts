/**
 * Managers: Python's `multiprocessing.Manager`. A server process owns
 * shared objects (list, dict, Namespace, Value, Array, Queue, Lock, RLock,
 * Semaphore, Event, Condition, Barrier); other processes use them through
 * async proxies. Proxies cross into child processes inside `args` (or
 * through a Pipe, or as items of a manager Queue) and keep working there. With an `address` and an `authkey`, the manager also serves other
 * programs over TCP, after an HMAC challenge-response in both directions.
 *
 * @example
 * ```ts
 * import { Manager, Process, type ListProxy } from "@mp/multiprocessing";
 *
 * export async function addRecord(records: ListProxy<[string, number]>) {
 *   await records.append(["Jeff", 8]);
 * }
 *
 * if (import.meta.main) {
 *   await using manager = await Manager.start();
 *   const records = await manager.list<[string, number]>([["Sam", 10]]);
 *   const p = new Process({ target: addRecord, args: [records] });
 *   await p.start();
 *   await p.join();
 *   console.log(await records.toArray()); // [ [ "Sam", 10 ], [ "Jeff", 8 ] ]
 * }
 * ```
 *
 * @module
 */

import { checkNotImporting, Process } from "./process.ts";
import { reduceSymbol, registerRebuilder } from "./reduction.ts";
import type { Reduced } from "./reduction.ts";
import { EOFError, TimeoutError } from "./errors.ts";
import {
  type Address,
  adoptChannel,
  LocalChannel,
  type ProxyChannel as Channel,
  TcpChannel,
} from "./_manager_channel.ts";
import {
  CHANNEL_BYTES,
  OP_CALL,
  OP_CALL_REFS,
  OP_CREATE,
  OP_DEBUG,
  OP_DECREF,
  OP_GET,
  OP_LEND,
  OP_REGISTER,
  OP_SHUTDOWN,
  OP_TAKE,
  REF_KEY,
} from "./_manager_wire.ts";
// The server's code loads only where a server starts (every child loads
// this module, and most never start a manager).
import type { ServerConfig } from "./_manager_server.ts";
import { authkeyBytes } from "./_auth.ts";
import { checkKeys } from "./_options.ts";
import { notQueueable } from "./_codec.ts";
import { MAX_FRAME } from "./_frames.ts";
import { checkArrayTypecode, TYPECODES } from "./_typecodes.ts";
import { isOpaque, isPlain } from "./_values.ts";
import { repr } from "./_inspect.ts";
import {
  classRefOf,
  isClass,
  moduleUrl,
  resolveClass,
  type TargetRef,
} from "./_target.ts";
import { checkTimeout, deadline, MAX_TIMER_MS } from "./_wait.ts";

export type { Address, ProxyChannel } from "./_manager_channel.ts";

const SERVER_MODULE = new URL("./_manager_server.ts", import.meta.url).href;
const PROXY_TAG = "mp.ManagerProxy";
const REF = REF_KEY;
/** How long `Manager.start()` waits for the server to come up. */
const START_TIMEOUT_MS = 30_000;
/** How long `shutdown()` waits for the server to stop before ending it. */
const STOP_TIMEOUT_MS = 2_000;

// ------------------------------------------------------------------ proxies

interface ProxyRef {
  channel: Channel;
  id: number;
  kind: string;
  /** Whether the server counts a reference for this proxy (made by makeProxy). */
  counted: boolean;
  /** Set by dispose() (or collection): calls then fail. */
  disposed: boolean;
  /** Calls in progress. */
  inflight: number;
  /** The proxy itself while calls are in progress, so it is not collected meanwhile. */
  self: BaseProxy | null;
}

const refs = new WeakMap<BaseProxy, ProxyRef>();

function refOf(p: BaseProxy): ProxyRef {
  const r = refs.get(p);
  if (!r) throw new TypeError("not a manager proxy");
  return r;
}

function disposedError(r: ProxyRef, what: string): ReferenceError {
  return new ReferenceError(
    `${what}: this ${r.kind} proxy (object ${r.id}) was disposed of; ` +
      `use another proxy of the object (manager.get(name), or one kept elsewhere)`,
  );
}

// Reference counting, as Python's proxies do: each proxy made in a process
// counts one reference in the server, for its channel; it goes when the
// proxy is disposed of or collected (batched: one message a channel).

const pendingDecrefs = new Map<Channel, number[]>();

function flushDecrefs(): void {
  for (const [channel, ids] of pendingDecrefs) {
    channel.call(OP_DECREF, ids).catch(() => {}); // a gone server holds nothing
  }
  pendingDecrefs.clear();
}

function dropReference(channel: Channel, id: number): void {
  if (pendingDecrefs.size === 0) queueMicrotask(flushDecrefs);
  const ids = pendingDecrefs.get(channel);
  if (ids) ids.push(id);
  else pendingDecrefs.set(channel, [id]);
}

const collected = new FinalizationRegistry<ProxyRef>((r) => {
  if (r.disposed) return;
  r.disposed = true;
  dropReference(r.channel, r.id);
});

/** Calls whose arguments hold proxies: kept alive until the server has them. */
const sending = new Set<unknown[]>();

let tokenPrefix = "";
let tokenCount = 0;

/** A token unique to one sending of a proxy, in any process of any program. */
function nextToken(): string {
  if (tokenPrefix === "") tokenPrefix = crypto.randomUUID();
  return `${tokenPrefix}:${++tokenCount}`;
}

/** The reference a proxy stands for in a value sent to its server. */
function refFor(p: BaseProxy, serverId: string): Record<string, unknown> {
  const r = refOf(p);
  if (r.disposed) throw disposedError(r, "a proxy cannot be stored");
  if (r.channel.serverId !== serverId) {
    throw new TypeError(
      "a proxy can only be stored in the manager that holds its object",
    );
  }
  return { [REF]: [r.id, r.kind] };
}

function refuseShared(v: object): never {
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  throw new TypeError(
    `a ${
      name ?? "shared object"
    } cannot be stored in a manager (it is shared memory of this program, not data); ` +
      `store data, or use the manager's own kind (e.g. manager.Lock(), manager.Queue())`,
  );
}

/**
 * How many objects, and how deep, a quick walk of a value may go before it
 * gives up for a walk that keeps a set of the objects met: a value that is
 * not cyclic, the usual case, is walked without allocating anything; a
 * cyclic one (or a very big or deep one) goes on with the set.
 */
const QUICK_OBJECTS = 10_000;
const QUICK_DEPTH = 64;
/** Objects the current quick walk may still meet. */
let budget = 0;
/** Thrown when a quick walk ran out of {@linkcode budget}. */
const OVER_BUDGET = new Error("over budget");
/** Whether the last {@linkcode encode} met a proxy (the server then counts references). */
let encodedRefs = false;

/**
 * Proxies inside call arguments become references the server keeps, in
 * arrays, plain objects, Map keys and values, Set members and the fields of
 * class instances (which arrive as plain objects, as structured clone and
 * the codec carry them). A plain object (or class instance) of the caller's
 * with a field named {@linkcode REF_KEY} is wrapped (`{ [REF_KEY]: copy }`)
 * so that it is never taken for a reference, and unwrapped on its way back.
 *
 * Two passes: the first only looks (arguments with neither, the usual case,
 * go as they are, uncopied); when it finds one, the second copies the value
 * with each replaced, and sets {@linkcode encodedRefs} when it met a proxy.
 * Shared parts stay shared and cycles end (structured clone and the codec
 * carry both).
 */
function encode(args: unknown[], serverId: string): unknown[] {
  encodedRefs = false;
  let found: boolean;
  budget = QUICK_OBJECTS;
  try {
    found = needsEncoding(args, serverId, null, 0);
  } catch (e) {
    if (e !== OVER_BUDGET) throw e;
    found = needsEncoding(args, serverId, new Set([args]), 0);
  }
  return found ? encoded(args, serverId, new Map()) as unknown[] : args;
}

/**
 * Whether `v` holds a proxy or an object to wrap. `seen`: the objects met
 * so far (`v` among them); null for a quick walk, which throws
 * {@linkcode OVER_BUDGET} past {@linkcode QUICK_OBJECTS} objects (a cycle,
 * or a big value).
 */
function needsEncoding(
  v: object,
  serverId: string,
  seen: Set<object> | null,
  depth: number,
): boolean {
  if (seen === null && (--budget < 0 || depth > QUICK_DEPTH)) {
    throw OVER_BUDGET;
  }
  depth++;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (childNeeds(v[i], serverId, seen, depth)) return true;
    }
    return false;
  }
  const plain = isPlain(v);
  if (!plain) {
    if (v instanceof BaseProxy) {
      refFor(v, serverId); // fails now for a disposed or foreign proxy
      return true;
    }
    if (typeof (v as Record<symbol, unknown>)[reduceSymbol] === "function") {
      refuseShared(v);
    }
    if (v instanceof Map) {
      for (const [k, x] of v) {
        if (
          childNeeds(k, serverId, seen, depth) ||
          childNeeds(x, serverId, seen, depth)
        ) {
          return true;
        }
      }
      return false;
    }
    if (v instanceof Set) {
      for (const x of v) if (childNeeds(x, serverId, seen, depth)) return true;
      return false;
    }
    if (isOpaque(v)) return false;
    // A class instance: its own fields are what travels.
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      if (k === REF || childNeeds(rec[k], serverId, seen, depth)) return true;
    }
    return false;
  }
  const rec = v as Record<string, unknown>;
  for (const k in rec) {
    if (k === REF || childNeeds(rec[k], serverId, seen, depth)) return true;
  }
  return false;
}

function childNeeds(
  x: unknown,
  serverId: string,
  seen: Set<object> | null,
  depth: number,
): boolean {
  if (x === null || typeof x !== "object") return false;
  if (seen !== null) {
    if (seen.has(x)) return false;
    seen.add(x);
  }
  return needsEncoding(x, serverId, seen, depth);
}

/** A copy of `v` with its proxies replaced (`copies`: each object met, and its copy). */
function encoded(
  v: unknown,
  serverId: string,
  copies: Map<object, unknown>,
): unknown {
  if (v === null || typeof v !== "object") return v;
  const done = copies.get(v);
  if (done !== undefined) return done;
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    copies.set(v, out);
    for (let i = 0; i < v.length; i++) {
      out.push(encoded(v[i], serverId, copies));
    }
    return out;
  }
  let keys: string[];
  if (isPlain(v)) keys = Object.keys(v);
  else {
    if (v instanceof BaseProxy) {
      const ref = refFor(v, serverId);
      encodedRefs = true;
      copies.set(v, ref);
      return ref;
    }
    if (typeof (v as Record<symbol, unknown>)[reduceSymbol] === "function") {
      refuseShared(v);
    }
    if (v instanceof Map) {
      const out = new Map();
      copies.set(v, out);
      for (const [k, x] of v) {
        out.set(encoded(k, serverId, copies), encoded(x, serverId, copies));
      }
      return out;
    }
    if (v instanceof Set) {
      const out = new Set();
      copies.set(v, out);
      for (const x of v) out.add(encoded(x, serverId, copies));
      return out;
    }
    if (isOpaque(v)) return v;
    keys = Object.keys(v); // a class instance: a plain object of its fields
  }
  const out: Record<string, unknown> = {};
  const rec = v as Record<string, unknown>;
  // The caller's own field named REF_KEY: wrapped, never a reference.
  copies.set(v, Object.hasOwn(rec, REF) ? { [REF]: out } : out);
  for (const k of keys) out[k] = encoded(rec[k], serverId, copies);
  return copies.get(v);
}

/**
 * References inside a reply become proxies on the same channel, and
 * wrapped objects (see {@linkcode encode}) are unwrapped, in place (the
 * reply is this process's own copy). A quick look first (nothing
 * allocated): a reply without either, the usual case, is returned as it
 * is. Otherwise a walk that keeps the objects met (each once: cycles end,
 * and a reference met twice makes one proxy, the server having counted one
 * for it).
 */
function decode(v: unknown, channel: Channel): unknown {
  if (v === null || typeof v !== "object") return v;
  budget = QUICK_OBJECTS;
  try {
    if (!holdsMarkers(v, 0)) return v;
  } catch (e) {
    if (e !== OVER_BUDGET) throw e;
  }
  return decoded(v, channel, new Map());
}

/**
 * Whether `v` holds a reference or a wrapped object (a quick walk: throws
 * {@linkcode OVER_BUDGET} past {@linkcode QUICK_OBJECTS} objects or
 * {@linkcode QUICK_DEPTH} levels).
 */
function holdsMarkers(v: object, depth: number): boolean {
  if (--budget < 0 || depth > QUICK_DEPTH) throw OVER_BUDGET;
  depth++;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x !== null && typeof x === "object" && holdsMarkers(x, depth)) {
        return true;
      }
    }
    return false;
  }
  if (isPlain(v)) {
    const rec = v as Record<string, unknown>;
    for (const k in rec) {
      if (k === REF) return true;
      const x = rec[k];
      if (x !== null && typeof x === "object" && holdsMarkers(x, depth)) {
        return true;
      }
    }
    return false;
  }
  if (v instanceof Map || v instanceof Set) {
    for (const [k, x] of v.entries()) {
      if (k !== null && typeof k === "object" && holdsMarkers(k, depth)) {
        return true;
      }
      if (
        v instanceof Map && x !== null && typeof x === "object" &&
        holdsMarkers(x, depth)
      ) return true;
    }
  }
  return false;
}

/** Decodes `v` in place (`seen`: each object met, and what it became). */
function decoded(
  v: object,
  channel: Channel,
  seen: Map<object, unknown>,
): unknown {
  if (Array.isArray(v)) {
    seen.set(v, v);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x !== null && typeof x === "object") v[i] = child(x, channel, seen);
    }
    return v;
  }
  if (!isPlain(v)) {
    if (v instanceof Map) {
      seen.set(v, v);
      const entries: [unknown, unknown][] = [];
      let rekeyed = false;
      for (const [k, x] of v) {
        const j = k !== null && typeof k === "object"
          ? child(k, channel, seen)
          : k;
        if (j !== k) rekeyed = true;
        entries.push([
          j,
          x !== null && typeof x === "object" ? child(x, channel, seen) : x,
        ]);
      }
      // Keys that were references: rebuilt in place, in the same order.
      if (rekeyed) v.clear();
      for (const [k, x] of entries) v.set(k, x);
      return v;
    }
    if (v instanceof Set) {
      seen.set(v, v);
      let changed = false;
      const items: unknown[] = [];
      for (const x of v) {
        const y = x !== null && typeof x === "object"
          ? child(x, channel, seen)
          : x;
        if (y !== x) changed = true;
        items.push(y);
      }
      if (changed) {
        v.clear();
        for (const y of items) v.add(y);
      }
      return v;
    }
    return v;
  }
  const rec = v as Record<string, unknown>;
  let out = rec;
  if (Object.hasOwn(rec, REF)) {
    const ref = rec[REF];
    if (Array.isArray(ref)) {
      const proxy = makeProxy(channel, ref[0] as number, ref[1] as string);
      seen.set(v, proxy);
      return proxy;
    }
    // A wrapped object of the caller's (see encode): it, not the wrapper.
    if (ref !== null && typeof ref === "object") {
      out = ref as Record<string, unknown>;
    }
  }
  seen.set(v, out);
  for (const k in out) {
    const x = out[k];
    if (x !== null && typeof x === "object") out[k] = child(x, channel, seen);
  }
  return out;
}

function child(
  x: object,
  channel: Channel,
  seen: Map<object, unknown>,
): unknown {
  return seen.has(x) ? seen.get(x) : decoded(x, channel, seen);
}

/**
 * The base of every manager proxy: a handle on one object of a manager's
 * server. Proxies cross into child processes (in `args`, through a Pipe,
 * or as items of a manager Queue, not of the module's `Queue`, which copies
 * bytes) and keep working there while the manager runs; a call after the
 * manager stopped rejects with `EOFError`.
 *
 * Each proxy holds a reference to its object, as in Python: the server
 * deletes an object once no proxy in any process, no registered name and no
 * other object storing it refers to it. A proxy's reference goes when the
 * proxy is garbage-collected, or at once with `dispose()` (or `using` /
 * `await using`, which dispose of it at the end of the block); a process
 * that ends drops all of its references. A disposed proxy rejects calls
 * with a `ReferenceError`.
 *
 * @example
 * ```ts
 * import { BaseProxy, Manager } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const d = await manager.dict();
 * console.log(d instanceof BaseProxy, d.kind); // true dict
 * {
 *   await using scratch = await manager.list([1, 2]);
 *   console.log(await scratch.len()); // 2
 * } // disposed of here: the server deletes the list
 * console.log(await manager.numberOfObjects()); // 1
 * ```
 */
export class BaseProxy implements Disposable, AsyncDisposable {
  /** Internal: proxies come from a {@linkcode Manager}. */
  constructor(channel: Channel, id: number, kind: string) {
    refs.set(this, {
      channel,
      id,
      kind,
      counted: false,
      disposed: false,
      inflight: 0,
      self: null,
    });
  }

  /** The kind of object behind the proxy (`"list"`, `"dict"`, `"Queue"`, ...). */
  get kind(): string {
    return refOf(this).kind;
  }

  /** The object's id in its manager (Python's `_id`), as `debugInfo()` lists it. */
  get id(): number {
    return refOf(this).id;
  }

  /** Whether {@linkcode BaseProxy.dispose} was called (or it was collected). */
  get disposed(): boolean {
    return refOf(this).disposed;
  }

  /**
   * Drops this proxy's reference to the object now, instead of when the
   * proxy is garbage-collected; the server deletes the object when that was
   * the last reference. (Not to be confused with `release()` of a lock
   * proxy, which releases the lock.) Later calls through this proxy reject with a
   * `ReferenceError`. Calls already in progress go on and settle as they
   * would have (the server holds the object for each until it settles: a
   * `get()` parked on an empty queue still takes the next item), and it
   * does not wait for them (as Python's `del proxy`). Resolves once the
   * server has dropped the reference (at once when the manager is gone).
   * Disposing twice does nothing.
   */
  dispose(): Promise<void> {
    const r = refOf(this);
    if (r.disposed) return Promise.resolve();
    r.disposed = true;
    if (!r.counted) return Promise.resolve();
    collected.unregister(this);
    // Sent after the calls in progress (a channel keeps the order of its
    // requests), each of which the server holds the object for.
    return r.channel.call(OP_DECREF, [r.id]).then(() => {}, () => {});
  }

  /** Why the module's `Queue` (which copies bytes) cannot carry a proxy, and what can. */
  get [notQueueable](): string {
    return "a manager proxy is a handle on an object in the manager's server, reached " +
      "through a channel, not data a queue can copy; send it to a child in its " +
      "Process args or through a Pipe, or put it on a manager Queue (manager.Queue())";
  }

  /** Disposes of the proxy at the end of a `using` block (without waiting). */
  [Symbol.dispose](): void {
    void this.dispose();
  }

  /** Disposes of the proxy at the end of an `await using` block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  /**
   * What the proxy is and what it points at, without asking the server:
   * `ListProxy { id: 3, server: "local" }` (`console.log`, `Deno.inspect`).
   */
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options?: unknown) => string,
    options?: unknown,
  ): string {
    return `${proxyName(this)} ${inspect(proxyFields(this), options)}`;
  }

  /** As `Deno.inspect` shows the proxy, without colors: `ListProxy { id: 3, server: "local" }`. */
  toString(): string {
    const fields = Object.entries(proxyFields(this)).map(([k, v]) =>
      `${k}: ${typeof v === "string" ? JSON.stringify(v) : String(v)}`
    );
    return `${proxyName(this)} { ${fields.join(", ")} }`;
  }

  /**
   * Calls `method` on the object in the server (Python's `_callmethod`).
   * A method the object's kind does not have rejects with a `TypeError`
   * naming the methods it has.
   */
  callMethod(method: string, ...args: unknown[]): Promise<unknown> {
    return call(this, method, args, false);
  }

  /**
   * Sends the proxy to another process: it reaches the same object. Until
   * the other process has taken its own reference, the server holds one for
   * the proxy in transit, so the object cannot go in between, even when
   * this process ends first. A proxy that never arrives (a message nobody
   * reads) keeps its object until the manager shuts down.
   */
  [reduceSymbol](): Reduced {
    const r = refOf(this);
    if (r.disposed) throw disposedError(r, "a proxy cannot be sent");
    const token = nextToken();
    if (!r.counted) {
      return { tag: PROXY_TAG, state: [r.channel, r.id, r.kind, token] };
    }
    r.channel.call(OP_LEND, r.id, token).catch(() => {});
    return {
      tag: PROXY_TAG,
      state: [r.channel, r.id, r.kind, token],
      // Not sent after all: take the lent reference back (as a taker
      // would), then drop it.
      undo: () =>
        void r.channel.call(OP_TAKE, r.id, token).then(
          () => r.channel.call(OP_DECREF, [r.id]),
        ).catch(() => {}),
    };
  }
}

/** The name a proxy prints under: its class's. */
function proxyName(p: BaseProxy): string {
  return p instanceof AutoProxyClass ? "AutoProxy" : p.constructor.name;
}

/** What a proxy prints: its kind where its class serves several, its id, its server. */
function proxyFields(p: BaseProxy): Record<string, unknown> {
  const r = refOf(p);
  const out: Record<string, unknown> = {};
  const cls = PROXY_CLASSES[r.kind];
  if (
    cls === undefined || cls !== p.constructor ||
    Object.values(PROXY_CLASSES).filter((c) => c === cls).length > 1
  ) out.kind = r.kind;
  out.id = r.id;
  out.server = r.channel instanceof TcpChannel
    ? `${r.channel.address.hostname}:${r.channel.address.port}`
    : "local";
  if (r.disposed) out.disposed = true;
  return out;
}

async function call(
  proxy: BaseProxy,
  method: string,
  args: unknown[],
  blocking: boolean,
): Promise<unknown> {
  const r = refOf(proxy);
  if (r.disposed) throw disposedError(r, `${method}()`);
  const sent = encode(args, r.channel.serverId);
  // Proxies in the arguments: the server counts them once it has the call.
  const holdsRefs = encodedRefs;
  if (holdsRefs) sending.add(args);
  r.inflight++;
  r.self = proxy;
  try {
    const result = await r.channel.call(
      holdsRefs ? OP_CALL_REFS : OP_CALL,
      r.id,
      method,
      sent,
      blocking,
    );
    return decode(result, r.channel);
  } finally {
    if (holdsRefs) sending.delete(args);
    if (--r.inflight === 0) r.self = null;
  }
}

/** The items of `items` as an array; a `TypeError` naming `what` when it is not iterable. */
function itemsOf<T>(items: Iterable<T>, what: string): T[] {
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
  /** Adds `item` at the end. */
  append(item: T): Promise<void> {
    return call(this, "append", [item], false) as Promise<void>;
  }
  /** Adds every item of `items` at the end. */
  extend(items: Iterable<T>): Promise<void> {
    return call(
      this,
      "extend",
      [itemsOf(items, "ListProxy.extend(items)")],
      false,
    ) as Promise<void>;
  }
  /** The item at `index` (negative: from the end); `RangeError` when out of range. */
  get(index: number): Promise<T> {
    return call(this, "get", [index], false) as Promise<T>;
  }
  /** Replaces the item at `index`. */
  set(index: number, item: T): Promise<void> {
    return call(this, "set", [index, item], false) as Promise<void>;
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
  /** Inserts `item` before `index`. */
  insert(index: number, item: T): Promise<void> {
    return call(this, "insert", [index, item], false) as Promise<void>;
  }
  /** Removes the first item equal to `item`; `RangeError` when there is none. */
  remove(item: T): Promise<void> {
    return call(this, "remove", [item], false) as Promise<void>;
  }
  /** The index of the first item equal to `item`; `RangeError` when there is none. */
  index(item: T, start?: number, end?: number): Promise<number> {
    return call(this, "index", [item, start, end], false) as Promise<number>;
  }
  /** How many items equal `item`. */
  count(item: T): Promise<number> {
    return call(this, "count", [item], false) as Promise<number>;
  }
  /** Whether an item equals `item` (Python's `in`). */
  includes(item: T): Promise<boolean> {
    return call(this, "includes", [item], false) as Promise<boolean>;
  }
  /** The number of items (Python's `len()`). */
  len(): Promise<number> {
    return call(this, "len", [], false) as Promise<number>;
  }
  /** A copy of the items from `start` to `end` (Python's `l[start:end]`). */
  slice(start?: number, end?: number): Promise<T[]> {
    return call(this, "slice", [start, end], false) as Promise<T[]>;
  }
  /** Removes every item. */
  clear(): Promise<void> {
    return call(this, "clear", [], false) as Promise<void>;
  }
  /** Reverses the list in place. */
  reverse(): Promise<void> {
    return call(this, "reverse", [], false) as Promise<void>;
  }
  /** A copy of the whole list (Python's `l[:]`). */
  toArray(): Promise<T[]> {
    return call(this, "toArray", [], false) as Promise<T[]>;
  }
  /** Iterates over a snapshot of the list: `for await (const x of list)`. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    yield* await this.toArray();
  }
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
  /** Sets `key` to `value`. */
  set(key: K, value: V): Promise<void> {
    return call(this, "set", [key, value], false) as Promise<void>;
  }
  /** Whether `key` is in the dict (Python's `in`). */
  has(key: K): Promise<boolean> {
    return call(this, "has", [key], false) as Promise<boolean>;
  }
  /** Removes `key`; true when it was there. */
  delete(key: K): Promise<boolean> {
    return call(this, "delete", [key], false) as Promise<boolean>;
  }
  /** Removes `key` and returns its value; without `dflt`, a missing key is a `RangeError`. */
  pop(key: K, ...dflt: [V?]): Promise<V> {
    return call(this, "pop", [key, ...dflt.slice(0, 1)], false) as Promise<V>;
  }
  /** The value of `key`, first setting it to `dflt` when missing. */
  setdefault(key: K, dflt: V): Promise<V> {
    return call(this, "setdefault", [key, dflt], false) as Promise<V>;
  }
  /** The keys, in insertion order. */
  keys(): Promise<K[]> {
    return call(this, "keys", [], false) as Promise<K[]>;
  }
  /** The values, in insertion order. */
  values(): Promise<V[]> {
    return call(this, "values", [], false) as Promise<V[]>;
  }
  /** The `[key, value]` pairs, in insertion order. */
  items(): Promise<[K, V][]> {
    return call(this, "items", [], false) as Promise<[K, V][]>;
  }
  /** The number of keys (Python's `len()`). */
  len(): Promise<number> {
    return call(this, "len", [], false) as Promise<number>;
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
  /** Removes every key. */
  clear(): Promise<void> {
    return call(this, "clear", [], false) as Promise<void>;
  }
  /** A copy as a plain object (keys turned to strings). */
  toObject(): Promise<Record<string, V>> {
    return call(this, "toObject", [], false) as Promise<Record<string, V>>;
  }
  /** A copy as a Map (keys as they are). */
  toMap(): Promise<Map<K, V>> {
    return call(this, "toMap", [], false) as Promise<Map<K, V>>;
  }
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
  /** Sets the attribute `name`. */
  set(name: string, value: unknown): Promise<void> {
    return call(this, "set", [name, value], false) as Promise<void>;
  }
  /** Whether the attribute `name` is set. */
  has(name: string): Promise<boolean> {
    return call(this, "has", [name], false) as Promise<boolean>;
  }
  /** Removes the attribute `name`; true when it was set. */
  delete(name: string): Promise<boolean> {
    return call(this, "delete", [name], false) as Promise<boolean>;
  }
  /** A copy of all attributes as a plain object. */
  toObject(): Promise<Record<string, unknown>> {
    return call(this, "toObject", [], false) as Promise<
      Record<string, unknown>
    >;
  }
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
  /** The value. */
  get(): Promise<T> {
    return call(this, "get", [], false) as Promise<T>;
  }
  /** Replaces the value. */
  set(value: T): Promise<void> {
    return call(this, "set", [value], false) as Promise<void>;
  }
  /** The typecode it was made with. */
  typecode(): Promise<string> {
    return call(this, "typecode", [], false) as Promise<string>;
  }
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
  /** Puts `item`, waiting while the queue is full (unless `block` is false). */
  put(item: T, options?: ProxyQueueWaitOptions): Promise<void> {
    return call(this, "put", [item, options], true) as Promise<void>;
  }
  /** Puts `item` or rejects with `Full` at once. */
  putNowait(item: T): Promise<void> {
    return call(this, "putNowait", [item], false) as Promise<void>;
  }
  /** Takes the next item, waiting while the queue is empty (unless `block` is false). */
  get(options?: ProxyQueueWaitOptions): Promise<T> {
    return call(this, "get", [options], true) as Promise<T>;
  }
  /** Takes the next item or rejects with `Empty` at once. */
  getNowait(): Promise<T> {
    return call(this, "getNowait", [], false) as Promise<T>;
  }
  /** The number of items. */
  qsize(): Promise<number> {
    return call(this, "qsize", [], false) as Promise<number>;
  }
  /** Whether the queue is empty. */
  empty(): Promise<boolean> {
    return call(this, "empty", [], false) as Promise<boolean>;
  }
  /** Whether the queue is full. */
  full(): Promise<boolean> {
    return call(this, "full", [], false) as Promise<boolean>;
  }
  /** Marks one item taken earlier as processed (for `join()`). */
  taskDone(): Promise<void> {
    return call(this, "taskDone", [], false) as Promise<void>;
  }
  /** Waits until every item put was marked done with `taskDone()`. */
  join(): Promise<void> {
    return call(this, "join", [], true) as Promise<void>;
  }
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
  /** Takes the lock; false when `blocking` is false or `timeout` ran out. */
  acquire(options?: ProxyAcquireOptions): Promise<boolean> {
    return call(this, "acquire", [options], true) as Promise<boolean>;
  }
  /** Releases the lock; releasing an unlocked lock rejects with `ProcessError`. */
  release(): Promise<void> {
    return call(this, "release", [], false) as Promise<void>;
  }
  /** Whether the lock is taken (Semaphores: use `getValue()`). */
  locked(): Promise<boolean> {
    return call(this, "locked", [], false) as Promise<boolean>;
  }
  /** A Semaphore's current value. */
  getValue(): Promise<number> {
    return call(this, "getValue", [], false) as Promise<number>;
  }
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
  /** Sets the flag and wakes every waiter. */
  set(): Promise<void> {
    return call(this, "set", [], false) as Promise<void>;
  }
  /** Clears the flag. */
  clear(): Promise<void> {
    return call(this, "clear", [], false) as Promise<void>;
  }
  /** Whether the flag is set. */
  isSet(): Promise<boolean> {
    return call(this, "isSet", [], false) as Promise<boolean>;
  }
  /** Waits until the flag is set (true) or `timeoutMs` passed (false). */
  wait(timeoutMs?: number): Promise<boolean> {
    return call(this, "wait", [timeoutMs], true) as Promise<boolean>;
  }
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
  /** Takes the condition's lock; false when `blocking` is false or `timeout` ran out. */
  acquire(options?: ProxyAcquireOptions): Promise<boolean> {
    return call(this, "acquire", [options], true) as Promise<boolean>;
  }
  /** Releases the condition's lock. */
  release(): Promise<void> {
    return call(this, "release", [], false) as Promise<void>;
  }
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
   * Releases the lock, waits for a notify (or `timeoutMs`), then holds the
   * lock again: true when notified, false when the time ran out.
   */
  wait(timeoutMs?: number): Promise<boolean> {
    return call(this, "wait", [timeoutMs], true) as Promise<boolean>;
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
  /** Wakes every process waiting now; needs the lock. */
  notifyAll(): Promise<void> {
    return call(this, "notifyAll", [], false) as Promise<void>;
  }
}

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
  /**
   * Waits until `parties` waits are pending; resolves this one's arrival
   * index. Rejects with `BrokenBarrierError` when the barrier is or gets
   * broken, or `timeoutMs` (default: the barrier's `timeout`) runs out.
   */
  wait(timeoutMs?: number): Promise<number> {
    return call(this, "wait", [timeoutMs], true) as Promise<number>;
  }
  /** Empties the barrier and mends it; pending waits reject with `BrokenBarrierError`. */
  reset(): Promise<void> {
    return call(this, "reset", [], false) as Promise<void>;
  }
  /** Breaks the barrier: pending and later waits reject until `reset()`. */
  abort(): Promise<void> {
    return call(this, "abort", [], false) as Promise<void>;
  }
  /** How many waits release the barrier. */
  parties(): Promise<number> {
    return call(this, "parties", [], false) as Promise<number>;
  }
  /** How many waits are pending now (Python's `n_waiting`). */
  nWaiting(): Promise<number> {
    return call(this, "nWaiting", [], false) as Promise<number>;
  }
  /** Whether the barrier is broken. */
  broken(): Promise<boolean> {
    return call(this, "broken", [], false) as Promise<boolean>;
  }
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
  /** The element at `index` (negative: from the end). */
  get(index: number): Promise<T> {
    return call(this, "get", [index], false) as Promise<T>;
  }
  /** Sets the element at `index` (`q`/`Q` take integral numbers too). */
  set(
    index: number,
    value: T | (T extends bigint ? number : never),
  ): Promise<void> {
    return call(this, "set", [index, value], false) as Promise<void>;
  }
  /** The number of elements (Python's `len()`). */
  len(): Promise<number> {
    return call(this, "len", [], false) as Promise<number>;
  }
  /** A copy of every element, as a plain array (Python's `arr[:]`). */
  toArray(): Promise<T[]> {
    return call(this, "toArray", [], false) as Promise<T[]>;
  }
  /** A copy of the elements from `start` to `end` (Python's `arr[start:end]`). */
  slice(start?: number, end?: number): Promise<T[]> {
    return call(this, "slice", [start, end], false) as Promise<T[]>;
  }
  /** The typecode it was made with. */
  typecode(): Promise<string> {
    return call(this, "typecode", [], false) as Promise<string>;
  }
}

/**
 * The methods of a proxy of a user's class `T` (`manager.create(Cls)`):
 * each public method of `T`, taking the same arguments and resolving what
 * it returns (awaited, when it is async), computed in the manager's server.
 * Names of {@linkcode BaseProxy}'s own members (`id`, `kind`, `dispose`,
 * ...), `then`, and names beginning with `_` are left out (reach them with
 * `callMethod(name, ...args)`).
 *
 * @example
 * ```ts
 * import type { ProxyMethods } from "@mp/multiprocessing";
 * class Counter {
 *   n = 0;
 *   add(k: number): number {
 *     return this.n += k;
 *   }
 * }
 * const add: ProxyMethods<Counter>["add"] = (k) => Promise.resolve(k);
 * console.log(await add(2)); // 2
 * ```
 */
export type ProxyMethods<T> = {
  [
    K in keyof T as K extends keyof BaseProxy | "then" | `_${string}` ? never
      : K extends string
        ? T[K] extends (...args: never[]) => unknown ? K : never
      : never
  ]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/**
 * A proxy of an object of a user's class held by a manager
 * (`manager.create(Maths)`, `client.create("Maths")`, Python's AutoProxy):
 * the class's public methods, each resolving what the method returns in
 * the manager's server. It crosses into children and is counted, disposed
 * of and collected as every {@linkcode BaseProxy}.
 *
 * @example
 * ```ts ignore
 * import { type AutoProxy, Manager } from "@mp/multiprocessing";
 * export class Maths {
 *   add(a: number, b: number): number {
 *     return a + b;
 *   }
 * }
 * await using manager = await Manager.start();
 * const maths: AutoProxy<Maths> = await manager.create(Maths);
 * console.log(await maths.add(4, 3)); // 7
 * ```
 */
export type AutoProxy<T = unknown> = BaseProxy & ProxyMethods<T>;

/**
 * The proxies of users' classes: a property a proxy does not have is a
 * method of the object (the server refuses, by name, one the class lacks),
 * so a proxy rebuilt in a child, or met inside a value, needs no list of them.
 */
class AutoProxyClass extends BaseProxy {}

/** Not methods: `await` and JSON look these up on any object. */
const NOT_METHODS = new Set(["then", "toJSON"]);

Object.setPrototypeOf(
  AutoProxyClass.prototype,
  // The target's prototype is BaseProxy's: instanceof BaseProxy holds.
  new Proxy(Object.create(BaseProxy.prototype), {
    get(target, prop, receiver) {
      if (typeof prop === "symbol" || prop in target || NOT_METHODS.has(prop)) {
        return Reflect.get(target, prop, receiver);
      }
      return (...args: unknown[]) =>
        call(receiver as BaseProxy, prop, args, false);
    },
  }),
);

const PROXY_CLASSES: Record<
  string,
  new (c: Channel, id: number, kind: string) => BaseProxy
> = {
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
};

/** A proxy for a reference the server counted for `channel`. */
function makeProxy(channel: Channel, id: number, kind: string): BaseProxy {
  // Other kinds are users' classes (see Manager.create).
  const cls = PROXY_CLASSES[kind] ?? AutoProxyClass;
  const proxy = new cls(channel, id, kind);
  const r = refOf(proxy);
  r.counted = true;
  collected.register(proxy, r, proxy);
  return proxy;
}

registerRebuilder(PROXY_TAG, (state) => {
  const [channel, id, kind, token] = state as [
    Channel,
    number,
    string,
    string | undefined,
  ];
  // This process takes its own reference (the lent one goes): sent before
  // any call through the proxy, so the server counts it first.
  channel.call(OP_TAKE, id, token).catch(() => {});
  return makeProxy(channel, id, kind);
});

// ------------------------------------------------------------------ manager

/**
 * Options of {@linkcode Manager.start}.
 *
 * @example
 * ```ts
 * import { Manager, type ManagerOptions } from "@mp/multiprocessing";
 * const options: ManagerOptions = { address: { hostname: "127.0.0.1", port: 0 }, authkey: "a-secret-of-16-bytes+" };
 * if (import.meta.main) {
 *   await using server = await Manager.start(options);
 *   console.log(server.address?.port); // the port picked
 * }
 * ```
 */
export interface ManagerOptions {
  /**
   * Listen on TCP too, so other programs can `Manager.connect()`: e.g.
   * `{ hostname: "127.0.0.1", port: 0 }` (port 0 picks a free port; read it
   * from `manager.address`). Needs `authkey`.
   */
  address?: { hostname?: string; port: number };
  /** The secret TCP clients must prove they know (string or bytes). */
  authkey?: string | Uint8Array;
  /** The server process's name (default `SyncManager-N`). */
  name?: string;
  /** Longest TCP message accepted, in bytes (default 64 MiB). */
  maxFrameBytes?: number;
  /**
   * How long a TCP client may pause in the middle of a message before the
   * server drops its connection (ms, default 30,000): a message that stops
   * arriving would hold its bytes for good.
   */
  frameTimeout?: number;
}

/**
 * One object of a manager's server, as {@linkcode Manager.debugInfo} lists it.
 *
 * @example
 * ```ts
 * import { Manager, type ManagerObjectInfo } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const l = await manager.list();
 * const [info]: ManagerObjectInfo[] = await manager.debugInfo();
 * console.log(info.id === l.id, info.kind, info.refs); // true list 1
 * ```
 */
export interface ManagerObjectInfo {
  /** The object's id (a proxy's `id`). */
  id: number;
  /** Its kind (`"list"`, `"dict"`, ...). */
  kind: string;
  /** How many references hold it (it is deleted when none is left). */
  refs: number;
}

/**
 * Options of {@linkcode Manager.connect}.
 *
 * @example
 * ```ts
 * import { Manager, type ConnectOptions } from "@mp/multiprocessing";
 * if (import.meta.main) {
 *   await using server = await Manager.start({ address: { port: 0 }, authkey: "a-secret-of-16-bytes+" });
 *   const options: ConnectOptions = { address: server.address!, authkey: "a-secret-of-16-bytes+" };
 *   await using client = await Manager.connect(options);
 *   console.log(client.address?.port === server.address?.port); // true
 * }
 * ```
 */
export interface ConnectOptions {
  /** The manager's address (`manager.address` of the serving program). */
  address: { hostname?: string; port: number };
  /** The manager's secret. */
  authkey: string | Uint8Array;
  /** Longest TCP message accepted, in bytes (default 64 MiB). */
  maxFrameBytes?: number;
  /**
   * How long connecting and authenticating may take, in ms (default
   * 10 000): past it, `TimeoutError`.
   */
  timeoutMs?: number;
}

function checkAddress(a: unknown, what: string): Address {
  const o = a as { hostname?: unknown; port?: unknown } | null;
  if (
    o === null || typeof o !== "object" || typeof o.port !== "number" ||
    !Number.isInteger(o.port) || o.port < 0 || o.port > 65535 ||
    (o.hostname !== undefined && typeof o.hostname !== "string")
  ) {
    throw new TypeError(
      `${what} must be { hostname?: string, port: 0..65535 }, got ${
        JSON.stringify(a)
      }; e.g. { hostname: "127.0.0.1", port: 50000 }`,
    );
  }
  return { hostname: (o.hostname as string) || "127.0.0.1", port: o.port };
}

function checkFrameTimeout(ms: unknown): number {
  if (ms === undefined) return 30_000;
  if (typeof ms !== "number" || !(ms > 0) || ms > 2 ** 31 - 1) {
    throw new RangeError(
      `frameTimeout must be a number of ms in (0, 2 ** 31 - 1], got ${
        String(ms)
      }; e.g. frameTimeout: 30_000`,
    );
  }
  return ms;
}

function checkFrame(n: unknown): number {
  if (n === undefined) return MAX_FRAME;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1024) {
    throw new RangeError(
      `maxFrameBytes must be an integer of at least 1024, got ${String(n)}`,
    );
  }
  return n;
}

let managerCounter = 0;

/**
 * Options of {@linkcode Manager.register} (the static one).
 *
 * @example
 * ```ts ignore
 * import { Manager, type RegisterOptions } from "@mp/multiprocessing";
 * import { Maths } from "./maths.ts";
 * const options: RegisterOptions = { module: new URL("./maths.ts", import.meta.url) };
 * Manager.register("Maths", Maths, options);
 * ```
 */
export interface RegisterOptions {
  /**
   * The module that exports the class (a URL, `import.meta.url`, or a
   * path); default: the module calling `register`.
   */
  module?: string | URL;
}

/**
 * A class a manager can serve (`manager.create(Cls)`,
 * `Manager.register(typeid, Cls)`): anything made with `new`.
 *
 * @example
 * ```ts
 * import type { ManagedClass } from "@mp/multiprocessing";
 * class Maths {
 *   add(a: number, b: number): number {
 *     return a + b;
 *   }
 * }
 * const served: ManagedClass = Maths;
 * console.log(served.name); // Maths
 * ```
 */
export type ManagedClass = new (...args: never[]) => object;

/** Users' classes registered with `Manager.register`, by typeid. */
const registry = new Map<string, { cls: ManagedClass; ref: TargetRef }>();
/** The module each class was last found in (so a create need not look again). */
const verified = new WeakMap<ManagedClass, string>();

/** The reference a class is served by: as registered, else its export from `module`. */
function classRef(cls: unknown, what: string): TargetRef {
  if (!isClass(cls)) {
    throw new TypeError(
      `${what}: expected a class (made with \`new\`), got ${
        cls === null
          ? "null"
          : typeof cls === "function"
          ? `the function '${
            cls.name || "anonymous"
          }' (an arrow function or method, which \`new\` cannot make)`
          : typeof cls
      }; pass an exported class: \`export class Maths { ... }\``,
    );
  }
  for (const r of registry.values()) if (r.cls === cls) return r.ref;
  return classRefOf(cls, moduleUrl(undefined));
}

/** The typeid `cls` was registered by, when it was. */
function typeidOf(cls: unknown): string | undefined {
  for (const [typeid, r] of registry) if (r.cls === cls) return typeid;
  return undefined;
}

/**
 * A manager (Python's `multiprocessing.Manager()` / `SyncManager`): a server
 * process holding shared objects, and the factories that create them and
 * return proxies. `await using manager = await Manager.start()` shuts the
 * server down at the end of the block.
 *
 * Objects are reference-counted, as in Python: one is deleted when no proxy
 * of it is left in any process (disposed of with `dispose()` / `using`, or
 * garbage-collected, or its process ended), no name is registered for it
 * and no other object of the manager stores it; everything goes when the
 * manager shuts down. Over TCP (`address` + `authkey`), `register(name,
 * proxy)` names an object (the name keeps it alive) and another program's
 * `Manager.connect()` gets it with `get(name)`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 *
 * await using server = await Manager.start({
 *   address: { hostname: "127.0.0.1", port: 0 },
 *   authkey: "a-secret-of-16-bytes+",
 * });
 * await server.register("config", await server.dict({ debug: true }));
 *
 * await using client = await Manager.connect({
 *   address: server.address!,
 *   authkey: "a-secret-of-16-bytes+",
 * });
 * const config = await client.get<import("@mp/multiprocessing").DictProxy>("config");
 * console.log(await config.get("debug")); // true
 * ```
 */
export class Manager implements AsyncDisposable {
  #channel: Channel;
  #process: Process | null;
  #address: Address | undefined;
  #closed = false;
  /** Called when shutdown() begins (a serveForever() waiting). */
  #onShutdown = new Set<() => void>();
  /** The typeids its server was started with (a manager this process started). */
  #types: ReadonlySet<string> | undefined;

  private constructor(
    channel: Channel,
    process: Process | null,
    address: Address | undefined,
  ) {
    this.#channel = channel;
    this.#process = process;
    this.#address = address;
  }

  /**
   * Starts a manager's server process and returns the manager once it
   * serves (and, with `address`, listens).
   */
  static async start(options: ManagerOptions = {}): Promise<Manager> {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `Manager.start(options): options must be an object, got ${typeof options}`,
      );
    }
    checkKeys(
      options,
      ["address", "authkey", "name", "maxFrameBytes", "frameTimeout"],
      "Manager.start option",
    );
    // Before the registered classes are resolved: in a server importing this
    // very module, resolving them would wait on its own import (a deadlock).
    checkNotImporting("Manager.start()");
    const address = options.address === undefined
      ? undefined
      : checkAddress(options.address, "address");
    let authkey: Uint8Array | undefined;
    if (options.authkey !== undefined) authkey = authkeyBytes(options.authkey);
    if (address && !authkey) {
      throw new TypeError(
        'a manager that listens on TCP needs an authkey: pass authkey: "<secret>" ' +
          "(the connecting programs pass the same)",
      );
    }
    // Registered classes are checked here first: where the server will
    // look, they must be the very classes registered.
    const types: Record<string, TargetRef> = {};
    for (const [typeid, { cls, ref }] of registry) {
      await resolveClass(ref, cls);
      verified.set(cls, ref.module);
      types[typeid] = ref;
    }
    const config: ServerConfig = {
      serverId: crypto.randomUUID(),
      address,
      authkey,
      maxFrame: checkFrame(options.maxFrameBytes),
      authTimeout: 10_000,
      types,
      frameTimeout: checkFrameTimeout(options.frameTimeout),
    };
    const { BootChannel, managerServer } = await import(
      "./_manager_server.ts"
    );
    const { port1, port2 } = new MessageChannel();
    const sab = new SharedArrayBuffer(CHANNEL_BYTES);
    const proc = new Process({
      target: managerServer,
      args: [config, new BootChannel(port2, sab)],
      name: options.name ?? `SyncManager-${++managerCounter}`,
      daemon: true,
      module: SERVER_MODULE,
    });
    // The server is a daemon (it never keeps the program alive), so this
    // timer is what keeps the program waiting while it starts.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `the manager's server did not start within ${START_TIMEOUT_MS} ms`,
            ),
          ),
        START_TIMEOUT_MS,
      );
    });
    let channel: LocalChannel | undefined;
    try {
      await Promise.race([proc.start(), timeout]);
      channel = new LocalChannel(port1, sab, proc.pid!, config.serverId);
      const ready = await Promise.race([channel.expectStart(), timeout]);
      adoptChannel(channel);
      const manager = new Manager(channel, proc, ready.address);
      manager.#types = new Set(Object.keys(types));
      return manager;
    } catch (e) {
      if (channel) channel.close("the manager failed to start");
      else port1.close();
      if (proc.exitCode === null) proc.terminate();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Connects to a manager that listens on TCP (another program's, or this
   * one's), authenticating both ways with `authkey`. A wrong key rejects
   * with `AuthenticationError`; an address where nothing listens with
   * `EOFError`. Disposing the client closes the connection (the server goes
   * on).
   */
  static async connect(options: ConnectOptions): Promise<Manager> {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        "Manager.connect(options): pass { address, authkey }",
      );
    }
    checkKeys(
      options,
      ["address", "authkey", "maxFrameBytes", "timeoutMs"],
      "Manager.connect option",
    );
    const address = checkAddress(options.address, "address");
    const key = authkeyBytes(options.authkey);
    // Longer than a timer holds: as long as one does.
    const timeout = checkTimeout(options.timeoutMs ?? 10_000, "timeoutMs") ??
      MAX_TIMER_MS;
    if (timeout === 0) {
      throw new RangeError("timeoutMs must be more than 0 ms, got 0");
    }
    const channel = new TcpChannel(
      address,
      key,
      "",
      checkFrame(options.maxFrameBytes),
      timeout,
    );
    await channel.connect();
    return new Manager(channel, null, address);
  }

  /**
   * Where the manager listens (the bound port, when 0 was asked for), or
   * the address a client connected to; undefined for a local-only manager.
   */
  get address(): Address | undefined {
    return this.#address ? { ...this.#address } : undefined;
  }

  #check(): Channel {
    if (this.#closed) {
      throw new EOFError(
        "the manager was shut down: its objects are gone; start a new one",
      );
    }
    return this.#channel;
  }

  async #create<P extends BaseProxy>(
    kind: string | [string, string],
    args: unknown[],
  ): Promise<P> {
    const channel = this.#check();
    const sent = encode(args, channel.serverId);
    const holdsRefs = encodedRefs;
    if (holdsRefs) sending.add(args);
    try {
      const [id, k] = await channel.call(
        OP_CREATE,
        kind,
        sent,
        holdsRefs,
      ) as [number, string];
      return makeProxy(channel, id, k) as P;
    } finally {
      if (holdsRefs) sending.delete(args);
    }
  }

  /** A shared list, with `items` at first (Python's `manager.list()`). */
  list<T = unknown>(items: Iterable<T> = []): Promise<ListProxy<T>> {
    return this.#create("list", [itemsOf(items, "manager.list(items)")]);
  }

  /** A shared dict, from an object, a Map or `[key, value]` pairs. */
  dict<K = string, V = unknown>(
    init?: Record<string, V> | Map<K, V> | Iterable<[K, V]>,
  ): Promise<DictProxy<K, V>> {
    const i = init === undefined || init instanceof Map ||
        Array.isArray(init) || !(Symbol.iterator in Object(init))
      ? init
      : [...(init as Iterable<[K, V]>)];
    return this.#create("dict", [i]);
  }

  /** A shared Namespace, with `attrs` set at first. */
  Namespace(attrs?: Record<string, unknown>): Promise<NamespaceProxy> {
    return this.#create("Namespace", [attrs]);
  }

  /** A shared Value (the typecode is checked, then recorded). */
  Value<T = number>(typecode: string, value: T): Promise<ValueProxy<T>> {
    if (!TYPECODES.includes(typecode)) {
      throw new TypeError(
        `unknown typecode ${JSON.stringify(typecode)}: use one of ${
          TYPECODES.join(" ")
        }`,
      );
    }
    return this.#create("Value", [typecode, value]);
  }

  /** A shared queue (`maxsize` 0 = unbounded), Python's `manager.Queue()`. */
  Queue<T = unknown>(
    options: { maxsize?: number } | number = {},
  ): Promise<QueueProxy<T>> {
    return this.#create("Queue", [options]);
  }

  /** Same as {@linkcode Manager.Queue} (it has `taskDone()` and `join()`). */
  JoinableQueue<T = unknown>(
    options: { maxsize?: number } | number = {},
  ): Promise<QueueProxy<T>> {
    return this.#create("Queue", [options]);
  }

  /** A shared Lock. */
  Lock(): Promise<LockProxy> {
    return this.#create("Lock", []);
  }

  /**
   * A shared re-entrant lock, owned per process: async tasks of one process
   * share it (a second task's acquire re-enters instead of waiting); use
   * {@linkcode Manager.Lock} to keep tasks of one process apart.
   */
  RLock(): Promise<LockProxy> {
    return this.#create("RLock", []);
  }

  /** A shared Semaphore starting at `value`. */
  Semaphore(value = 1): Promise<LockProxy> {
    return this.#create("Semaphore", [value]);
  }

  /** A shared BoundedSemaphore: releasing it past `value` throws. */
  BoundedSemaphore(value = 1): Promise<LockProxy> {
    return this.#create("BoundedSemaphore", [value]);
  }

  /** A shared Event. */
  Event(): Promise<EventProxy> {
    return this.#create("Event", []);
  }

  /**
   * A shared array of `typecode` (Python's `manager.Array()`): `size` zeros,
   * or the given elements. Typecodes: b B h H i I l L q Q f d (q/Q hold
   * bigints: `manager.Array<bigint>("q", 4)`) and u (one-character strings:
   * `manager.Array<string>("u", "abc")`); an unknown one throws a
   * `TypeError` listing them.
   */
  Array<T = number>(
    typecode: string,
    sequenceOrSize:
      | number
      | string
      | Iterable<NoInfer<T> | (T extends bigint ? number : never)>
      | ArrayLike<NoInfer<T> | (T extends bigint ? number : never)>,
  ): Promise<ArrayProxy<T>> {
    checkArrayTypecode(typecode);
    const s = sequenceOrSize as unknown;
    // Iterables and array-likes travel as arrays; anything else as it is,
    // for the server to refuse by name.
    const init = s !== null && typeof s === "object" && !Array.isArray(s) &&
        !ArrayBuffer.isView(s) &&
        (Symbol.iterator in s ||
          typeof (s as { length?: unknown }).length === "number")
      ? Array.from(s as ArrayLike<unknown>)
      : s;
    return this.#create("Array", [typecode, init]);
  }

  /**
   * A shared condition variable (Python's `manager.Condition(lock)`), over
   * `lock` (a `manager.Lock()` or `manager.RLock()` of this manager) or, by
   * default, a new RLock. Several async tasks of one process using it need
   * a Lock: `manager.Condition(await manager.Lock())` (see
   * {@linkcode ConditionProxy}).
   */
  Condition(lock?: LockProxy): Promise<ConditionProxy> {
    if (lock !== undefined) {
      if (
        !(lock instanceof LockProxy) ||
        (lock.kind !== "Lock" && lock.kind !== "RLock")
      ) {
        throw new TypeError(
          `Condition(lock): lock must be a manager Lock or RLock proxy (await manager.Lock()), got ${
            lock instanceof BaseProxy ? `a ${lock.kind} proxy` : typeof lock
          }`,
        );
      }
      if (refOf(lock).channel.serverId !== this.#channel.serverId) {
        throw new TypeError(
          "Condition(lock): the lock belongs to another manager",
        );
      }
    }
    return this.#create("Condition", lock === undefined ? [] : [lock]);
  }

  /**
   * A shared barrier for `parties` waits (Python's `manager.Barrier()`);
   * `timeout` is the default timeout of `wait()` in milliseconds.
   */
  Barrier(
    parties: number,
    options: ProxyBarrierOptions = {},
  ): Promise<BarrierProxy> {
    if (
      options !== null && typeof options === "object" &&
      (options as { action?: unknown }).action !== undefined
    ) {
      throw new TypeError(
        "a manager Barrier takes no action: a function cannot reach the server; " +
          "run it yourself in the process whose wait() resolved parties - 1",
      );
    }
    return this.#create("Barrier", [parties, options]);
  }

  /**
   * Registers a class of yours as `typeid` (Python's
   * `BaseManager.register(typeid, callable)`): managers started after it
   * serve it, so TCP clients can `create(typeid, ...args)` objects of it
   * (as in Python, a manager started before it does not: its
   * `create(typeid)` rejects saying so).
   * The manager's server imports the class's module and looks the class up
   * by its exported name (as a child finds a Process target): by default
   * the module calling `register`; pass `module` for a class exported from
   * another. Registering a typeid again replaces it (for managers started
   * later).
   *
   * @throws {TypeError} when `typeid` is empty or a built-in kind's name, or `cls` is not a class.
   * @example
   * ```ts ignore
   * import { Manager } from "@mp/multiprocessing";
   * export class Maths {
   *   add(a: number, b: number): number {
   *     return a + b;
   *   }
   * }
   * Manager.register("Maths", Maths);
   * // The server imports this module: start-up code goes under the guard.
   * if (import.meta.main) {
   *   await using server = await Manager.start({
   *     address: { port: 0 },
   *     authkey: "a-secret-of-16-bytes+",
   *   });
   *   const maths = await server.create<Maths>("Maths");
   *   console.log(await maths.add(4, 3)); // 7
   * }
   * ```
   */
  static register(
    typeid: string,
    cls: ManagedClass,
    options: RegisterOptions = {},
  ): void {
    if (
      typeof typeid !== "string" ||
      !/^[\p{L}_$][\p{L}\p{N}_$.-]*$/u.test(typeid)
    ) {
      throw new TypeError(
        `Manager.register(typeid, Class): typeid must be a name like "Maths", got ${
          JSON.stringify(typeid)
        }`,
      );
    }
    if (Object.hasOwn(PROXY_CLASSES, typeid)) {
      throw new TypeError(
        `Manager.register("${typeid}", ...): '${typeid}' is a built-in kind (manager.${typeid}()); pick another typeid`,
      );
    }
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `Manager.register("${typeid}", Class, options): options must be an object like { module: import.meta.url }`,
      );
    }
    if (!isClass(cls)) classRef(cls, `Manager.register("${typeid}", Class)`);
    const ref = classRefOf(cls, moduleUrl(options.module));
    registry.set(typeid, { cls, ref });
  }

  /**
   * Creates an object of a class of yours in the manager's server, and
   * returns a proxy whose methods are the class's methods, resolving what
   * they return there (Python's customized managers): `await maths.add(4,
   * 3)`. `cls` must be exported from the module calling `create` (the
   * server imports it and looks the class up by name, as a child finds a
   * Process target), or registered with {@linkcode Manager.register}
   * (which may name another module). A TCP client (`Manager.connect()`)
   * names a typeid the serving program registered: `client.create("Maths")`.
   * The object lives as long as proxies of it do, as every manager object.
   *
   * @throws {ClassNotExportedError} when `cls` is not exported where the server will look.
   * @throws {TypeError} when `cls` is not a class, or `typeid` is not registered on the server.
   * @example
   * ```ts ignore
   * import { Manager } from "@mp/multiprocessing";
   * export class Maths {
   *   add(a: number, b: number): number {
   *     return a + b;
   *   }
   * }
   * if (import.meta.main) { // the server imports this module to find Maths
   *   await using manager = await Manager.start();
   *   const maths = await manager.create(Maths);
   *   console.log(await maths.add(4, 3)); // 7
   * }
   * ```
   */
  create<C extends ManagedClass>(
    cls: C,
    ...args: ConstructorParameters<C>
  ): Promise<AutoProxy<InstanceType<C>>>;
  /** Creates an object of the class registered as `typeid` on the manager's server. */
  create<T = unknown>(
    typeid: string,
    ...args: unknown[]
  ): Promise<AutoProxy<T>>;
  create(cls: ManagedClass | string, ...args: unknown[]): Promise<AutoProxy> {
    if (typeof cls === "string") {
      if (cls === "") {
        throw new TypeError(
          'create(typeid, ...args): typeid must be a registered name like "Maths", got ""',
        );
      }
      if (this.#types && !this.#types.has(cls) && registry.has(cls)) {
        // As in Python, a server serves the typeids registered before it started.
        return Promise.reject(
          new TypeError(
            `create("${cls}"): '${cls}' was registered after this manager started, so its server ` +
              `does not serve it; call Manager.register("${cls}", ...) before Manager.start()`,
          ),
        );
      }
      return this.#create(cls, args);
    }
    // Before any await: the calling module is found on the stack.
    const ref = classRef(cls, "create(Class, ...args)");
    if (this.#process === null) {
      // A TCP client names a typeid (the server imports nothing for it).
      const typeid = typeidOf(cls);
      if (typeid === undefined) {
        return Promise.reject(
          new TypeError(
            `create(${cls.name}): a TCP client creates a class by the typeid the serving program registered: ` +
              `client.create("${cls.name}", ...args) (or Manager.register("${cls.name}", ${cls.name}) here too)`,
          ),
        );
      }
      return this.#create(typeid, args);
    }
    return this.#createClass(cls, ref, args);
  }

  async #createClass(
    cls: ManagedClass,
    ref: TargetRef,
    args: unknown[],
  ): Promise<AutoProxy> {
    if (verified.get(cls) !== ref.module) {
      await resolveClass(ref, cls);
      verified.set(cls, ref.module);
    }
    return await this.#create([ref.module, ref.name], args);
  }

  /**
   * Serves until the program is asked to stop (Python's
   * `server.serve_forever()`), then shuts the manager down and resolves:
   * on SIGINT (Ctrl-C) or SIGTERM, when `signal` aborts, when `shutdown()`
   * is called, or when the server's process ends. For a program whose job
   * is to serve TCP clients: `Manager.start({ address, authkey })`, then
   * `await manager.serveForever()`.
   *
   * @throws {TypeError} for a manager that does not listen on TCP, or a client from `connect()`.
   * @example
   * ```ts ignore
   * import { Manager } from "@mp/multiprocessing";
   * const server = await Manager.start({
   *   address: { port: 50000 },
   *   authkey: "a-secret-of-16-bytes+",
   * });
   * console.log("serving on", server.address);
   * await server.serveForever(); // until Ctrl-C
   * ```
   */
  async serveForever(options: { signal?: AbortSignal } = {}): Promise<void> {
    const proc = this.#process;
    if (proc === null) {
      throw new TypeError(
        "serveForever(): this manager is a client (Manager.connect()); the serving program " +
          "calls it on the manager it started with Manager.start({ address, authkey })",
      );
    }
    if (this.#address === undefined) {
      throw new TypeError(
        "serveForever() serves TCP clients: start the manager with { address, authkey } " +
          '(e.g. Manager.start({ address: { port: 50000 }, authkey: "a-secret-of-16-bytes+" }))',
      );
    }
    this.#check();
    const signal = options?.signal;
    if (signal?.aborted) return await this.shutdown();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => stop = r);
    const names: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT", "SIGBREAK"]
      : ["SIGINT", "SIGTERM"];
    const added: Deno.Signal[] = [];
    for (const name of names) {
      try {
        Deno.addSignalListener(name, stop);
        added.push(name);
      } catch {
        // not available here (a worker, or no such signal on this system)
      }
    }
    signal?.addEventListener("abort", stop);
    this.#onShutdown.add(stop);
    try {
      // join() holds the program alive (the server is a daemon) until one comes.
      await Promise.race([proc.join(), stopped]);
    } finally {
      for (const name of added) Deno.removeSignalListener(name, stop);
      signal?.removeEventListener("abort", stop);
      this.#onShutdown.delete(stop);
    }
    await this.shutdown();
  }

  /**
   * Names an object so that TCP clients can `get(name)` it. Await it to be
   * sure the name is known before telling clients.
   */
  register(name: string, proxy: BaseProxy): Promise<void> {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(
        `register(name, proxy): name must be a non-empty string, got ${
          JSON.stringify(name)
        }`,
      );
    }
    if (!(proxy instanceof BaseProxy)) {
      throw new TypeError(
        `register('${name}', proxy): proxy must come from a manager factory (manager.dict(), ...)`,
      );
    }
    const channel = this.#check();
    const r = refOf(proxy);
    if (r.disposed) throw disposedError(r, `register('${name}', proxy)`);
    if (r.channel.serverId !== channel.serverId) {
      throw new TypeError(
        `register('${name}', proxy): the proxy belongs to another manager`,
      );
    }
    const p = channel.call(OP_REGISTER, name, r.id) as Promise<void>;
    p.catch(() => {});
    return p;
  }

  /**
   * Every object the manager's server holds, with its reference count (how
   * many proxies in all processes, registered names, references stored in
   * other objects, proxies in transit and calls in progress refer to it):
   * Python's `_debug_info()`. When the server runs with
   * `--v8-flags=--expose-gc`, it collects garbage first, so references that
   * went with values no longer stored are counted out.
   */
  async debugInfo(): Promise<ManagerObjectInfo[]> {
    const channel = this.#check();
    return await channel.call(OP_DEBUG) as ManagerObjectInfo[];
  }

  /** How many objects the manager's server holds (Python's `_number_of_objects()`). */
  async numberOfObjects(): Promise<number> {
    return (await this.debugInfo()).length;
  }

  /** The object registered as `name` (a proxy); `ReferenceError` when none is. */
  async get<P extends BaseProxy = BaseProxy>(name: string): Promise<P> {
    const channel = this.#check();
    const [id, kind] = await channel.call(OP_GET, name) as [number, string];
    return makeProxy(channel, id, kind) as P;
  }

  /**
   * Stops the server (for a manager from `start()`), or closes the
   * connection (from `connect()`). Proxies then reject with `EOFError`.
   */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fn of this.#onShutdown) fn();
    const proc = this.#process;
    if (!proc) {
      this.#channel.close("the connection to the manager was closed");
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#channel.call(OP_SHUTDOWN),
        new Promise<void>((r) => timer = setTimeout(r, STOP_TIMEOUT_MS)),
      ]);
    } catch {
      // the server is gone already
    } finally {
      clearTimeout(timer);
    }
    this.#channel.close(
      "the manager was shut down: its objects are gone; start a new one",
    );
    await proc.join(STOP_TIMEOUT_MS);
    if (proc.exitCode === null) proc.terminate();
  }

  /** Shuts the manager down: `await using manager = await Manager.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /**
   * `Manager { address: "127.0.0.1:5000", pid: 2, closed: false }`: where
   * it serves (a local one: no address) and its server's pid when this
   * program started it; asks the server nothing.
   */
  toString(): string {
    const a = this.#address;
    return repr("Manager", {
      address: a ? `${a.hostname}:${a.port}` : undefined,
      pid: this.#process?.pid ?? undefined,
      closed: this.#closed,
    });
  }

  /** {@linkcode Manager.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}
