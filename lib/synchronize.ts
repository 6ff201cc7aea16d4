/**
 * Synchronization between processes, as Python's `multiprocessing` has it:
 * {@linkcode Lock}, {@linkcode RLock}, {@linkcode Semaphore},
 * {@linkcode BoundedSemaphore}, {@linkcode Event}, {@linkcode Condition} and
 * {@linkcode Barrier}, all over SharedArrayBuffer and Atomics, so they work
 * across workers running truly in parallel.
 *
 * Every wait is async (`Atomics.waitAsync`, the thread stays free) and has a
 * `...Sync` twin that blocks the thread with `Atomics.wait` (for workers and
 * tight loops). Timeouts are milliseconds; `undefined` waits forever. Each
 * object crosses into a child inside `args` (see `reduction.ts`) and is the
 * same object there: the same shared memory.
 *
 * Beyond Python: a process that ends while holding a Lock, RLock or Semaphore
 * (terminated, crashed, `exit()`) does not leave the others blocked forever.
 * The next waiter takes the lock over, the lock's `abandoned` count goes up
 * and a warning is printed once, since the data it protects may be
 * half-written. A Condition waiter whose process ended is never notified in
 * place of a live one, and a Barrier party whose process ended breaks the
 * round it waited in. A terminated process that still runs (busy in
 * synchronous code) is halted when it next acquires, or releases what was
 * taken over from it.
 *
 * Misuse throws {@linkcode ProcessError}: releasing an unlocked Lock, an
 * RLock this process does not hold, a BoundedSemaphore past its start value,
 * or waiting on (notifying) a Condition whose lock is not held.
 *
 * @module
 */

import {
  BrokenBarrierError,
  ProcessError,
  TargetNotExportedError,
  TimeoutError,
} from "./errors.ts";
import { type Reduced, reduceSymbol, registerRebuilder } from "./reduction.ts";
import { haltIfEnded, isIdentAlive } from "./_proctable.ts";
import {
  checkTimeout,
  deadline,
  SLICE_MS,
  sliceUntil,
  waitAsync,
  waitSync,
} from "./_wait.ts";
import {
  isMine,
  lockAsync,
  type LockOutcome,
  lockSync,
  ownerIdent,
  selfMark,
  unlock,
} from "./_owner.ts";
import {
  resolveLoadedRef,
  resolveRef,
  type TargetRef,
  targetRef,
} from "./_target.ts";
import { repr } from "./_inspect.ts";
import { show, showNumber } from "./_show.ts";
import { checkKeys } from "./_options.ts";

/**
 * Options of `acquire()` / `acquireSync()`, as Python's `acquire(block, timeout)`.
 *
 * @example
 * ```ts
 * import { Lock, type AcquireOptions } from "@mp/multiprocessing";
 * const lock = new Lock();
 * const tryOnce: AcquireOptions = { blocking: false };
 * console.log(lock.acquireSync(tryOnce)); // true
 * console.log(lock.acquireSync(tryOnce)); // false: already held
 * lock.release();
 * ```
 */
export interface AcquireOptions {
  /** `false`: one try, never waits (Python's `block=False`). Default `true`. */
  blocking?: boolean;
  /** Milliseconds to wait at most; `undefined` waits forever. */
  timeout?: number;
}

/**
 * Options of `hold()` / `holdSync()`.
 *
 * @example
 * ```ts
 * import { Lock, type HoldOptions } from "@mp/multiprocessing";
 * const lock = new Lock();
 * const within: HoldOptions = { timeout: 100 };
 * {
 *   using _ = await lock.hold(within); // TimeoutError if not acquired in 100 ms
 * }
 * ```
 */
export interface HoldOptions {
  /** Milliseconds to wait at most, then throw `TimeoutError`; `undefined` waits forever. */
  timeout?: number;
}

/**
 * The lock types a {@linkcode Condition} (and a shared Value or array) can use.
 *
 * @example
 * ```ts
 * import { Lock, RLock, type AnyLock } from "@mp/multiprocessing";
 * const locks: AnyLock[] = [new Lock(), new RLock()];
 * for (const lock of locks) {
 *   using _ = lock.holdSync();
 * }
 * console.log(locks.length); // 2
 * ```
 */
export type AnyLock = Lock | RLock;

// --- plumbing -------------------------------------------------------------

/** The buffer a rebuilder hands to the constructor it calls next. */
let adopted: SharedArrayBuffer | undefined;

function words(bytes: number): Int32Array {
  const buffer = adopted ?? new SharedArrayBuffer(bytes);
  adopted = undefined;
  return new Int32Array(buffer);
}

/**
 * {@linkcode words} over a growable buffer, for the tables of waiters and
 * holders: they grow (in every process at once) as more processes use them.
 */
function growableWords(bytes: number, maxBytes: number): Int32Array {
  const buffer = adopted ??
    new SharedArrayBuffer(bytes, { maxByteLength: maxBytes });
  adopted = undefined;
  return new Int32Array(buffer); // tracks the buffer's length
}

/** Grows `w` to at least `n` words (doubling); false when at its limit. */
function grow(w: Int32Array, n: number): boolean {
  const sab = w.buffer as SharedArrayBuffer;
  const want = Math.min(Math.max(n * 4, 2 * sab.byteLength), sab.maxByteLength);
  if (sab.byteLength < want) {
    try {
      sab.grow(want);
    } catch {
      // Another process grew it meanwhile.
    }
  }
  return w.length >= n;
}

function adopt<T>(buffer: SharedArrayBuffer, make: () => T): T {
  adopted = buffer;
  try {
    return make();
  } finally {
    adopted = undefined;
  }
}

/** The timeout `acquire` options come to: 0 for a non-blocking try. */
function acquireTimeout(
  options: AcquireOptions | undefined,
): number | undefined {
  // A process terminated while busy runs on: it must not take (or, once
  // taken over, share) a lock the others now hold. Halt it instead.
  haltIfEnded();
  if (options === undefined) return undefined;
  if (options === null || typeof options !== "object") {
    // Python's acquire(False) / acquire(True, 0.1) read as "no options"
    // waited forever: name the TS form instead.
    const fix = typeof options === "number"
      ? `acquire({ timeout: ${options} })`
      : "acquire({ blocking: false }) or acquire({ timeout: 100 })";
    throw new TypeError(
      `acquire options must be an object like { blocking: false } or { timeout: 100 } (ms), got ${
        show(options)
      }; write ${fix}`,
    );
  }
  checkKeys(options, ["blocking", "timeout"], "acquire option");
  const timeout = checkTimeout(options.timeout);
  const blocking = options.blocking as unknown;
  if (blocking !== undefined && typeof blocking !== "boolean") {
    throw new TypeError(
      `acquire option blocking must be true or false, got ${show(blocking)}`,
    );
  }
  return blocking === false ? 0 : timeout;
}

