/**
 * The one walk over a value's parts: arrays, plain objects, Map keys and
 * values, Set members and (where a visitor asks) the own fields of class
 * instances. Every walk of the module is one of these with a visitor:
 * `reduce` / `rebuild` (reduction.ts), a manager call's arguments and
 * replies (manager/_refs.ts) and the server's stored references
 * (manager/_server.ts); {@linkcode pathTo} names where a bad part sits, in
 * one syntax, for every "cannot send ... at args[0].x" message.
 *
 * Each object is met once (a map of the objects met, so cycles end and
 * shared parts stay shared); state lives in the call, never in the module.
 *
 * @module
 */

import { isMap, isNativeError, isProxy, isSet } from "node:util/types";

/** A visitor's answer: walk into the object's parts. */
export const DESCEND: unique symbol = Symbol("walk.descend");

/**
 * What a visitor says of object `x`: {@linkcode DESCEND}, or what `x`
 * becomes (`x` itself to keep it, parts untouched). `walk` goes on with
 * another value in the same walk (the same objects met).
 */
export type Visit = (x: object, walk: (y: unknown) => unknown) => unknown;

/** What {@linkcode some}'s test says of an object: found, not here, or look inside. */
export type Test = (x: object) => boolean | typeof DESCEND;

/**
 * How many objects, and how deep, {@linkcode some} goes before it gives up
 * for a walk that keeps a set of the objects met: a value that is not
 * cyclic, the usual case, is walked without allocating anything.
 */
const QUICK_OBJECTS = 10_000;
const QUICK_DEPTH = 64;

/** Walk state of a quick look: the objects it may still meet. */
interface Budget {
  left: number;
}

/** Over budget: {@linkcode some} goes on with a set of the objects met. */
const OVER = -1;

/** Whether `test` finds an object inside `value` (`value` itself included). */
export function some(value: unknown, test: Test): boolean {
  if (value === null || typeof value !== "object") return false;
  const quick = look(value, test, null, { left: QUICK_OBJECTS }, 0);
  if (quick !== OVER) return quick === 1;
  return look(value, test, new Set([value]), { left: Infinity }, 0) === 1;
}

/** 1: found; 0: not; {@linkcode OVER}: a quick look (`seen` null) ran out. */
function look(
  v: object,
  test: Test,
  seen: Set<object> | null,
  budget: Budget,
  depth: number,
): number {
  if (seen === null && (--budget.left < 0 || depth > QUICK_DEPTH)) return OVER;
  const t = test(v);
  if (t !== DESCEND) return t ? 1 : 0;
  depth++;
  const part = (x: unknown): number => {
    if (x === null || typeof x !== "object") return 0;
    if (seen !== null) {
      if (seen.has(x)) return 0;
      seen.add(x);
    }
    return look(x, test, seen, budget, depth);
  };
  let r: number;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if ((r = part(v[i])) !== 0) return r;
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      if ((r = part(k)) !== 0 || (r = part(x)) !== 0) return r;
    }
  } else if (v instanceof Set) {
    for (const x of v) if ((r = part(x)) !== 0) return r;
  } else {
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) if ((r = part(rec[k])) !== 0) return r;
  }
  return 0;
}

/**
 * How {@linkcode rewrite} treats the containers it walks into:
 * - `"inPlace"`: they keep their identity, their parts are replaced;
 * - `"copy"`: each is copied (class instances as plain objects of their
 *   fields, as structured clone and the codec carry them);
 * - `"onWrite"`: kept as they are unless a part changed, then copied
 *   (class instances keep their prototype).
 */
export type Mode = "inPlace" | "copy" | "onWrite";

/**
 * `value` with each object the visitor replaces replaced. `made`, in
 * `"copy"` mode: what stands for an object whose empty copy is `out` (its
 * parts are filled in after; `out` by default).
 */
export function rewrite(
  value: unknown,
  visit: Visit,
  mode: Mode,
  made?: (x: object, out: object) => unknown,
  seen: Map<object, unknown> = new Map(),
): unknown {
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (seen.has(v)) return seen.get(v);
    const r = visit(v, walk);
    if (r !== DESCEND) {
      seen.set(v, r);
      return r;
    }
    if (mode === "copy") return copyParts(v, walk, seen, made);
    if (mode === "inPlace") return rewriteParts(v, walk, seen);
    return copyOnWrite(v, walk, seen);
  };
  return walk(value);
}

function rewriteParts(
  v: object,
  walk: (y: unknown) => unknown,
  seen: Map<object, unknown>,
): unknown {
  seen.set(v, v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x !== null && typeof x === "object") v[i] = walk(x);
    }
  } else if (v instanceof Map) {
    const entries: [unknown, unknown][] = [];
    let rekeyed = false;
    for (const [k, x] of v) {
      const j = walk(k);
      if (j !== k) rekeyed = true;
      entries.push([j, walk(x)]);
    }
    // Keys that changed: rebuilt in place, in the same order.
    if (rekeyed) v.clear();
    for (const [k, x] of entries) v.set(k, x);
  } else if (v instanceof Set) {
    const items = walkedItems(v, walk);
    if (items) {
      v.clear();
      for (const y of items) v.add(y);
    }
  } else {
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      const x = rec[k];
      if (x !== null && typeof x === "object") rec[k] = walk(x);
    }
  }
  return v;
}

/** The walked members of `v`, in order; undefined when none changed. */
function walkedItems(
  v: Set<unknown>,
  walk: (y: unknown) => unknown,
): unknown[] | undefined {
  const items: unknown[] = [];
  let changed = false;
  for (const x of v) {
    const y = walk(x);
    if (y !== x) changed = true;
    items.push(y);
  }
  return changed ? items : undefined;
}

