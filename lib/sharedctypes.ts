/**
 * Numbers and arrays in shared memory (Python's `multiprocessing.Value`,
 * `Array`, `RawValue`, `RawArray`): {@linkcode Value}, {@linkcode SharedArray},
 * {@linkcode RawValue} and {@linkcode RawArray}, over SharedArrayBuffer. Pass
 * them to a child in `args`: both sides read and write the same memory.
 *
 * Typecodes are Python's `array` ones, each a typed array:
 *
 * | typecode | type           | typed array      |
 * | -------- | -------------- | ---------------- |
 * | `b` `B`  | signed/unsigned char  | Int8Array / Uint8Array   |
 * | `h` `H`  | short          | Int16Array / Uint16Array |
 * | `i` `I`  | int            | Int32Array / Uint32Array |
 * | `l` `L`  | long (32-bit)  | Int32Array / Uint32Array |
 * | `q` `Q`  | long long      | BigInt64Array / BigUint64Array (bigint) |
 * | `f` `d`  | float / double | Float32Array / Float64Array |
 *
 * `l`/`L` are 32-bit, as C `long` is on Windows and as Python's `array`
 * guarantees at least; use `q`/`Q` for 64-bit integers (they hold bigints;
 * a number given to them is converted with `BigInt()`). A value out of range
 * for its typecode is stored as the typed array stores it: integers wrap
 * around (`Value("b", 200).value` is `-56`), fractions are truncated toward
 * zero, NaN becomes 0, floats round to the nearest representable value.
 *
 * A `SharedArray` *is* a typed array (that is what makes `arr[i]` fast), so
 * it indexes as one: `arr[n]` past the end reads `undefined` and a write
 * there is ignored (Python raises `IndexError`), and an element written with
 * `arr[i] = x` is converted as the typed array converts it (a string becomes
 * a number or 0; a `q`/`Q` element must be given a bigint). Check indexes
 * against `arr.length` where they may be out of range.
 *
 * Reading or writing `.value`, or one element, is a single (atomic for the
 * integer typecodes) access; a read-modify-write such as `v.value += 1` is
 * not, so guard it with the object's lock: `using _ = v.getLock().holdSync()`.
 *
 * @module
 */

import { type Reduced, reduceSymbol, registerRebuilder } from "./reduction.ts";
import { type AnyLock, Lock, RLock } from "./synchronize.ts";
import { TYPECODE_ARRAYS } from "./_typecodes.ts";
import { show, showNumber } from "./_show.ts";
import { checkKeys } from "./_options.ts";

/**
 * Python's typecodes: `b B h H i I l L q Q f d`.
 *
 * @example
 * ```ts
 * import { Value, type Typecode } from "@mp/multiprocessing";
 * const code: Typecode = "d";
 * const v = new Value(code, 1.5);
 * console.log(v.value); // 1.5
 * ```
 */
export type Typecode =
  | "b"
  | "B"
  | "h"
  | "H"
  | "i"
  | "I"
  | "l"
  | "L"
  | "q"
  | "Q"
  | "f"
  | "d";

/**
 * The typed array (over a SharedArrayBuffer) that holds each typecode.
 *
 * @example
 * ```ts
 * import { SharedArray, type TypecodeArrays } from "@mp/multiprocessing";
 * const arr: TypecodeArrays["i"] = new SharedArray("i", [1, 2, 3]);
 * console.log(arr instanceof Int32Array); // true
 * ```
 */
export interface TypecodeArrays {
  /** signed char */
  b: Int8Array<SharedArrayBuffer>;
  /** unsigned char */
  B: Uint8Array<SharedArrayBuffer>;
  /** short */
  h: Int16Array<SharedArrayBuffer>;
  /** unsigned short */
  H: Uint16Array<SharedArrayBuffer>;
  /** int */
  i: Int32Array<SharedArrayBuffer>;
  /** unsigned int */
  I: Uint32Array<SharedArrayBuffer>;
  /** long (32-bit here) */
  l: Int32Array<SharedArrayBuffer>;
  /** unsigned long (32-bit here) */
  L: Uint32Array<SharedArrayBuffer>;
  /** long long (bigint) */
  q: BigInt64Array<SharedArrayBuffer>;
  /** unsigned long long (bigint) */
  Q: BigUint64Array<SharedArrayBuffer>;
  /** float */
  f: Float32Array<SharedArrayBuffer>;
  /** double */
  d: Float64Array<SharedArrayBuffer>;
}