function notHeld(what: string, timeout: number | undefined): TimeoutError {
  return new TimeoutError(
    `could not acquire the ${what} within ${timeout} ms (hold({ timeout }))`,
  );
}

/** Counts a takeover in the shared word and warns once per object. */
function abandonedBy(
  w: Int32Array,
  index: number,
  what: string,
  ident: number,
  warned: { warned: boolean },
): void {
  Atomics.add(w, index, 1);
  if (warned.warned) return;
  warned.warned = true;
  console.warn(
    `multiprocessing: a ${what} was taken over from the process with pid ${ident}, which ended while holding it; ` +
      `the data it protects may be half-written (see .abandoned)`,
  );
}

function guardFor(release: () => void): Disposable {
  return { [Symbol.dispose]: release };
}

/** What `hold()` needs of a lock or semaphore. */
interface Acquirable {
  acquire(options?: AcquireOptions): Promise<boolean>;
  acquireSync(options?: AcquireOptions): boolean;
}

/** `hold()`: acquires, then returns `guard`; throws TimeoutError when it could not. */
async function holdAsync(
  lock: Acquirable,
  guard: Disposable,
  what: string,
  options: HoldOptions | undefined,
): Promise<Disposable> {
  if (!(await lock.acquire(options))) throw notHeld(what, options?.timeout);
  return guard;
}

/** `holdSync()`: {@linkcode holdAsync} that blocks the thread. */
function holdBlocking(
  lock: Acquirable,
  guard: Disposable,
  what: string,
  options: HoldOptions | undefined,
): Disposable {
  if (!lock.acquireSync(options)) throw notHeld(what, options?.timeout);
  return guard;
}

/** Ends a slow-path acquire: `false` on timeout; counts and reports a takeover. */
function settle(
  r: LockOutcome,
  w: Int32Array,
  abandonedIndex: number,
  what: string,
  warned: { warned: boolean },
): boolean {
  if (r === "timed-out") return false;
  if (r !== "taken") {
    abandonedBy(w, abandonedIndex, what, r.abandonedBy, warned);
  }
  return true;
}

const TRUE: Promise<boolean> = Promise.resolve(true);

// --- Lock -----------------------------------------------------------------

const L_OWNER = 0;
const L_ABANDONED = 1;

let lockWords: (lock: AnyLock) => Int32Array;

/**
 * A non-recursive lock shared between processes (Python's
 * `multiprocessing.Lock`). As in Python, any process may release it, not
 * only the one that acquired it; releasing it when it is not locked throws
 * {@linkcode ProcessError}.
 *
 * The holder is recorded: when it ends while holding the lock, the next waiter
 * gets the lock and {@linkcode Lock.abandoned} counts it.
 *
 * @example
 * ```ts
 * import { Lock } from "@mp/multiprocessing";
 * const lock = new Lock();
 * {
 *   using _ = await lock.hold(); // Python's `with lock:`
 *   console.log(lock.acquireSync({ blocking: false })); // false: held
 * }
 * console.log(await lock.acquire()); // true
 * lock.release();
 * ```
 */
export class Lock {
  #w: Int32Array;
  #warn = { warned: false };
  #guard: Disposable = guardFor(() => this.release());

  static {
    lockWords = (lock) => lock instanceof Lock ? lock.#w : rlockWords(lock);
  }

  /** Creates an unlocked lock in shared memory. */
  constructor() {
    this.#w = words(8);
  }