function copyParts(
  v: object,
  walk: (y: unknown) => unknown,
  seen: Map<object, unknown>,
  made: ((x: object, out: object) => unknown) | undefined,
): unknown {
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    seen.set(v, made ? made(v, out) : out);
    for (let i = 0; i < v.length; i++) out.push(walk(v[i]));
  } else if (v instanceof Map) {
    const out = new Map();
    seen.set(v, made ? made(v, out) : out);
    for (const [k, x] of v) out.set(walk(k), walk(x));
  } else if (v instanceof Set) {
    const out = new Set();
    seen.set(v, made ? made(v, out) : out);
    for (const x of v) out.add(walk(x));
  } else {
    const out: Record<string, unknown> = {};
    seen.set(v, made ? made(v, out) : out);
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) out[k] = walk(rec[k]);
  }
  return seen.get(v);
}

function copyOnWrite(
  v: object,
  walk: (y: unknown) => unknown,
  seen: Map<object, unknown>,
): unknown {
  seen.set(v, v);
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      const w = walk(x);
      if (w !== x && !out) {
        out = v.slice(0, i);
        seen.set(v, out);
      }
      if (out) out[i] = w;
    }
    return out ?? v;
  }
  if (v instanceof Map) {
    let changed = false;
    const entries: [unknown, unknown][] = [];
    for (const [k, x] of v) {
      const wk = walk(k), wx = walk(x);
      if (wk !== k || wx !== x) changed = true;
      entries.push([wk, wx]);
    }
    return changed ? new Map(entries) : v;
  }
  if (v instanceof Set) {
    const items = walkedItems(v, walk);
    return items ? new Set(items) : v;
  }
  let out: Record<string, unknown> | undefined;
  const rec = v as Record<string, unknown>;
  const keys = Object.keys(rec);
  for (let i = 0; i < keys.length; i++) {
    const x = rec[keys[i]];
    const w = walk(x);
    if (w !== x && !out) {
      const proto = Object.getPrototypeOf(v);
      out = proto === Object.prototype || proto === null
        ? {}
        : Object.create(proto);
      for (let j = 0; j < i; j++) out![keys[j]] = rec[keys[j]];
      seen.set(v, out);
    }
    if (out) out[keys[i]] = w;
  }
  return out ?? v;
}

// ------------------------------------------------------------------ paths

/**
 * One step into a value: an array index, a field, a Map's key or value,
 * a Set's member.
 */
export type Step =
  | number
  | string
  | { key: unknown; index: number }
  | { value: unknown; index: number }
  | { item: number };

/**
 * Where a part sits, from the value's name: `args[1].socket`,
 * `item.m.get(k)`, `value["odd key"].<key>`, `args[0].<item 2>`.
 */
export function pathString(root: string, path: readonly Step[]): string {
  let s = root;
  for (const p of path) {
    if (typeof p === "number") s += `[${p}]`;
    else if (typeof p === "string") {
      s += /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
    } else if ("key" in p) s += ".<key>";
    else if ("value" in p) {
      s += p.value !== null && typeof p.value === "object"
        ? `.get(<key ${p.index}>)`
        : `.get(${String(p.value)})`;
    } else s += `.<item ${p.item}>`;
  }
  return s;
}

/** What {@linkcode pathTo}'s test says of a part: found (its type's name), not here, or look inside. */
export type Probe = (v: unknown) => string | false | typeof DESCEND;

/**
 * The path and type of the first part of `root` that `probe` names (a
 * depth-first walk, in the order the codec and structured clone meet the
 * parts), or undefined. Objects are met once; a Proxy is never looked
 * into; an Error's `cause` is one of its parts. For error messages only: a
 * getter that throws ends the search (undefined).
 */
export function pathTo(
  root: unknown,
  probe: Probe,
): { path: Step[]; type: string } | undefined {
  const seen = new Set<object>();
  const path: Step[] = [];
  const find = (v: unknown): string | undefined => {
    const p = probe(v);
    if (p !== DESCEND) return p || undefined;
    if (v === null || typeof v !== "object" || seen.has(v) || isProxy(v)) {
      return undefined;
    }
    seen.add(v);
    const at = (step: Step, x: unknown): string | undefined => {
      path.push(step);
      const r = find(x);
      if (r === undefined) path.pop();
      return r;
    };
    let r: string | undefined;
    if (isMap(v)) {
      let index = 0;
      for (const [key, x] of Map.prototype.entries.call(v)) {
        if ((r = at({ key, index }, key) ?? at({ value: key, index }, x))) {
          return r;
        }
        index++;
      }
      return undefined;
    }
    if (isSet(v)) {
      let item = 0;
      for (const x of Set.prototype.values.call(v)) {
        if ((r = at({ item: item++ }, x))) return r;
      }
      return undefined;
    }
    if (isNativeError(v)) {
      const cause = Object.getOwnPropertyDescriptor(v, "cause");
      if (cause && "value" in cause && (r = at("cause", cause.value))) {
        return r;
      }
    }
    const array = Array.isArray(v);
    for (const k of Object.keys(v)) {
      const step = array && /^(0|[1-9]\d*)$/.test(k) ? Number(k) : k;
      if ((r = at(step, (v as Record<string, unknown>)[k]))) return r;
    }
    return undefined;
  };
  try {
    const type = find(root);
    return type === undefined ? undefined : { path, type };
  } catch {
    return undefined; // a getter threw: no path
  }
}