/**
 * What an element of typecode `T` reads as: `bigint` for `q`/`Q`, else `number`.
 *
 * @example
 * ```ts
 * import { Value, type ElementOf } from "@mp/multiprocessing";
 * const big: ElementOf<"q"> = new Value("q", 5n).value;
 * const small: ElementOf<"i"> = new Value("i", 5).value;
 * console.log(big, small); // 5n 5
 * ```
 */
export type ElementOf<T extends Typecode> = T extends "q" | "Q" ? bigint
  : number;

/**
 * What may be written to typecode `T`: `q`/`Q` also take integral numbers.
 *
 * @example
 * ```ts
 * import { Value, type InputOf } from "@mp/multiprocessing";
 * const start: InputOf<"q"> = 7; // a number is converted to a bigint
 * console.log(new Value("q", start).value); // 7n
 * ```
 */
export type InputOf<T extends Typecode> = T extends "q" | "Q" ? bigint | number
  : number;

/**
 * Options of {@linkcode Value} and {@linkcode SharedArray}.
 *
 * @example
 * ```ts
 * import { Lock, Value, type SharedOptions } from "@mp/multiprocessing";
 * const withLock: SharedOptions = { lock: new Lock() };
 * const v = new Value("i", 0, withLock);
 * {
 *   using _ = v.getLock().holdSync();
 *   v.value += 1;
 * }
 * console.log(v.value); // 1
 * ```
 */
export interface SharedOptions {
  /**
   * `true` (default): a new {@linkcode RLock}, as Python; `false`: no lock
   * (`getLock()` then throws); or the Lock/RLock to use.
   */
  lock?: boolean | AnyLock;
}

type AnyTyped = TypecodeArrays[Typecode];
type TypedCtor = {
  new (
    buffer: SharedArrayBuffer,
    byteOffset?: number,
    length?: number,
  ): AnyTyped;
  readonly BYTES_PER_ELEMENT: number;
};

const CTORS = TYPECODE_ARRAYS as unknown as Record<Typecode, TypedCtor>;

const VALID = Object.keys(CTORS).join(" ");

function checkTypecode(typecode: unknown): Typecode {
  if (typeof typecode !== "string" || !Object.hasOwn(CTORS, typecode)) {
    throw new TypeError(
      `unknown typecode ${
        typeof typecode === "string" ? `'${typecode}'` : String(typecode)
      }: use one of ${VALID} (q and Q hold bigints)`,
    );
  }
  return typecode as Typecode;
}

const isBig = (t: Typecode): boolean => t === "q" || t === "Q";

/** Checks `x` is a number (or, for q/Q, a bigint or number) and converts it. */
function element(t: Typecode, x: unknown): number | bigint {
  if (isBig(t)) {
    if (typeof x === "bigint") return x;
    if (typeof x === "number" && Number.isInteger(x)) return BigInt(x);
    if (typeof x === "number") {
      // BigInt() would throw a RangeError that names neither.
      throw new RangeError(
        `typecode '${t}' holds integers (bigints), got ${
          showNumber(x)
        }; round it first (BigInt(Math.trunc(x)))`,
      );
    }
  } else if (typeof x === "number") return x;
  throw new TypeError(
    `typecode '${t}' holds ${isBig(t) ? "bigints" : "numbers"}, got ${
      showNumber(x)
    }`,
  );
}

function makeLock(lock: unknown, what: string): AnyLock | undefined {
  if (lock === undefined || lock === true) return new RLock();
  if (lock === false) return undefined;
  if (lock instanceof Lock || lock instanceof RLock) return lock;
  throw new TypeError(
    `${what} lock option must be true, false, a Lock or an RLock, got ${
      show(lock)
    }`,
  );
}

