/**
 * The data kinds a manager serves: list, dict, Namespace, Value, Array.
 *
 * @module
 */

import {
  checkArrayTypecode,
  TYPECODE_ARRAYS,
  TYPECODES,
} from "../_typecodes.ts";
import { deepEqual, describe, type Kind, unwrap, wrapped } from "./_kind.ts";

// ---------------------------------------------------------------- list

export function index(
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

export function sliceBound(i: unknown, length: number, dflt: number): number {
  if (i === undefined || i === null) return dflt;
  if (typeof i !== "number" || !Number.isInteger(i)) {
    throw new TypeError(`slice bounds must be integers, got ${describe(i)}`);
  }
  const j = i < 0 ? i + length : i;
  return Math.max(0, Math.min(length, j));
}

export function toItems(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set || v instanceof Map) return [...v];
  if (v === undefined || v === null) return [];
  throw new TypeError(
    `${what} must be an array (or Set), got ${typeof v}`,
  );
}

export const list: Kind = {
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

export const KEY = "\u0000mp.key:";

/** Dict keys by value: tuples (arrays) and objects compare by content. */
export function norm(key: unknown): unknown {
  if (key === null || typeof key !== "object") return key;
  return KEY + JSON.stringify(
    key,
    (_k, v) => typeof v === "bigint" ? `${v}n` : v,
  );
}

export type Dict = Map<unknown, [unknown, unknown]>;

export function entriesOf(v: unknown, what: string): [unknown, unknown][] {
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

export function keyError(key: unknown): RangeError {
  return new RangeError(`key ${describe(key)} is not in the dict`);
}

export const dict: Kind = {
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

export function attr(name: unknown): string {
  if (typeof name !== "string") {
    throw new TypeError(
      `a Namespace attribute name must be a string, got ${typeof name}`,
    );
  }
  return name;
}

export type Ns = Map<string, unknown>;

export const namespace: Kind = {
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

export interface Val {
  typecode: string;
  value: unknown;
}

export const value: Kind = {
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

export type Typed =
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
export const TYPED: Record<string, new (n: number) => Typed> = TYPECODE_ARRAYS;

/**
 * Checks `x` fits typecode `t` (a number; for q/Q a bigint or an integral
 * number; for u one character) and converts it as `SharedArray` does; the
 * typed array then stores it (integers wrap, floats round).
 */
export function arrayElement(t: string, x: unknown): number | bigint | string {
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

export interface ServerArray {
  typecode: string;
  data: Typed | string[];
}

export function arrayOf(t: string, init: unknown): ServerArray {
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

export const array: Kind = {
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
