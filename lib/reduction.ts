/**
 * How objects cross a process boundary: the one place that knows it.
 *
 * Plain data is structured-cloned by the worker's `postMessage`. The module's
 * own shared objects (Connection, Lock, Value, Queue, manager proxies, ...)
 * must instead arrive as the *same* object on the other side: each implements
 * {@linkcode reduceSymbol}, returning a tag, a cloneable state (holding its
 * SharedArrayBuffers, which are shared, not copied) and the ports to
 * transfer; its module registers a rebuilder for the tag with
 * {@linkcode registerRebuilder}. {@linkcode reduce} finds such objects
 * anywhere inside a value (arrays, plain objects, Maps, Sets, the own fields
 * of class instances) and {@linkcode rebuild} turns them back into live
 * objects in the receiving process. New kinds of shared object plug in here
 * without touching `Process`.
 *
 * @example
 * ```ts
 * import { reduce, rebuild, reduceSymbol, registerRebuilder } from "@mp/multiprocessing";
 *
 * class Counter {
 *   constructor(readonly cell = new Int32Array(new SharedArrayBuffer(4))) {}
 *   [reduceSymbol]() {
 *     return { tag: "example.Counter", state: this.cell.buffer };
 *   }
 * }
 * registerRebuilder("example.Counter", (buf) => new Counter(new Int32Array(buf as SharedArrayBuffer)));
 *
 * const c = new Counter();
 * const transfer: Transferable[] = [];
 * const wire = structuredClone(reduce({ counters: [c] }, transfer));
 * const back = rebuild(wire) as { counters: Counter[] };
 * back.counters[0].cell[0] = 5;
 * console.log(c.cell[0]); // 5: the same memory
 * ```
 *
 * @module
 */

import { isProxy } from "node:util/types";
import {
  isOpaque,
  isPlain,
  isRefusedPlatformObject,
  platformWhy,
  PROXY_WHY,
} from "./_values.ts";

/**
 * The method a shared object implements to say how it crosses into a child.
 *
 * @example
 * ```ts
 * import { reduceSymbol } from "@mp/multiprocessing";
 * class Flag {
 *   cell = new Int32Array(new SharedArrayBuffer(4));
 *   [reduceSymbol]() {
 *     return { tag: "example.Flag", state: this.cell.buffer };
 *   }
 * }
 * console.log(new Flag()[reduceSymbol]().tag); // "example.Flag"
 * ```
 */
export const reduceSymbol: unique symbol = Symbol.for("mp.reduce");

/**
 * What a shared object turns into on the wire.
 *
 * @example
 * ```ts
 * import type { Reduced } from "@mp/multiprocessing";
 * const wire: Reduced = { tag: "example.Cell", state: new SharedArrayBuffer(8) };
 * console.log(wire.tag); // "example.Cell"
 * ```
 */
export interface Reduced {
  /** The rebuilder to call on the other side (see {@linkcode registerRebuilder}). */
  tag: string;
  /** Structured-cloneable state; SharedArrayBuffers in it stay shared. */
  state: unknown;
  /** MessagePorts (or other transferables) the state holds, moved to the child. */
  transfer?: Transferable[];
  /**
   * Called when the message this object was reduced for could not be sent
   * after all (another part of it could not be cloned, say): undoes what
   * reducing did beyond the state (a reference a manager proxy lent for the
   * way, ...).
   */
  undo?: () => void;
}

/**
 * An object that crosses process boundaries as itself, not as a copy.
 *
 * @example
 * ```ts
 * import { type Shareable, reduceSymbol } from "@mp/multiprocessing";
 * const flag: Shareable = {
 *   [reduceSymbol]: () => ({ tag: "example.Flag", state: new SharedArrayBuffer(4) }),
 * };
 * console.log(typeof flag[reduceSymbol]); // "function"
 * ```
 */
export interface Shareable {
  /** Returns how this object is sent to another process. */
  [reduceSymbol](): Reduced;
}

const MARK = "__mp_reduced__";
const rebuilders = new Map<string, (state: unknown) => unknown>();

/**
 * Registers how to rebuild objects of `tag` in the receiving process. Each
 * shared class registers itself when its module loads; the child bootstrap
 * loads them all.
 *
 * @example
 * ```ts
 * import { registerRebuilder } from "@mp/multiprocessing";
 * registerRebuilder("example.Box", (state) => ({ box: state }));
 * ```
 */