function noLock(what: string): TypeError {
  return new TypeError(
    `this ${what} was created with { lock: false } and has no lock: ` +
      `create it with { lock: true } (the default) or pass your own Lock/RLock`,
  );
}

/** Shared memory handed from a rebuilder to the constructor it calls next. */
let adopted:
  | { buffer: SharedArrayBuffer; offset: number; lock?: AnyLock }
  | undefined;

function adoptWith<T>(mem: NonNullable<typeof adopted>, make: () => T): T {
  adopted = mem;
  try {
    return make();
  } finally {
    adopted = undefined;
  }
}

let valueLock: (v: Value) => AnyLock | undefined;

// --- Value ------------------------------------------------------------------

/**
 * One number in shared memory, without a lock (Python's
 * `multiprocessing.RawValue`). `.value` reads and writes it.
 *
 * @example
 * ```ts
 * import { RawValue } from "@mp/multiprocessing";
 * const v = new RawValue("d", 1.5);
 * v.value *= 2;
 * console.log(v.value); // 3
 * ```
 */
export class RawValue<T extends Typecode = Typecode> {
  /** The typecode it was created with. */
  readonly typecode: T;
  #a: AnyTyped;
  #atomic: boolean;
  #big: boolean;

  /**
   * Creates the number, 0 unless `value` is given.
   *
   * @throws {TypeError} for an unknown typecode, or a `value` of the wrong
   *   type (a bigint for `q`/`Q`, else a number).
   */
  constructor(typecode: T, value?: InputOf<T>) {
    const t = checkTypecode(typecode);
    this.typecode = typecode;
    this.#big = isBig(t);
    this.#atomic = t !== "f" && t !== "d";
    const Ctor = CTORS[t];
    if (adopted) {
      this.#a = new Ctor(adopted.buffer, adopted.offset, 1);
    } else {
      this.#a = new Ctor(new SharedArrayBuffer(8), 0, 1);
      if (value !== undefined) this.#a[0] = element(t, value);
    }
  }

