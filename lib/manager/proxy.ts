/**
 * The base of manager proxies: a handle on one object of a manager's
 * server, how a call's arguments and reply cross (proxies inside them as
 * references), and the proxies of users' classes.
 *
 * @module
 */

import { reduceSymbol, registerRebuilder } from "../reduction.ts";
import type { Reduced } from "../reduction.ts";
import { type ProxyChannel as Channel, TcpChannel } from "./_channel.ts";
import {
  OP_CALL,
  OP_CALL_REFS,
  OP_DECREF,
  OP_LEND,
  OP_TAKE,
  REF_KEY,
} from "./_wire.ts";
import { notQueueable } from "../wire/_codec.ts";
import { isOpaque, isPlain } from "../_values.ts";
import { DESCEND, rewrite, some } from "../_walk.ts";
import {
  collected,
  disposedError,
  nextToken,
  refOf,
  refs,
  sending,
} from "./_refs.ts";

const PROXY_TAG = "mp.ManagerProxy";
const REF = REF_KEY;

/** The reference a proxy stands for in a value sent to its server. */
export function refFor(
  p: BaseProxy,
  serverId: string,
): Record<string, unknown> {
  const r = refOf(p);
  if (r.disposed) throw disposedError(r, "a proxy cannot be stored");
  if (r.channel.serverId !== serverId) {
    throw new TypeError(
      "a proxy can only be stored in the manager that holds its object",
    );
  }
  return { [REF]: [r.id, r.kind] };
}

/** Throws when `v` is a shared object of this program (it cannot be stored). */
function refuseShared(v: object): void {
  if (typeof (v as Record<symbol, unknown>)[reduceSymbol] !== "function") {
    return;
  }
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  throw new TypeError(
    `a ${
      name ?? "shared object"
    } cannot be stored in a manager (it is shared memory of this program, not data); ` +
      `store data, or use the manager's own kind (e.g. manager.Lock(), manager.Queue())`,
  );
}

/** Whether `x` is a container a walk looks into (arrays, Maps, Sets). */
function isContainer(x: object): boolean {
  return Array.isArray(x) || x instanceof Map || x instanceof Set;
}

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
 * with each replaced. Shared parts stay shared and cycles end (structured
 * clone and the codec carry both). Returns what to send, and whether it
 * holds references (the server then counts them).
 */
export function encode(
  args: unknown[],
  serverId: string,
): [unknown[], boolean] {
  const needs = (x: object): boolean | typeof DESCEND => {
    if (isContainer(x)) return DESCEND;
    if (x instanceof BaseProxy) {
      refFor(x, serverId); // fails now for a disposed or foreign proxy
      return true;
    }
    if (!isPlain(x)) {
      refuseShared(x);
      if (isOpaque(x)) return false;
    }
    return Object.hasOwn(x, REF) || DESCEND;
  };
  if (!some(args, needs)) return [args, false];
  let refs = false;
  const sent = rewrite(
    args,
    (x) => {
      if (isContainer(x)) return DESCEND;
      if (x instanceof BaseProxy) {
        refs = true;
        return refFor(x, serverId);
      }
      if (!isPlain(x)) {
        refuseShared(x);
        if (isOpaque(x)) return x;
      }
      return DESCEND; // a class instance: a plain object of its fields
    },
    "copy",
    // The caller's own field named REF_KEY: wrapped, never a reference.
    (x, out) => isPlain(out) && Object.hasOwn(x, REF) ? { [REF]: out } : out,
  ) as unknown[];
  return [sent, refs];
}

/** Whether a reply holds a reference or a wrapped object (see {@linkcode encode}). */
const holdsMarkers = (x: object): boolean | typeof DESCEND =>
  isPlain(x) ? Object.hasOwn(x, REF) || DESCEND : isContainer(x) && DESCEND;

/**
 * References inside a reply become proxies on the same channel, and
 * wrapped objects (see {@linkcode encode}) are unwrapped, in place (the
 * reply is this process's own copy). A quick look first (nothing
 * allocated): a reply without either, the usual case, is returned as it
 * is. A reference met twice makes one proxy, the server having counted one
 * for it.
 */
export function decode(v: unknown, channel: Channel): unknown {
  if (v === null || typeof v !== "object" || !some(v, holdsMarkers)) return v;
  /** The caller's objects met unwrapped: their own REF_KEY field is data. */
  const unwrapped = new Set<object>();
  return rewrite(v, (x, walk) => {
    if (!isPlain(x)) return isContainer(x) ? DESCEND : x;
    if (!unwrapped.has(x) && Object.hasOwn(x, REF)) {
      const ref = (x as Record<string, unknown>)[REF];
      if (Array.isArray(ref)) {
        return makeProxy(channel, ref[0] as number, ref[1] as string);
      }
      if (ref !== null && typeof ref === "object") {
        unwrapped.add(ref);
        return walk(ref);
      }
    }
    return DESCEND;
  }, "inPlace");
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
   *
   * @returns What the method returned (proxies inside it arrive as proxies).
   * @throws {TypeError} (rejects) when the object's kind has no `method`
   *   (naming the methods it has).
   * @throws {ReferenceError} (rejects) once this proxy was disposed.
   * @throws {EOFError} (rejects) once the manager was shut down or its
   *   server ended.
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

export async function call(
  proxy: BaseProxy,
  method: string,
  args: unknown[],
  blocking: boolean,
): Promise<unknown> {
  const r = refOf(proxy);
  if (r.disposed) throw disposedError(r, `${method}()`);
  // Proxies in the arguments: the server counts them once it has the call.
  const [sent, holdsRefs] = encode(args, r.channel.serverId);
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

/**
 * Gives `cls` a method for each entry of `arities`, calling the server's
 * method of that name with that many arguments (as its declared
 * parameters would send them, `undefined` for one left out); those in
 * `parking` may park in the server (see {@linkcode call}).
 */
export function proxyMethods(
  cls: { prototype: BaseProxy },
  arities: Record<string, number>,
  parking: readonly string[] = [],
): void {
  for (const [name, arity] of Object.entries(arities)) {
    const blocking = parking.includes(name);
    const method = {
      [name](this: BaseProxy, ...given: unknown[]): Promise<unknown> {
        const args: unknown[] = [];
        for (let i = 0; i < arity; i++) args.push(given[i]);
        return call(this, name, args, blocking);
      },
    }[name];
    // As a class's own methods are: not enumerable.
    Object.defineProperty(cls.prototype, name, {
      value: method,
      writable: true,
      configurable: true,
    });
  }
}

/** The proxy class of each built-in kind (filled by `proxies.ts`). */
export const PROXY_CLASSES: Record<
  string,
  new (c: Channel, id: number, kind: string) => BaseProxy
> = {};

/** A proxy for a reference the server counted for `channel`. */
export function makeProxy(
  channel: Channel,
  id: number,
  kind: string,
): BaseProxy {
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