export function registerRebuilder(
  tag: string,
  rebuilder: (state: unknown) => unknown,
): void {
  rebuilders.set(tag, rebuilder);
}

function isShareable(v: object): v is Shareable {
  return typeof (v as Partial<Shareable>)[reduceSymbol] === "function";
}

/**
 * Returns `value` with every shared object inside it replaced by its reduced
 * form, pushing the ports to transfer onto `transfer` and, when `undo` is
 * given, the reduced objects' `undo`s onto it (call them if the result is not
 * sent after all; when reducing itself throws, it calls every `undo` in the
 * list first). Values without shared objects are returned as they are
 * (no copy). What structured clone would refuse or silently empty (a Proxy;
 * a URL, Headers, ... anywhere inside) throws a TypeError named
 * `DataCloneError` naming where it sits, from `path` (the value's name).
 *
 * @example
 * ```ts
 * import { reduce } from "@mp/multiprocessing";
 * const transfer: Transferable[] = [];
 * console.log(reduce([1, { a: "x" }], transfer)); // [ 1, { a: "x" } ]
 * ```
 */
export function reduce(
  value: unknown,
  transfer: Transferable[],
  undo?: (() => void)[],
  path = "value",
): unknown {
  const outer = undoSink;
  undoSink = undo;
  try {
    return walk(value, transfer, new Map());
  } catch (e) {
    // Nothing of it can be sent: undo what the objects met so far did.
    if (undo) { for (const f of undo.splice(0)) f(); }
    if (e instanceof Refused) {
      const at = find(value, path, new Set(), e.culprit)?.path ?? path;
      const err = new TypeError(
        `${at} is a ${e.type}: ${
          e.type === "Proxy" ? PROXY_WHY : platformWhy(e.culprit)
        }`,
      );
      err.name = "DataCloneError";
      throw err;
    }
    throw e;
  } finally {
    undoSink = outer;
  }
}

/** Where the reduce under way puts the `undo`s it meets. */
let undoSink: (() => void)[] | undefined;

/** Unwinds a walk that met what cannot be sent (a Proxy, a URL, ...). */
class Refused {
  constructor(readonly culprit: object, readonly type: string) {}
}

function walk(
  value: unknown,
  transfer: Transferable[],
  seen: Map<object, unknown>,
): unknown {
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return seen.get(value);
  if (isShareable(value)) {
    const r = value[reduceSymbol]();
    if (r.transfer) transfer.push(...r.transfer);
    if (r.undo) undoSink?.push(r.undo);
    const out = { [MARK]: r.tag, state: walk(r.state, transfer, seen) };
    seen.set(value, out);
    return out;
  }
  if (isOpaque(value)) return value;
  // Structured clone refuses a Proxy, and makes a nested URL, Headers, ...
  // `{}` without a word: refused here, as the codec refuses them.
  if (isProxy(value)) throw new Refused(value, "Proxy");
  if (!isPlain(value) && isRefusedPlatformObject(value)) {
    throw new Refused(value, describe(value));
  }
  if (Array.isArray(value)) {
    seen.set(value, value);
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const w = walk(v, transfer, seen);
      if (w !== v && !out) {
        out = value.slice(0, i);
        seen.set(value, out);
      }
      if (out) out[i] = w;
    }
    return out ?? value;
  }
  if (value instanceof Map) {
    seen.set(value, value);
    let changed = false;
    const entries: [unknown, unknown][] = [];
    for (const [k, v] of value) {
      const wk = walk(k, transfer, seen), wv = walk(v, transfer, seen);
      if (wk !== k || wv !== v) changed = true;
      entries.push([wk, wv]);
    }
    return changed ? new Map(entries) : value;
  }
  if (value instanceof Set) {
    seen.set(value, value);
    let changed = false;
    const items: unknown[] = [];
    for (const v of value) {
      const w = walk(v, transfer, seen);
      if (w !== v) changed = true;
      items.push(w);
    }
    return changed ? new Set(items) : value;
  }
  // Plain objects and class instances (whose own fields are what travels).
  seen.set(value, value);
  let out: Record<string, unknown> | undefined;
  const rec = value as Record<string, unknown>;
  const keys = Object.keys(rec);
  for (let i = 0; i < keys.length; i++) {
    const v = rec[keys[i]];
    const w = walk(v, transfer, seen);
    if (w !== v && !out) {
      out = isPlain(value) ? {} : Object.create(Object.getPrototypeOf(value));
      for (let j = 0; j < i; j++) out![keys[j]] = rec[keys[j]];
      seen.set(value, out);
    }
    if (out) out[keys[i]] = w;
  }
  return out ?? value;
}