  /**
   * Acquires the lock, waiting without blocking the thread; resolves `true`
   * once held, `false` when `blocking: false` or `timeout` ran out first.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    const timeout = acquireTimeout(options);
    if (Atomics.compareExchange(this.#w, L_OWNER, 0, selfMark()) === 0) {
      return TRUE;
    }
    return lockAsync(this.#w, L_OWNER, timeout).then((r) => this.#took(r));
  }

  /** {@linkcode Lock.acquire} that blocks the thread (`Atomics.wait`). */
  acquireSync(options?: AcquireOptions): boolean {
    const timeout = acquireTimeout(options);
    if (Atomics.compareExchange(this.#w, L_OWNER, 0, selfMark()) === 0) {
      return true;
    }
    return this.#took(lockSync(this.#w, L_OWNER, timeout));
  }

  #took(r: LockOutcome): boolean {
    return settle(r, this.#w, L_ABANDONED, "Lock", this.#warn);
  }

  /** Releases the lock; throws {@linkcode ProcessError} when it is not locked. */
  release(): void {
    if (unlock(this.#w, L_OWNER) === 0) {
      throw new ProcessError(
        "release() of an unlocked Lock: acquire it first (or use `using _ = await lock.hold()`)",
      );
    }
  }

  /**
   * Acquires the lock and returns a guard that releases it: Python's
   * `with lock:` is `using _ = await lock.hold();`. Throws
   * {@linkcode TimeoutError} when `timeout` runs out first.
   */
  hold(options?: HoldOptions): Promise<Disposable> {
    return holdAsync(this, this.#guard, "Lock", options);
  }

  /** {@linkcode Lock.hold} that blocks the thread: `using _ = lock.holdSync();`. */
  holdSync(options?: HoldOptions): Disposable {
    return holdBlocking(this, this.#guard, "Lock", options);
  }

  /**
   * How many times, in any process, this lock was taken over from a process
   * that ended while holding it (the data it protects may be half-written).
   */
  get abandoned(): number {
    return Atomics.load(this.#w, L_ABANDONED);
  }

  /** How the lock crosses into another process: its shared memory. */
  [reduceSymbol](): Reduced {
    return { tag: "mp.Lock", state: this.#w.buffer };
  }

  /** `Lock { locked: false }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    return repr("Lock", { locked: Atomics.load(this.#w, L_OWNER) !== 0 });
  }

  /** {@linkcode Lock.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

registerRebuilder(
  "mp.Lock",
  (b) => adopt(b as SharedArrayBuffer, () => new Lock()),
);

// --- RLock ----------------------------------------------------------------

const R_OWNER = 0;
const R_COUNT = 1;
const R_ABANDONED = 2;

let rlockWords: (lock: RLock) => Int32Array;

/**
 * A recursive lock (Python's `multiprocessing.RLock`): the process that holds
 * it may acquire it again, and must release it as many times. It is owned by
 * a process: another process cannot release it ({@linkcode ProcessError}).
 * Async code of the holding process shares its ownership.
 *
 * @example
 * ```ts
 * import { RLock } from "@mp/multiprocessing";
 * const rlock = new RLock();
 * using _outer = rlock.holdSync();
 * using _inner = rlock.holdSync(); // re-entered, no deadlock
 * console.log(rlock.isMine()); // true
 * ```
 */
export class RLock {
  #w: Int32Array;
  #warn = { warned: false };
  #guard: Disposable = guardFor(() => this.release());

  static {
    rlockWords = (lock) => lock.#w;
  }

  /** Creates an unlocked recursive lock in shared memory. */
  constructor() {
    this.#w = words(12);
  }

  #fast(): boolean {
    const w = this.#w;
    const me = selfMark();
    if (Atomics.compareExchange(w, R_OWNER, 0, me) === 0) {
      w[R_COUNT] = 1;
      return true;
    }
    if (isMine(w, R_OWNER)) {
      w[R_COUNT]++;
      return true;
    }
    return false;
  }

  #took(r: LockOutcome): boolean {
    if (!settle(r, this.#w, R_ABANDONED, "RLock", this.#warn)) return false;
    this.#w[R_COUNT] = 1;
    return true;
  }

  /** Acquires (or re-enters) the lock without blocking the thread. */
  acquire(options?: AcquireOptions): Promise<boolean> {
    const timeout = acquireTimeout(options);
    if (this.#fast()) return TRUE;
    return lockAsync(this.#w, R_OWNER, timeout).then((r) => this.#took(r));
  }

  /** {@linkcode RLock.acquire} that blocks the thread (`Atomics.wait`). */
  acquireSync(options?: AcquireOptions): boolean {
    const timeout = acquireTimeout(options);
    if (this.#fast()) return true;
    return this.#took(lockSync(this.#w, R_OWNER, timeout));
  }

  /**
   * Releases one level; the lock is free once every acquire was released.
   * Throws {@linkcode ProcessError} when this process does not hold it.
   */
  release(): void {
    const w = this.#w;
    if (!isMine(w, R_OWNER)) {
      const s = Atomics.load(w, R_OWNER);
      throw new ProcessError(
        s === 0
          ? "release() of an unlocked RLock: acquire it first"
          : `release() of an RLock held by another process (ident ${
            ownerIdent(s)
          }): only its holder can release it`,
      );
    }
    if (--w[R_COUNT] === 0) unlock(w, R_OWNER);
  }

  /** True when this process holds the lock. */
  isMine(): boolean {
    return isMine(this.#w, R_OWNER);
  }

  /** Acquires and returns a guard that releases: `using _ = await rlock.hold();`. */
  hold(options?: HoldOptions): Promise<Disposable> {
    return holdAsync(this, this.#guard, "RLock", options);
  }

  /** {@linkcode RLock.hold} that blocks the thread: `using _ = rlock.holdSync();`. */
  holdSync(options?: HoldOptions): Disposable {
    return holdBlocking(this, this.#guard, "RLock", options);
  }

  /** How many times this lock was taken over from a process that died holding it. */
  get abandoned(): number {
    return Atomics.load(this.#w, R_ABANDONED);
  }

  /** How the lock crosses into another process: its shared memory. */
  [reduceSymbol](): Reduced {
    return { tag: "mp.RLock", state: this.#w.buffer };
  }

  /** `RLock { locked: true, mine: true, count: 2 }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    const w = this.#w;
    if (Atomics.load(w, R_OWNER) === 0) return repr("RLock", { locked: false });
    // The count is the holder's own: only it can read it as it stands.
    const mine = isMine(w, R_OWNER);
    return repr("RLock", {
      locked: true,
      mine,
      count: mine ? w[R_COUNT] : undefined,
    });
  }

  /** {@linkcode RLock.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

registerRebuilder(
  "mp.RLock",
  (b) => adopt(b as SharedArrayBuffer, () => new RLock()),
);

/** True when this process holds `lock` (for a Lock: it acquired it). */
function holds(lock: AnyLock): boolean {
  return isMine(lockWords(lock), 0);
}

/** Frees `lock` entirely; returns the recursion level to restore. */
function releaseAll(lock: AnyLock): number {
  if (lock instanceof Lock) {
    lock.release();
    return 1;
  }
  const w = rlockWords(lock);
  const count = w[R_COUNT];
  w[R_COUNT] = 1;
  lock.release();
  return count;
}

function restoreLevel(lock: AnyLock, count: number): void {
  if (lock instanceof RLock) rlockWords(lock)[R_COUNT] = count;
}

// --- Semaphore --------------------------------------------------------------

const S_VALUE = 0;
const S_SLEEPERS = 1;
const S_ABANDONED = 2;
const S_CAP = 3; // most units one process is recorded as holding: the start value
const S_MAX = 4; // BoundedSemaphore's bound, -1 when unbounded
const S_SLOTS = 8; // then pairs (ident + 1, units held), a table that grows
const S_FIRST_BYTES = (S_SLOTS + 2 * 64) * 4;
// As many holders as processes can be alive at once (see _proctable.ts).
const S_MAX_BYTES = (S_SLOTS + 2 * 65536) * 4;
const RECLAIMING = -1;

let semWords: (sem: Semaphore) => Int32Array;

function checkCount(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `${what} must be a non-negative integer, got ${showNumber(value)}`,
    );
  }
  if (value > 0x7fffffff) {
    throw new RangeError(`${what} must be at most 2147483647, got ${value}`);
  }
  return value;
}

/**
 * A counting semaphore shared between processes (Python's
 * `multiprocessing.Semaphore`). `release()` adds one, `acquire()` takes one,
 * waiting while there is none.
 *
 * Units taken by a process are recorded (up to the start value per process,
 * in any number of processes); when a process ends holding some, a waiter
 * gives them back and {@linkcode Semaphore.abandoned} counts it. A release
 * by a process that holds none (Python allows it) forgets a unit of a
 * process that ended, else of another holder, so no unit comes back twice.
 * A semaphore that starts at 0 and is used to signal between processes
 * records nothing.
 *
 * @example
 * ```ts
 * import { Semaphore } from "@mp/multiprocessing";
 * const sem = new Semaphore(2);
 * await sem.acquire();
 * sem.acquireSync();
 * console.log(sem.acquireSync({ blocking: false })); // false: none left
 * sem.release();
 * console.log(sem.getValue()); // 1
 * ```
 */
export class Semaphore {
  #w: Int32Array;
  #slot = -1;
  #warn = { warned: false };
  #guard: Disposable = guardFor(() => this.release());

  static {
    semWords = (sem) => sem.#w;
  }

  /** Creates a semaphore holding `value` units (default 1). */
  constructor(value = 1) {
    checkCount(value, "Semaphore value");
    const fresh = adopted === undefined;
    this.#w = growableWords(S_FIRST_BYTES, S_MAX_BYTES);
    if (fresh) {
      this.#w[S_VALUE] = value;
      this.#w[S_CAP] = value;
      this.#w[S_MAX] = -1;
    }
  }

  #take(): boolean {
    const w = this.#w;
    const v = Atomics.load(w, S_VALUE);
    if (v > 0 && Atomics.compareExchange(w, S_VALUE, v, v - 1) === v) {
      this.#record();
      return true;
    }
    return false;
  }

  #record(): void {
    const w = this.#w;
    const cap = w[S_CAP];
    if (cap === 0) return;
    const slot = this.#mySlot(true);
    if (slot >= 0 && Atomics.load(w, slot + 1) < cap) {
      Atomics.add(w, slot + 1, 1);
    }
  }

  /** This process's holder slot, claimed when `claim`; -1 when none. */
  #mySlot(claim: boolean): number {
    const w = this.#w;
    const me = selfMark();
    if (this.#slot >= 0 && Atomics.load(w, this.#slot) === me) {
      return this.#slot;
    }
    for (let i = S_SLOTS; i < w.length; i += 2) {
      if (Atomics.load(w, i) === me) return this.#slot = i;
    }
    if (!claim) return -1;
    for (let reclaimed = false;;) {
      for (let i = S_SLOTS; i < w.length; i += 2) {
        if (Atomics.compareExchange(w, i, 0, me) === 0) return this.#slot = i;
      }
      // Full: free the slots of processes that ended, then grow.
      if (!reclaimed) reclaimed = (this.#reclaim(), true);
      else if (!grow(w, w.length + 2)) return -1;
    }
  }

  /** Takes one unit off the record at `slot`; false when it holds none. */
  #forgetAt(slot: number): boolean {
    const w = this.#w;
    for (;;) {
      const held = Atomics.load(w, slot + 1);
      if (held <= 0) return false;
      if (Atomics.compareExchange(w, slot + 1, held, held - 1) === held) {
        return true;
      }
    }
  }

  /**
   * Forgets one recorded unit for a release: this process's own, else (a
   * release for another process) one of a process that ended, else one of
   * any holder. Returns the slot, -1 when no unit is recorded.
   */
  #forget(): number {
    const w = this.#w;
    const mine = this.#mySlot(false);
    if (mine >= 0 && this.#forgetAt(mine)) return mine;
    for (const ended of [true, false]) {
      for (let i = S_SLOTS; i < w.length; i += 2) {
        const id = Atomics.load(w, i);
        if (id <= 0 || i === mine || isIdentAlive(id - 1) === ended) continue;
        if (this.#forgetAt(i)) return i;
      }
    }
    return -1;
  }

  /** Gives back the units of holders that died; true when there were some. */
  #reclaim(): boolean {
    const w = this.#w;
    let any = false;
    for (let i = S_SLOTS; i < w.length; i += 2) {
      const id = Atomics.load(w, i);
      if (id <= 0 || isIdentAlive(id - 1)) continue;
      if (Atomics.compareExchange(w, i, id, RECLAIMING) !== id) continue;
      const units = Atomics.exchange(w, i + 1, 0);
      Atomics.store(w, i, 0);
      if (units > 0) {
        this.#giveBack(units);
        abandonedBy(w, S_ABANDONED, "Semaphore", id - 1, this.#warn);
        any = true;
      }
    }
    return any;
  }

  /** Adds `units` to the value (a BoundedSemaphore's never past its bound). */
  #giveBack(units: number): void {
    const w = this.#w;
    const max = w[S_MAX];
    for (;;) {
      const v = Atomics.load(w, S_VALUE);
      const n = max < 0 ? units : Math.min(units, max - v);
      if (n <= 0) return;
      if (Atomics.compareExchange(w, S_VALUE, v, v + n) === v) {
        Atomics.notify(w, S_VALUE, n);
        return;
      }
    }
  }

  #step(end: number): number | boolean {
    if (this.#take()) return true;
    if (this.#reclaim()) return -1;
    const slice = sliceUntil(end);
    return slice <= 0 ? false : slice;
  }

  /** Takes one unit without blocking the thread; `false` on timeout / non-blocking. */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const timeout = acquireTimeout(options);
    if (this.#take()) return true;
    const w = this.#w;
    const end = deadline(timeout);
    Atomics.add(w, S_SLEEPERS, 1);
    try {
      for (;;) {
        const r = this.#step(end);
        if (typeof r === "boolean") return r;
        if (r > 0) await waitAsync(w, S_VALUE, 0, r);
      }
    } finally {
      Atomics.sub(w, S_SLEEPERS, 1);
    }
  }

  /** {@linkcode Semaphore.acquire} that blocks the thread (`Atomics.wait`). */
  acquireSync(options?: AcquireOptions): boolean {
    const timeout = acquireTimeout(options);
    if (this.#take()) return true;
    const w = this.#w;
    const end = deadline(timeout);
    Atomics.add(w, S_SLEEPERS, 1);
    try {
      for (;;) {
        const r = this.#step(end);
        if (typeof r === "boolean") return r;
        if (r > 0) waitSync(w, S_VALUE, 0, r);
      }
    } finally {
      Atomics.sub(w, S_SLEEPERS, 1);
    }
  }

  /**
   * Gives one unit back, waking a waiter. On a BoundedSemaphore, a release
   * past the start value throws {@linkcode ProcessError}.
   */
  release(): void {
    const w = this.#w;
    const max = w[S_MAX];
    if (max >= 0 && Atomics.load(w, S_VALUE) >= max) throw tooMany(max);
    // Forget the unit first: dying in between leaks one rather than adds one.
    const slot = w[S_CAP] === 0 ? -1 : this.#forget();
    if (max < 0) Atomics.add(w, S_VALUE, 1);
    else {
      for (;;) {
        const v = Atomics.load(w, S_VALUE);
        if (v >= max) {
          if (slot >= 0) Atomics.add(w, slot + 1, 1);
          throw tooMany(max);
        }
        if (Atomics.compareExchange(w, S_VALUE, v, v + 1) === v) break;
      }
    }
    if (Atomics.load(w, S_SLEEPERS) > 0) Atomics.notify(w, S_VALUE, 1);
  }

  /** The units left (Python's `get_value()`). */
  getValue(): number {
    return Atomics.load(this.#w, S_VALUE);
  }

  /** Takes a unit and returns a guard that gives it back: `using _ = await sem.hold();`. */
  hold(options?: HoldOptions): Promise<Disposable> {
    return holdAsync(this, this.#guard, this.constructor.name, options);
  }

  /** {@linkcode Semaphore.hold} that blocks the thread. */
  holdSync(options?: HoldOptions): Disposable {
    return holdBlocking(this, this.#guard, this.constructor.name, options);
  }

  /** How many times units were given back from a process that died holding them. */
  get abandoned(): number {
    return Atomics.load(this.#w, S_ABANDONED);
  }

  /** How the semaphore crosses into another process: its shared memory. */
  [reduceSymbol](): Reduced {
    return {
      tag: this instanceof BoundedSemaphore
        ? "mp.BoundedSemaphore"
        : "mp.Semaphore",
      state: this.#w.buffer,
    };
  }

  /** `Semaphore { value: 2 }`, `BoundedSemaphore { value: 1, maxvalue: 3 }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    const max = Atomics.load(this.#w, S_MAX);
    return repr(this.constructor.name, {
      value: Atomics.load(this.#w, S_VALUE),
      maxvalue: this instanceof BoundedSemaphore ? max : undefined,
    });
  }

  /** {@linkcode Semaphore.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

function tooMany(max: number): ProcessError {
  return new ProcessError(
    `BoundedSemaphore released too many times: it would exceed its start value ${max}`,
  );
}

/**
 * A semaphore that cannot be released past its start value (Python's
 * `multiprocessing.BoundedSemaphore`): such a release throws
 * {@linkcode ProcessError}.
 *
 * @example
 * ```ts
 * import { BoundedSemaphore, ProcessError } from "@mp/multiprocessing";
 * const sem = new BoundedSemaphore(1);
 * try {
 *   sem.release();
 * } catch (e) {
 *   console.log(e instanceof ProcessError); // true
 * }
 * ```
 */
export class BoundedSemaphore extends Semaphore {
  /** Creates a semaphore of `value` units that never holds more. */
  constructor(value = 1) {
    const fresh = adopted === undefined;
    super(value);
    if (fresh) semWords(this)[S_MAX] = value;
  }
}

registerRebuilder(
  "mp.Semaphore",
  (b) => adopt(b as SharedArrayBuffer, () => new Semaphore()),
);
registerRebuilder(
  "mp.BoundedSemaphore",
  (b) => adopt(b as SharedArrayBuffer, () => new BoundedSemaphore()),
);

// --- Event ----------------------------------------------------------------

/**
 * A flag shared between processes (Python's `multiprocessing.Event`):
 * `set()` wakes every waiter, `clear()` resets it.
 *
 * @example
 * ```ts
 * import { Event } from "@mp/multiprocessing";
 * const ready = new Event();
 * setTimeout(() => ready.set(), 10);
 * console.log(await ready.wait(5_000)); // true
 * console.log(ready.isSet()); // true
 * ```
 */
export class Event {
  #w: Int32Array;

  /** Creates an event that is not set. */
  constructor() {
    this.#w = words(4);
  }

  /** True when the flag is set. */
  isSet(): boolean {
    return Atomics.load(this.#w, 0) === 1;
  }

  /** Sets the flag and wakes every waiter, in every process. */
  set(): void {
    if (Atomics.exchange(this.#w, 0, 1) === 0) Atomics.notify(this.#w, 0);
  }

  /** Clears the flag. */
  clear(): void {
    Atomics.store(this.#w, 0, 0);
  }

  /** Waits until the flag is set; resolves `false` when `timeoutMs` ran out first. */
  async wait(timeoutMs?: number): Promise<boolean> {
    timeoutMs = checkTimeout(timeoutMs);
    const w = this.#w;
    const end = deadline(timeoutMs);
    while (Atomics.load(w, 0) !== 1) {
      const left = end - performance.now();
      if (left <= 0) return false;
      await waitAsync(w, 0, 0, end === Infinity ? undefined : left);
    }
    return true;
  }

  /** {@linkcode Event.wait} that blocks the thread (`Atomics.wait`). */
  waitSync(timeoutMs?: number): boolean {
    timeoutMs = checkTimeout(timeoutMs);
    const w = this.#w;
    const end = deadline(timeoutMs);
    while (Atomics.load(w, 0) !== 1) {
      const left = end - performance.now();
      if (left <= 0) return false;
      waitSync(w, 0, 0, end === Infinity ? undefined : left);
    }
    return true;
  }

  /** How the event crosses into another process: its shared memory. */
  [reduceSymbol](): Reduced {
    return { tag: "mp.Event", state: this.#w.buffer };
  }

  /** `Event { set: false }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    return repr("Event", { set: this.isSet() });
  }

  /** {@linkcode Event.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

registerRebuilder(
  "mp.Event",
  (b) => adopt(b as SharedArrayBuffer, () => new Event()),
);

// --- Condition --------------------------------------------------------------

// A table of waiters, one slot each (two words: the waiter's process as
// ident + 1, 0 when free; its ticket while it waits, NOTIFIED once notified).
// A waiter sleeps on its own slot, so notify(n) wakes exactly the n it picks,
// and a waiter whose process ended is seen as such and never picked.
const C_TICKET = 0; // the next waiter's ticket: notify picks the oldest first
const C_SLOTS = 2;
const C_FIRST_BYTES = (C_SLOTS + 2 * 8) * 4;
const C_MAX_BYTES = (C_SLOTS + 2 * 65536) * 4;
const NOTIFIED = -1;
const TICKETS = 0x3fffffff;

/**
 * A condition variable shared between processes (Python's
 * `multiprocessing.Condition`), over a {@linkcode Lock} or {@linkcode RLock}
 * (a new RLock by default). `wait()` releases the lock while it waits and
 * holds it again when it returns; `notify(n)` wakes up to `n` processes
 * waiting at that time. Waiting or notifying without holding the lock throws
 * {@linkcode ProcessError}.
 *
 * @example
 * ```ts
 * import { Condition } from "@mp/multiprocessing";
 * const cond = new Condition();
 * let ready = false;
 * setTimeout(async () => {
 *   using _ = await cond.hold();
 *   ready = true;
 *   cond.notifyAll();
 * }, 10);
 * using _ = await cond.hold();
 * console.log(await cond.waitFor(() => ready, 5_000)); // true
 * ```
 */
export class Condition {
  #w: Int32Array;
  #lock: AnyLock;

  /** Creates a condition over `lock` (a new {@linkcode RLock} by default). */
  constructor(lock?: AnyLock) {
    if (
      lock !== undefined && !(lock instanceof Lock) && !(lock instanceof RLock)
    ) {
      throw new TypeError(
        `Condition(lock): lock must be a Lock or an RLock of this module, got ${
          show(lock)
        }`,
      );
    }
    this.#w = growableWords(C_FIRST_BYTES, C_MAX_BYTES);
    this.#lock = lock ?? new RLock();
  }

  /** The lock this condition is over. */
  get lock(): AnyLock {
    return this.#lock;
  }

  /** Acquires the underlying lock (see {@linkcode Lock.acquire}). */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }

  /** Acquires the underlying lock, blocking the thread. */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#lock.acquireSync(options);
  }

  /** Releases the underlying lock. */
  release(): void {
    this.#lock.release();
  }

  /** Acquires the underlying lock and returns a guard: `using _ = await cond.hold();`. */
  hold(options?: HoldOptions): Promise<Disposable> {
    return this.#lock.hold(options);
  }

  /** Acquires the underlying lock, blocking the thread; returns a guard. */
  holdSync(options?: HoldOptions): Disposable {
    return this.#lock.holdSync(options);
  }

  /** Takes a waiter's slot (under the lock); returns it, its ticket and the lock's level. */
  #enter(
    what: string,
    timeoutMs: number | undefined,
  ): [number, number, number] {
    checkTimeout(timeoutMs);
    this.#mustHold(what);
    const w = this.#w;
    const ticket = (Atomics.add(w, C_TICKET, 1) & TICKETS) + 1;
    const me = selfMark();
    for (;;) {
      for (let i = C_SLOTS; i < w.length; i += 2) {
        const mark = Atomics.load(w, i);
        // A free slot, or one a waiter whose process ended left.
        if (mark !== 0 && (mark < 0 || isIdentAlive(mark - 1))) continue;
        if (Atomics.compareExchange(w, i, mark, me) !== mark) continue;
        Atomics.store(w, i + 1, ticket);
        return [i, ticket, releaseAll(this.#lock)];
      }
      if (!grow(w, w.length + 2)) {
        throw new ProcessError(
          `Condition.${what}(): more than 65536 waiters at once`,
        );
      }
    }
  }

  #mustHold(what: string): void {
    if (!holds(this.#lock)) {
      throw new ProcessError(
        `Condition.${what}() without holding its lock: acquire it first (using _ = await cond.hold())`,
      );
    }
  }

  /**
   * One look at this waiter's slot: `true` notified, `false` timed out, both
   * having given the slot back; else keep sleeping (on the ticket).
   */
  #look(slot: number, ticket: number, end: number): boolean | undefined {
    const w = this.#w;
    let notified = Atomics.load(w, slot + 1) === NOTIFIED;
    if (!notified) {
      if (performance.now() < end) return undefined;
      // Timed out, unless notified just now.
      notified = Atomics.compareExchange(w, slot + 1, ticket, 0) === NOTIFIED;
    }
    Atomics.store(w, slot + 1, 0);
    Atomics.store(w, slot, 0);
    return notified;
  }

  /**
   * Releases the lock, waits for a notify (or `timeoutMs`), then holds the
   * lock again. Resolves `true` when notified, `false` on timeout.
   */
  async wait(timeoutMs?: number): Promise<boolean> {
    const [slot, ticket, level] = this.#enter("wait", timeoutMs);
    const end = deadline(timeoutMs);
    let r: boolean | undefined;
    try {
      while ((r = this.#look(slot, ticket, end)) === undefined) {
        await waitAsync(this.#w, slot + 1, ticket, leftUntil(end));
      }
    } finally {
      await this.#lock.acquire();
      restoreLevel(this.#lock, level);
    }
    return r;
  }

  /** {@linkcode Condition.wait} that blocks the thread (`Atomics.wait`). */
  waitSync(timeoutMs?: number): boolean {
    const [slot, ticket, level] = this.#enter("wait", timeoutMs);
    const end = deadline(timeoutMs);
    let r: boolean | undefined;
    try {
      while ((r = this.#look(slot, ticket, end)) === undefined) {
        waitSync(this.#w, slot + 1, ticket, leftUntil(end));
      }
    } finally {
      this.#lock.acquireSync();
      restoreLevel(this.#lock, level);
    }
    return r;
  }

  /**
   * Waits until `predicate()` is truthy (checked first, then after each
   * wake-up), or `timeoutMs` ran out; returns the predicate's last value.
   */
  async waitFor<T>(
    predicate: () => T | Promise<T>,
    timeoutMs?: number,
  ): Promise<T> {
    const end = deadline(checkTimeout(timeoutMs));
    let result = await predicate();
    while (!result) {
      const left = leftUntil(end);
      if (left !== undefined && left <= 0) break;
      await this.wait(left);
      result = await predicate();
    }
    return result;
  }

  /** {@linkcode Condition.waitFor} that blocks the thread. */
  waitForSync<T>(predicate: () => T, timeoutMs?: number): T {
    const end = deadline(checkTimeout(timeoutMs));
    let result = predicate();
    while (!result) {
      const left = leftUntil(end);
      if (left !== undefined && left <= 0) break;
      this.waitSync(left);
      result = predicate();
    }
    return result;
  }

  /** Wakes up to `n` of the processes waiting now (default 1). */
  notify(n = 1): void {
    if (n !== Infinity) checkCount(n, "notify(n): n");
    this.#mustHold(n === Infinity ? "notifyAll" : "notify");
    const w = this.#w;
    const now = Atomics.load(w, C_TICKET);
    // Waiters register under the lock, which we hold: these are the waiters
    // of now. [age, slot, ticket], of live processes only.
    const waiting: [number, number, number][] = [];
    for (let i = C_SLOTS; i < w.length; i += 2) {
      const mark = Atomics.load(w, i);
      const ticket = Atomics.load(w, i + 1);
      if (mark <= 0 || ticket <= 0 || !isIdentAlive(mark - 1)) continue;
      waiting.push([(now - ticket) & TICKETS, i, ticket]);
    }
    if (waiting.length > n) waiting.sort((a, b) => b[0] - a[0]);
    let left = n;
    for (const [, i, ticket] of waiting) {
      if (left === 0) break;
      // (A waiter that timed out meanwhile has taken its ticket back.)
      if (Atomics.compareExchange(w, i + 1, ticket, NOTIFIED) === ticket) {
        Atomics.notify(w, i + 1);
        left--;
      }
    }
  }

  /** Wakes every process waiting now. */
  notifyAll(): void {
    this.notify(Infinity);
  }

  /** How the condition crosses into another process: its memory and lock. */
  [reduceSymbol](): Reduced {
    return {
      tag: "mp.Condition",
      state: { w: this.#w.buffer, lock: this.#lock },
    };
  }

  /** `Condition { lock: RLock { locked: false }, waiting: 0 }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    return repr("Condition", {
      lock: this.#lock,
      waiting: this.#waiting(),
    });
  }

  /** How many live processes wait now (those notify would pick from). */
  #waiting(): number {
    const w = this.#w;
    let n = 0;
    for (let i = C_SLOTS; i < w.length; i += 2) {
      const mark = Atomics.load(w, i);
      if (mark > 0 && Atomics.load(w, i + 1) > 0 && isIdentAlive(mark - 1)) n++;
    }
    return n;
  }

  /** {@linkcode Condition.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

registerRebuilder("mp.Condition", (s) => {
  const { w, lock } = s as { w: SharedArrayBuffer; lock: AnyLock };
  return adopt(w, () => new Condition(lock));
});

function leftUntil(end: number): number | undefined {
  return end === Infinity ? undefined : Math.max(0, end - performance.now());
}

// --- Barrier ----------------------------------------------------------------

const B_STATE = 0; // FILLING, DRAINING, RESETTING or BROKEN
const B_COUNT = 1;
// Then the parties inside (entered, not yet out), per process: pairs of
// (ident + 1, 0 when free; how many). A party whose process ended is taken
// out, and breaks a round it was waiting in.
const B_SLOTS = 2;
const B_FIRST_BYTES = (B_SLOTS + 2 * 8) * 4;
const B_MAX_BYTES = (B_SLOTS + 2 * 65536) * 4;
const FILLING = 0;
const DRAINING = 1;
const RESETTING = -1;
const BROKEN = -2;

/**
 * Options of a {@linkcode Barrier}.
 *
 * @example
 * ```ts
 * import { Barrier, type BarrierOptions } from "@mp/multiprocessing";
 * export function allArrived() {
 *   console.log("all parties arrived");
 * }
 * const options: BarrierOptions = { action: allArrived, timeout: 1_000 };
 * const barrier = new Barrier(1, options);
 * await barrier.wait(); // the only party: the action runs
 * ```
 */
export interface BarrierOptions {
  /**
   * Called by one of the processes when the barrier releases (Python's
   * `action`). It crosses into children by reference, like a Process target:
   * it must be a function exported from its module. An inline function is
   * refused ({@linkcode TargetNotExportedError}) when the barrier is sent,
   * once the lookup that starts with `new Barrier` has found no such export.
   */
  action?: () => unknown;
  /** The module exporting `action`; the caller's module by default. */
  module?: string | URL;
  /** Default timeout of `wait()`, in milliseconds; `undefined` waits forever. */
  timeout?: number;
}

/**
 * A barrier for a fixed number of processes (Python's
 * `multiprocessing.Barrier`): each `wait()` blocks until `parties` processes
 * wait, then all go on, each with a distinct index in `0..parties-1`. A
 * timeout, `abort()`, an `action` that throws, or a waiting party whose
 * process ended (or could not load the action) breaks it: waits then throw
 * {@linkcode BrokenBarrierError} until `reset()`.
 *
 * @example
 * ```ts
 * import { Barrier } from "@mp/multiprocessing";
 * const barrier = new Barrier(2);
 * const [a, b] = await Promise.all([barrier.wait(5_000), barrier.wait(5_000)]);
 * console.log([a, b].sort()); // [ 0, 1 ]
 * ```
 */
export class Barrier {
  #w: Int32Array;
  #cond: Condition;
  #parties: number;
  #timeout: number | undefined;
  #action: (() => unknown) | undefined;
  #actionRef: TargetRef | undefined;
  #actionError: unknown;

  /** Creates a barrier for `parties` processes. */
  constructor(parties: number, options: BarrierOptions = {}) {
    checkCount(parties, "Barrier parties");
    checkKeys(options, ["action", "module", "timeout"], "Barrier option");
    if (parties < 1) {
      throw new RangeError(
        `Barrier parties must be at least 1, got ${parties}`,
      );
    }
    const timeout = checkTimeout(options.timeout, "Barrier timeout");
    const rebuilt = barrierParts;
    barrierParts = undefined;
    this.#parties = parties;
    this.#timeout = timeout;
    if (rebuilt) {
      this.#w = new Int32Array(rebuilt.w);
      this.#cond = rebuilt.cond;
      this.#actionRef = rebuilt.action;
      const found = this.#actionRef && resolveLoadedRef(this.#actionRef);
      if (typeof found === "function") this.#action = found as () => unknown;
      else if (this.#actionRef) {
        resolveRef(this.#actionRef).then(
          (fn) => this.#action = fn as () => unknown,
          () => {}, // reported when the action is needed
        );
      }
    } else {
      this.#w = growableWords(B_FIRST_BYTES, B_MAX_BYTES);
      this.#cond = new Condition(new Lock());
      if (options.action !== undefined) {
        if (typeof options.action !== "function") {
          throw new TypeError(
            `Barrier action must be a function, got ${show(options.action)}`,
          );
        }
        this.#action = options.action;
        // Checked only if the barrier crosses into a child: a local barrier
        // may run any function.
        try {
          this.#actionRef = targetRef(options.action, options.module);
        } catch (e) {
          this.#actionError = e;
        }
        if (this.#actionRef) this.#checkExported(options.action);
      }
    }
  }

  /** How many processes must wait for the barrier to release. */
  get parties(): number {
    return this.#parties;
  }

  /** How many processes wait now (Python's `n_waiting`). */
  get nWaiting(): number {
    return Atomics.load(this.#w, B_STATE) === FILLING
      ? Atomics.load(this.#w, B_COUNT)
      : 0;
  }

  /** True when the barrier is broken (until `reset()`). */
  get broken(): boolean {
    return Atomics.load(this.#w, B_STATE) === BROKEN;
  }

  /**
   * Looks the action up as a child will, by name; from then on the barrier
   * refuses to be sent when that does not find this very function (an
   * inline `action: () => ...` is named "action" but exported by no one).
   */
  #checkExported(action: () => unknown): void {
    const ref = this.#actionRef!;
    resolveRef(ref).then(
      (found) => {
        if (found !== action) {
          this.#actionError = new TargetNotExportedError(
            ref.module,
            ref.name,
            "a Barrier's action crosses into a child by name, as a Process target does",
          );
        }
      },
      (e) => this.#actionError = e,
    );
  }

  async #loadAction(): Promise<(() => unknown) | undefined> {
    if (this.#action || !this.#actionRef) return this.#action;
    const fn = await resolveRef(this.#actionRef);
    return this.#action = fn as () => unknown;
  }

  /**
   * Waits until `parties` processes wait; resolves this one's index (the
   * last to arrive gets `parties - 1` and runs the action). Throws
   * {@linkcode BrokenBarrierError} when the barrier breaks or `timeoutMs`
   * (default: the barrier's `timeout`) runs out.
   */
  async wait(timeoutMs: number | undefined = this.#timeout): Promise<number> {
    const end = deadline(checkTimeout(timeoutMs));
    let action: (() => unknown) | undefined;
    try {
      action = await this.#loadAction();
    } catch (e) {
      await this.abort(); // this party will not come: the others must not wait
      throw e;
    }
    const cond = this.#cond;
    using _ = await cond.hold();
    // It drains or resets: not yet.
    while (this.#stillPassing(end)) await cond.wait(sweepSlice(end));
    const index = this.#enter();
    try {
      if (index + 1 === this.#parties) this.#release(action);
      else {
        while (this.#stillFilling(end)) await cond.wait(sweepSlice(end));
        this.#released();
      }
      return index;
    } finally {
      this.#exit();
    }
  }

  /** {@linkcode Barrier.wait} that blocks the thread (`Atomics.wait`). */
  waitSync(timeoutMs: number | undefined = this.#timeout): number {
    const end = deadline(checkTimeout(timeoutMs));
    if (this.#actionRef && !this.#action) {
      this.abortSync(); // this party will not come: the others must not wait
      throw new ProcessError(
        "Barrier.waitSync(): this process has not loaded the barrier's action yet; " +
          "use `await barrier.wait()` here",
      );
    }
    const cond = this.#cond;
    using _ = cond.holdSync();
    while (this.#stillPassing(end)) cond.waitSync(sweepSlice(end));
    const index = this.#enter();
    try {
      if (index + 1 === this.#parties) this.#release(this.#action);
      else {
        while (this.#stillFilling(end)) cond.waitSync(sweepSlice(end));
        this.#released();
      }
      return index;
    } finally {
      this.#exit();
    }
  }

  // The steps of Python's Barrier.wait, each run under the condition's lock.

  /**
   * True while the last round drains or resets (and `end` is not past: then
   * the barrier breaks, since this party gives up).
   */
  #stillPassing(end: number): boolean {
    this.#sweep();
    if (!isPassing(this.#w)) return false;
    if (performance.now() >= end) {
      this.#break();
      throw broken();
    }
    return true;
  }

  /** True while the round this party is in fills; breaks it when `end` passed. */
  #stillFilling(end: number): boolean {
    this.#sweep();
    if (this.#w[B_STATE] !== FILLING) return false;
    if (performance.now() >= end) {
      this.#break();
      throw broken();
    }
    return true;
  }

  #enter(): number {
    this.#sweep();
    const w = this.#w;
    if (w[B_STATE] !== FILLING) throw broken();
    this.#count(1);
    return w[B_COUNT]++;
  }

  /** Counts a party of this process in (+1) or out (-1) in the table of parties inside. */
  #count(d: 1 | -1): void {
    const w = this.#w;
    const me = selfMark();
    let free = -1;
    for (;;) {
      for (let i = B_SLOTS; i < w.length; i += 2) {
        const mark = w[i];
        if (mark === me) {
          if ((w[i + 1] += d) === 0) w[i] = 0;
          return;
        }
        if (mark === 0 && free < 0) free = i;
      }
      if (d < 0) return; // taken out already: our process was seen ended
      if (free >= 0) {
        w[free] = me;
        w[free + 1] = 1;
        return;
      }
      if (!grow(w, w.length + 2)) {
        throw new ProcessError("Barrier: more than 65536 processes inside");
      }
    }
  }

  /**
   * Takes out the parties of processes that ended: a round they were
   * waiting in breaks (they will never go on), a round passing them ends
   * without them. Under the lock.
   */
  #sweep(): void {
    const w = this.#w;
    let gone = 0;
    for (let i = B_SLOTS; i < w.length; i += 2) {
      const mark = w[i];
      if (mark === 0 || isIdentAlive(mark - 1)) continue;
      gone += w[i + 1];
      w[i] = 0;
      w[i + 1] = 0;
    }
    if (gone === 0) return;
    w[B_COUNT] = Math.max(0, w[B_COUNT] - gone);
    if (w[B_STATE] === FILLING) this.#break();
    else if (w[B_COUNT] === 0 && isPassing(w)) {
      w[B_STATE] = FILLING;
      this.#cond.notifyAll();
    }
  }

  #release(action: (() => unknown) | undefined): void {
    try {
      action?.();
    } catch (e) {
      this.#break();
      throw e;
    }
    this.#w[B_STATE] = DRAINING;
    this.#cond.notifyAll();
  }

  #released(): void {
    if (this.#w[B_STATE] < 0) throw broken();
  }

  #exit(): void {
    const w = this.#w;
    this.#count(-1);
    // The last one out ends draining or resetting.
    if (--w[B_COUNT] === 0 && isPassing(w)) {
      w[B_STATE] = FILLING;
      this.#cond.notifyAll();
    }
  }

  #break(): void {
    this.#w[B_STATE] = BROKEN;
    this.#cond.notifyAll();
  }

  /**
   * Returns the barrier to its empty state; processes waiting on it get
   * {@linkcode BrokenBarrierError}.
   */
  async reset(): Promise<void> {
    using _ = await this.#cond.hold();
    this.#reset();
  }

  /** {@linkcode Barrier.reset} that blocks the thread. */
  resetSync(): void {
    using _ = this.#cond.holdSync();
    this.#reset();
  }

  #reset(): void {
    const w = this.#w;
    if (w[B_COUNT] > 0) {
      if (w[B_STATE] === FILLING || w[B_STATE] === BROKEN) {
        w[B_STATE] = RESETTING;
      }
    } else w[B_STATE] = FILLING;
    this.#cond.notifyAll();
  }

  /**
   * Breaks the barrier: current and future waits throw
   * {@linkcode BrokenBarrierError} until `reset()`.
   */
  async abort(): Promise<void> {
    using _ = await this.#cond.hold();
    this.#break();
  }

  /** {@linkcode Barrier.abort} that blocks the thread. */
  abortSync(): void {
    using _ = this.#cond.holdSync();
    this.#break();
  }

  /** How the barrier crosses into another process: its memory, lock and action by name. */
  [reduceSymbol](): Reduced {
    if (this.#actionError) throw this.#actionError;
    return {
      tag: "mp.Barrier",
      state: {
        w: this.#w.buffer,
        cond: this.#cond,
        parties: this.#parties,
        timeout: this.#timeout,
        action: this.#actionRef,
      },
    };
  }

  /** `Barrier { parties: 3, waiting: 0, broken: false }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    return repr("Barrier", {
      parties: this.#parties,
      waiting: this.nWaiting,
      broken: this.broken,
    });
  }

  /** {@linkcode Barrier.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/**
 * How long a barrier wait sleeps before it looks again for parties whose
 * process ended (they never notify), and not past `end`.
 */
function sweepSlice(end: number): number {
  return Math.max(0, Math.min(4 * SLICE_MS, end - performance.now()));
}

function isPassing(w: Int32Array): boolean {
  return w[B_STATE] === DRAINING || w[B_STATE] === RESETTING;
}

function broken(): BrokenBarrierError {
  return new BrokenBarrierError(
    "the barrier is broken (a wait timed out, abort() was called, its action threw, or a waiting party's process ended); reset() it to use it again",
  );
}

let barrierParts:
  | { w: SharedArrayBuffer; cond: Condition; action?: TargetRef }
  | undefined;

registerRebuilder("mp.Barrier", (s) => {
  const st = s as {
    w: SharedArrayBuffer;
    cond: Condition;
    parties: number;
    timeout?: number;
    action?: TargetRef;
  };
  barrierParts = st;
  try {
    return new Barrier(st.parties, { timeout: st.timeout });
  } finally {
    barrierParts = undefined;
  }
});