  /** The number (a bigint for `q`/`Q`). */
  get value(): ElementOf<T> {
    return (this.#atomic
      ? Atomics.load(this.#a as Int32Array, 0)
      : this.#a[0]) as ElementOf<T>;
  }

  set value(x: InputOf<T>) {
    if (this.#big ? typeof x !== "bigint" : typeof x !== "number") {
      x = element(this.typecode, x) as InputOf<T>;
    }
    if (this.#atomic) Atomics.store(this.#a as Int32Array, 0, x as number);
    else this.#a[0] = x as number;
  }

  /** The one-element typed array that holds it (Python's `get_obj()`). */
  getObj(): TypecodeArrays[T] {
    return this.#a as TypecodeArrays[T];
  }

  /** `Value('i', 30)` (Python's `Value('i', 30)`); `RawValue('q', 2n)`. */
  toString(): string {
    const v = this.value;
    return `${this.constructor.name}('${this.typecode}', ${
      typeof v === "bigint" ? `${v}n` : v
    })`;
  }

  /** {@linkcode RawValue.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** How it crosses into another process: its memory (and lock). */
  [reduceSymbol](): Reduced {
    return {
      tag: "mp.Value",
      state: {
        t: this.typecode,
        b: this.#a.buffer,
        o: this.#a.byteOffset,
        lock: this instanceof Value ? valueLock(this) ?? null : null,
        raw: !(this instanceof Value),
      },
    };
  }
}

/**
 * One number in shared memory with a lock (Python's
 * `multiprocessing.Value`). `.value` reads and writes it; a read-modify-write
 * needs the lock: `getLock()`.
 *
 * @example
 * ```ts
 * import { Value } from "@mp/multiprocessing";
 * const counter = new Value("i", 0);
 * {
 *   using _ = counter.getLock().holdSync(); // Python's `with counter.get_lock():`
 *   counter.value += 1;
 * }
 * console.log(counter.value); // 1
 * ```
 */
export class Value<T extends Typecode = Typecode> extends RawValue<T> {
  #lock: AnyLock | undefined;

  static {
    valueLock = (v) => v.#lock;
  }

  /**
   * Creates the number (0 unless `value` is given) and its lock.
   *
   * @throws {TypeError} as {@linkcode RawValue}'s constructor, and for a `lock`
   *   option that is not a boolean, a Lock or an RLock.
   */
  constructor(typecode: T, value?: InputOf<T>, options: SharedOptions = {}) {
    checkKeys(options, ["lock"], "Value option");
    const lock = adopted ? adopted.lock : makeLock(options.lock, "Value");
    super(typecode, value);
    this.#lock = lock;
  }

  /**
   * The lock that guards it.
   *
   * @throws {TypeError} when created with `{ lock: false }`.
   */
  getLock(): AnyLock {
    if (!this.#lock) throw noLock("Value");
    return this.#lock;
  }
}

registerRebuilder("mp.Value", (s) => {
  const st = s as {
    t: Typecode;
    b: SharedArrayBuffer;
    o: number;
    lock: AnyLock | null;
    raw: boolean;
  };
  const mem = { buffer: st.b, offset: st.o, lock: st.lock ?? undefined };
  return adoptWith(
    mem,
    () => st.raw ? new RawValue(st.t) : new Value(st.t),
  );
});

// --- arrays -----------------------------------------------------------------

/**
 * What {@linkcode SharedArray} adds to its typed array.
 *
 * @example
 * ```ts
 * import { SharedArray, type SharedArrayMethods } from "@mp/multiprocessing";
 * const arr: SharedArrayMethods<"d"> = new SharedArray("d", 4);
 * console.log(arr.typecode); // "d"
 * ```
 */
export interface SharedArrayMethods<T extends Typecode> {
  /** The typecode it was created with. */
  readonly typecode: T;
  /** The lock that guards it; throws when created with `{ lock: false }`. */
  getLock(): AnyLock;
  /** How it crosses into another process: its memory and lock. */
  [reduceSymbol](): Reduced;
}

/**
 * An array in shared memory with a lock (Python's `multiprocessing.Array`):
 * the typed array of its typecode (so `SharedArray<"d">` is a
 * `Float64Array`), plus `getLock()`.
 */
export type SharedArray<T extends Typecode = Typecode> =
  & TypecodeArrays[T]
  & SharedArrayMethods<T>;

/**
 * A size, or the initial elements.
 *
 * @example
 * ```ts
 * import { SharedArray, type SizeOrInitializer } from "@mp/multiprocessing";
 * const init: SizeOrInitializer<"i"> = [1, 4, 9];
 * console.log([...new SharedArray("i", init)]); // [ 1, 4, 9 ]
 * ```
 */
export type SizeOrInitializer<T extends Typecode> =
  | number
  | Iterable<InputOf<T>>
  | ArrayLike<InputOf<T>>;

/**
 * The constructor of {@linkcode SharedArray}.
 *
 * @example
 * ```ts
 * import { SharedArray, type SharedArrayConstructor } from "@mp/multiprocessing";
 * const make: SharedArrayConstructor = SharedArray;
 * console.log(new make("B", 3).length); // 3
 * ```
 */
export interface SharedArrayConstructor {
  /**
   * Creates `size` zeros, or the given elements, in shared memory.
   *
   * @throws {TypeError} for an unknown typecode, or an element of the wrong
   *   type.
   * @throws {RangeError} for a size that is not a non-negative integer, or
   *   more memory than the system gives.
   */
  new <T extends Typecode>(
    typecode: T,
    sizeOrInitializer: SizeOrInitializer<T>,
    options?: SharedOptions,
  ): SharedArray<T>;
  /** True for arrays made by {@linkcode SharedArray} (in any process). */
  [Symbol.hasInstance](value: unknown): boolean;
}

/**
 * The constructor of {@linkcode RawArray}.
 *
 * @example
 * ```ts
 * import { RawArray, type RawArrayConstructor } from "@mp/multiprocessing";
 * const make: RawArrayConstructor = RawArray;
 * console.log(new make("h", [1, 2]).length); // 2
 * ```
 */
export interface RawArrayConstructor {
  /**
   * Creates `size` zeros, or the given elements, in shared memory.
   *
   * @throws {TypeError} / {RangeError} as {@linkcode SharedArray}'s.
   */
  new <T extends Typecode>(
    typecode: T,
    sizeOrInitializer: SizeOrInitializer<T>,
  ): RawArray<T>;
  /** True for typed arrays over shared memory. */
  [Symbol.hasInstance](value: unknown): boolean;
}

/** An array in shared memory without a lock: a plain typed array over a SharedArrayBuffer. */
export type RawArray<T extends Typecode = Typecode> = TypecodeArrays[T];

/** Allocates and fills the typed array for `typecode` and `init`. */
function allocate(
  t: Typecode,
  init: unknown,
): { buffer: SharedArrayBuffer; values?: (number | bigint)[]; length: number } {
  let length: number;
  let values: (number | bigint)[] | undefined;
  if (typeof init === "number") {
    if (!Number.isInteger(init) || init < 0) {
      throw new RangeError(
        `array size must be a non-negative integer, got ${init}`,
      );
    }
    length = init;
  } else if (
    init !== null && typeof init === "object" &&
    (Symbol.iterator in init || "length" in init)
  ) {
    values = Array.from(init as ArrayLike<unknown>, (x) => element(t, x));
    length = values.length;
  } else {
    throw new TypeError(
      `array size or initializer must be a non-negative integer or an iterable of ${
        isBig(t) ? "bigints" : "numbers"
      }, got ${showNumber(init)}`,
    );
  }
  const bytes = length * CTORS[t].BYTES_PER_ELEMENT;
  let buffer: SharedArrayBuffer;
  try {
    buffer = new SharedArrayBuffer(bytes);
  } catch (e) {
    throw new RangeError(
      `cannot allocate a shared array of ${length} '${t}' elements (${
        formatBytes(bytes)
      }): ${
        (e as Error).message === "Invalid array buffer length"
          ? "more than a SharedArrayBuffer can hold"
          : "the system refused that much memory"
      }; ask for fewer elements, or split the data over several arrays`,
      { cause: e },
    );
  }
  return { buffer, values, length };
}

function formatBytes(n: number): string {
  for (const [unit, size] of [["TiB", 2 ** 40], ["GiB", 2 ** 30]] as const) {
    if (n >= size) return `${+(n / size).toFixed(1)} ${unit}`;
  }
  return `${n} bytes`;
}

type SharedCtor = new (
  buffer: SharedArrayBuffer,
  offset: number,
  length: number,
  lock: AnyLock | undefined,
) => SharedArray;

/**
 * One subclass of each typed array. Its instances are real typed arrays, so
 * `arr[i]`, `arr.length` and `[...arr]` run at typed-array speed (a Proxy
 * would be hundreds of times slower); the subclass only adds the typecode,
 * the lock and how it crosses into a child. Methods that make new arrays
 * (`map`, `slice`, `subarray`, ...) make plain typed arrays.
 */
function sharedClass(t: Typecode): SharedCtor {
  const Base = CTORS[t] as unknown as new (
    buffer: SharedArrayBuffer,
    offset: number,
    length: number,
  ) => Int32Array<SharedArrayBuffer>; // (the typing of any one of them)
  const Sub = class extends Base {
    #lock: AnyLock | undefined;
    static get [Symbol.species]() {
      return Base;
    }
    constructor(
      buffer: SharedArrayBuffer,
      offset: number,
      length: number,
      lock: AnyLock | undefined,
    ) {
      super(buffer, offset, length);
      this.#lock = lock;
    }
    get typecode(): Typecode {
      return t;
    }
    getLock(): AnyLock {
      if (!this.#lock) throw noLock("SharedArray");
      return this.#lock;
    }
    [reduceSymbol](): Reduced {
      return {
        tag: "mp.SharedArray",
        state: {
          t,
          b: this.buffer,
          o: this.byteOffset,
          n: this.length,
          lock: this.#lock ?? null,
        },
      };
    }
  };
  Object.defineProperty(Sub, "name", { value: "SharedArray" });
  return Sub as unknown as SharedCtor;
}

const SHARED = Object.fromEntries(
  Object.keys(CTORS).map((t) => [t, sharedClass(t as Typecode)]),
) as Record<Typecode, SharedCtor>;
const SHARED_SET = new Set<unknown>(Object.values(SHARED));

function SharedArrayImpl(
  this: unknown,
  typecode: Typecode,
  init: unknown,
  options: SharedOptions = {},
): SharedArray {
  if (!new.target) throw new TypeError("SharedArray must be called with new");
  const t = checkTypecode(typecode);
  checkKeys(options, ["lock"], "SharedArray option");
  const lock = makeLock(options.lock, "SharedArray");
  const { buffer, values, length } = allocate(t, init);
  const arr = new SHARED[t](buffer, 0, length, lock);
  if (values) (arr as unknown as { set(v: unknown[]): void }).set(values);
  return arr;
}
Object.defineProperty(SharedArrayImpl, Symbol.hasInstance, {
  value: (v: unknown) =>
    v !== null && typeof v === "object" &&
    SHARED_SET.has(Object.getPrototypeOf(v)?.constructor),
});
Object.defineProperty(SharedArrayImpl, "name", { value: "SharedArray" });

/**
 * An array in shared memory with a lock (Python's `multiprocessing.Array`).
 * It is the typed array of its typecode (`SharedArray<"i">` is an
 * `Int32Array`), so it indexes at typed-array speed: `arr[i]`,
 * `arr[i] = x`, `arr.length`, `[...arr]`. `getLock()` returns its lock (a new
 * RLock unless `lock` says otherwise). A size that is not a non-negative
 * integer is a RangeError.
 *
 * @example
 * ```ts
 * import { SharedArray } from "@mp/multiprocessing";
 * const squares = new SharedArray("i", 4);
 * for (let i = 0; i < squares.length; i++) squares[i] = (i + 1) ** 2;
 * console.log([...squares]); // [ 1, 4, 9, 16 ]
 * const lengths = new SharedArray("d", [1.5, 2.5]);
 * using _ = lengths.getLock().holdSync();
 * lengths[0] += 1;
 * ```
 */
export const SharedArray: SharedArrayConstructor =
  SharedArrayImpl as unknown as SharedArrayConstructor;

registerRebuilder("mp.SharedArray", (s) => {
  const st = s as {
    t: Typecode;
    b: SharedArrayBuffer;
    o: number;
    n: number;
    lock: AnyLock | null;
  };
  return new SHARED[st.t](st.b, st.o, st.n, st.lock ?? undefined);
});

function RawArrayImpl(
  this: unknown,
  typecode: Typecode,
  init: unknown,
): RawArray {
  if (!new.target) throw new TypeError("RawArray must be called with new");
  const t = checkTypecode(typecode);
  const { buffer, values, length } = allocate(t, init);
  const arr = new CTORS[t](buffer, 0, length);
  if (values) (arr as unknown as { set(v: unknown[]): void }).set(values);
  return arr;
}
Object.defineProperty(RawArrayImpl, Symbol.hasInstance, {
  value: (v: unknown) =>
    ArrayBuffer.isView(v) && !(v instanceof DataView) &&
    v.buffer instanceof SharedArrayBuffer,
});
Object.defineProperty(RawArrayImpl, "name", { value: "RawArray" });

/**
 * An array in shared memory without a lock (Python's
 * `multiprocessing.RawArray`): a plain typed array over a SharedArrayBuffer,
 * which crosses into children as shared memory by itself.
 *
 * @example
 * ```ts
 * import { RawArray } from "@mp/multiprocessing";
 * const counts = new RawArray("i", 10);
 * counts[3] = 7;
 * console.log(counts instanceof Int32Array, counts.length); // true 10
 * ```
 */
export const RawArray: RawArrayConstructor =
  RawArrayImpl as unknown as RawArrayConstructor;