/**
 * Turns reduced shared objects inside a received value back into live
 * objects. Values without them are returned as they are.
 *
 * @example
 * ```ts
 * import { rebuild } from "@mp/multiprocessing";
 * console.log(rebuild({ plain: [1, 2] })); // { plain: [ 1, 2 ] }
 * ```
 */
export function rebuild(value: unknown): unknown {
  return unwalk(value, new Map());
}

function unwalk(value: unknown, seen: Map<object, unknown>): unknown {
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return seen.get(value);
  if (isOpaque(value)) return value;
  if (Array.isArray(value)) {
    seen.set(value, value);
    for (let i = 0; i < value.length; i++) value[i] = unwalk(value[i], seen);
    return value;
  }
  if (value instanceof Map) {
    seen.set(value, value);
    const entries = [...value].map(([k, v]) =>
      [unwalk(k, seen), unwalk(v, seen)] as const
    );
    value.clear();
    for (const [k, v] of entries) value.set(k, v);
    return value;
  }
  if (value instanceof Set) {
    seen.set(value, value);
    const items = [...value].map((v) => unwalk(v, seen));
    value.clear();
    for (const v of items) value.add(v);
    return value;
  }
  const rec = value as Record<string, unknown>;
  const tag = rec[MARK];
  if (typeof tag === "string") {
    const rebuilder = rebuilders.get(tag);
    if (!rebuilder) {
      throw new TypeError(
        `cannot rebuild a shared object of kind '${tag}': its module was not loaded in this process`,
      );
    }
    const live = rebuilder(unwalk(rec.state, seen));
    seen.set(value, live);
    return live;
  }
  seen.set(value, value);
  for (const k of Object.keys(rec)) rec[k] = unwalk(rec[k], seen);
  return value;
}

/**
 * Finds the first part of `value` that structured clone rejects, as a path
 * and a type name (`args[1].socket: Deno.TcpConn`), or undefined when all of
 * it clones. Used to turn a `DataCloneError` into a message naming the
 * culprit; slow, so only called after a clone failed.
 *
 * @example
 * ```ts
 * import { findUncloneable } from "@mp/multiprocessing";
 * console.log(findUncloneable([1, () => 2], "args")); // { path: "args[1]", type: "function" }
 * ```
 */
export function findUncloneable(
  value: unknown,
  path: string,
): { path: string; type: string } | undefined {
  return find(value, path, new Set());
}

function describe(v: unknown): string {
  if (typeof v === "function") return "function";
  if (typeof v === "symbol") return "symbol";
  if (v === null || typeof v !== "object") return typeof v;
  return v.constructor?.name ?? "object";
}

/** The first part that cannot be cloned, or, given `culprit`, where that sits. */
function find(
  value: unknown,
  path: string,
  seen: Set<object>,
  culprit?: object,
): { path: string; type: string } | undefined {
  if (culprit !== undefined) {
    if (value === culprit) return { path, type: describe(value) };
  } else if (typeof value === "function" || typeof value === "symbol") {
    return { path, type: describe(value) };
  }
  if (value === null || typeof value !== "object" || seen.has(value)) {
    return undefined;
  }
  seen.add(value);
  if (isShareable(value)) return undefined;
  if (isProxy(value)) {
    return culprit === undefined ? { path, type: "Proxy" } : undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const r = find(value[i], `${path}[${i}]`, seen, culprit);
      if (r) return r;
    }
    return undefined;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      const r = find(k, `${path}.<key>`, seen, culprit) ??
        find(v, `${path}.get(${String(k)})`, seen, culprit);
      if (r) return r;
    }
    return undefined;
  }
  if (value instanceof Set) {
    let i = 0;
    for (const v of value) {
      const r = find(v, `${path}.<item ${i++}>`, seen, culprit);
      if (r) return r;
    }
    return undefined;
  }
  if (isOpaque(value)) return undefined;
  if (culprit === undefined && !isPlain(value)) {
    try {
      structuredClone(value);
    } catch {
      return { path, type: describe(value) };
    }
  }
  for (const k of Object.keys(value)) {
    const r = find(
      (value as Record<string, unknown>)[k],
      `${path}.${k}`,
      seen,
      culprit,
    );
    if (r) return r;
  }
  return undefined;
}
