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
import {
  DESCEND,
  pathString,
  pathTo,
  rewrite,
  some,
  type Visit,
} from "./_walk.ts";

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
 * @param tag The `tag` its `[reduceSymbol]()` returns; a second registration
 *   of a tag replaces the first.
 * @param rebuilder Makes the live object from the `state` it returned (with
 *   the shared objects inside that state already rebuilt).
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
 * form, ready for `postMessage`.
 *
 * @param transfer Receives the ports to transfer with the result.
 * @param undo Receives the reduced objects' `undo`s: call them if the result
 *   is not sent after all (when reducing itself throws, it calls every `undo`
 *   in the list first).
 * @param path The value's name in error messages (`args` gives `args[0].x`).
 * @returns `value` itself when it holds no shared object (no copy), else a
 *   copy of the parts that lead to one.
 * @throws {TypeError} named `DataCloneError`, naming where it sits, for what
 *   structured clone would refuse or silently empty (a Proxy; a URL,
 *   Headers, ... anywhere inside).
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
  let refused: object | undefined;
  let why = "";
  const visit: Visit = (x, walk) => {
    if (refused !== undefined) return x; // the walk is over: nothing is sent
    if (isShareable(x)) {
      const r = x[reduceSymbol]();
      if (r.transfer) transfer.push(...r.transfer);
      if (r.undo) undo?.push(r.undo);
      return { [MARK]: r.tag, state: walk(r.state) };
    }
    if (isOpaque(x)) return x;
    // Structured clone refuses a Proxy, and makes a nested URL, Headers, ...
    // `{}` without a word: refused here, as the codec refuses them.
    if (isProxy(x)) why = `a Proxy: ${PROXY_WHY}`;
    else if (!isPlain(x) && isRefusedPlatformObject(x)) {
      why = `a ${describe(x)}: ${platformWhy(x)}`;
    } else return DESCEND;
    refused = x;
    return x;
  };
  let out: unknown;
  try {
    out = rewrite(value, visit, "onWrite");
  } catch (e) {
    // Nothing of it can be sent: undo what the objects met so far did.
    if (undo) { for (const f of undo.splice(0)) f(); }
    throw e;
  }
  if (refused === undefined) return out;
  if (undo) { for (const f of undo.splice(0)) f(); }
  const culprit = refused;
  const found = pathTo(value, (v) => culpritProbe(v, culprit));
  const err = new TypeError(
    `${found ? pathString(path, found.path) : path} is ${why}`,
  );
  err.name = "DataCloneError";
  throw err;
}

/**
 * Turns reduced shared objects inside a received value back into live
 * objects, in place.
 *
 * @returns `value` with its reduced parts replaced in place (the live object
 *   itself when `value` is one reduced object).
 * @throws {TypeError} for a reduced object whose tag has no rebuilder in
 *   this process (its module was not loaded).
 *
 * @example
 * ```ts
 * import { rebuild } from "@mp/multiprocessing";
 * console.log(rebuild({ plain: [1, 2] })); // { plain: [ 1, 2 ] }
 * ```
 */
export function rebuild(value: unknown): unknown {
  return rewrite(value, (x, walk) => {
    const tag = reducedTag(x);
    if (tag === OPAQUE) return x;
    if (tag === DESCEND) return DESCEND;
    const rebuilder = rebuilders.get(tag);
    if (!rebuilder) {
      throw new TypeError(
        `cannot rebuild a shared object of kind '${tag}': its module was not loaded in this process`,
      );
    }
    return rebuilder(walk((x as Record<string, unknown>).state));
  }, "inPlace");
}

const OPAQUE = Symbol("opaque");

/**
 * What a received part is to the walks that rebuild: a reduced object's
 * tag, {@linkcode DESCEND} for what to look inside, or {@linkcode OPAQUE}.
 */
function reducedTag(x: object): string | typeof DESCEND | typeof OPAQUE {
  if (Array.isArray(x) || x instanceof Map || x instanceof Set) return DESCEND;
  if (isOpaque(x)) return OPAQUE;
  const tag = (x as Record<string, unknown>)[MARK];
  return typeof tag === "string" ? tag : DESCEND;
}

/**
 * True when `value` holds a reduced object whose kind has no rebuilder in
 * this process yet: a child then loads the whole library before
 * {@linkcode rebuild} (see {@linkcode loadRebuilders}).
 */
export function needsRebuilders(value: unknown): boolean {
  return some(value, (x) => {
    const tag = reducedTag(x);
    if (tag === OPAQUE) return false;
    return tag === DESCEND ? DESCEND : !rebuilders.has(tag);
  });
}

const LIBRARY = new URL("../mod.ts", import.meta.url).href;

/**
 * Loads every module of the library (each shared class registers its
 * rebuilder as it loads) when `value` needs one not registered yet. A child
 * does not load them all up front: importing mod.ts took a worker ~20 ms of
 * its ~45 ms start (a pool's tasks seldom carry shared objects).
 */
export async function loadRebuilders(value: unknown): Promise<void> {
  if (libraryLoaded || !needsRebuilders(value)) return;
  await import(LIBRARY);
  libraryLoaded = true;
}

let libraryLoaded = false;

/**
 * Finds the first part of `value` that structured clone rejects. Used to turn
 * a `DataCloneError` into a message naming the culprit; slow, so only called
 * after a clone failed.
 *
 * @param path The value's name, the start of the path returned.
 * @returns Its path and type name (`{ path: "args[1].socket", type:
 *   "TcpConn" }`), or undefined when all of it clones.
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
  const found = pathTo(value, uncloneableProbe);
  return found && { path: pathString(path, found.path), type: found.type };
}

function describe(v: unknown): string {
  if (typeof v === "function") return "function";
  if (typeof v === "symbol") return "symbol";
  if (v === null || typeof v !== "object") return typeof v;
  return v.constructor?.name ?? "object";
}

/** Where `culprit` sits (shared objects and what clones whole are not looked into). */
function culpritProbe(
  v: unknown,
  culprit: object,
): string | false | typeof DESCEND {
  if (v === culprit) return describe(v);
  if (v === null || typeof v !== "object") return false;
  if (isShareable(v) || isProxy(v) || isOpaque(v)) return false;
  return DESCEND;
}

/** The first part structured clone refuses. */
function uncloneableProbe(v: unknown): string | false | typeof DESCEND {
  if (typeof v === "function" || typeof v === "symbol") return describe(v);
  if (v === null || typeof v !== "object" || isShareable(v)) return false;
  if (isProxy(v)) return "Proxy";
  if (Array.isArray(v) || v instanceof Map || v instanceof Set) return DESCEND;
  if (isOpaque(v)) return false;
  if (!isPlain(v)) {
    try {
      structuredClone(v);
    } catch {
      return describe(v);
    }
  }
  return DESCEND;
}
