/**
 * {@linkcode Lock} and {@linkcode RLock}: both are one owner word
 * (`shm/_owner.ts`) and a count of takeovers, with the same acquire and hold; an
 * RLock adds its holder's recursion level.
 *
 * @module
 */

import { ProcessError } from "../errors.ts";
import { type Reduced, reduceSymbol, registerRebuilder } from "../reduction.ts";
import {
  isMine,
  lockAsync,
  type LockOutcome,
  lockSync,
  ownerIdent,
  selfMark,
  unlock,
} from "../shm/_owner.ts";
import { repr } from "../_inspect.ts";
import {
  type AcquireOptions,
  acquireTimeout,
  adopt,
  guardFor,
  holdAsync,
  holdBlocking,
  type HoldOptions,
  settle,
  TRUE,
  words,
} from "./_common.ts";

const OWNER = 0;
const ABANDONED = 1;
const COUNT = 2; // an RLock's recursion level: its holder's alone

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

/** What Lock and RLock share: the owner word's acquire, its hold and its count of takeovers. */
class OwnerWord {
  readonly w: Int32Array;
  readonly guard: Disposable;
  readonly #what: "Lock" | "RLock";
  readonly #recursive: boolean;
  readonly #warn = { warned: false };

  constructor(what: "Lock" | "RLock", release: () => void) {
    this.#what = what;
    this.#recursive = what === "RLock";
    this.w = words(this.#recursive ? 12 : 8);
    this.guard = guardFor(release);
  }

  /** Takes a free word at once, or (an RLock) enters this process's hold again. */
  #fast(): boolean {
    const w = this.w;
    if (Atomics.compareExchange(w, OWNER, 0, selfMark()) === 0) {
      if (this.#recursive) w[COUNT] = 1;
      return true;
    }
    if (this.#recursive && isMine(w, OWNER)) {
      w[COUNT]++;
      return true;
    }
    return false;
  }

  #took(r: LockOutcome): boolean {
    if (!settle(r, this.w, ABANDONED, this.#what, this.#warn)) return false;
    if (this.#recursive) this.w[COUNT] = 1;
    return true;
  }

  acquire(options?: AcquireOptions): Promise<boolean> {
    const timeout = acquireTimeout(options);
    if (this.#fast()) return TRUE;
    return lockAsync(this.w, OWNER, timeout).then((r) => this.#took(r));
  }

  acquireSync(options?: AcquireOptions): boolean {
    const timeout = acquireTimeout(options);
    if (this.#fast()) return true;
    return this.#took(lockSync(this.w, OWNER, timeout));
  }

  hold(options: HoldOptions | undefined): Promise<Disposable> {
    return holdAsync(this, this.guard, this.#what, options);
  }

  holdSync(options: HoldOptions | undefined): Disposable {
    return holdBlocking(this, this.guard, this.#what, options);
  }

  get abandoned(): number {
    return Atomics.load(this.w, ABANDONED);
  }

  get locked(): boolean {
    return Atomics.load(this.w, OWNER) !== 0;
  }
}

let ownerOf: (lock: AnyLock) => OwnerWord;

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
  #o: OwnerWord = new OwnerWord("Lock", () => this.release());

  static {
    ownerOf = (lock) => lock instanceof Lock ? lock.#o : rlockOwner(lock);
  }

  /**
   * Acquires the lock, waiting without blocking the thread.
   *
   * @param options `{ blocking: false }` or `{ timeout: 0 }`: one try.
   * @returns True once held; false when `timeout` ran out first, or the lock
   *   was held and `blocking` is false.
   * @throws {TypeError} for options that are not an object (Python's
   *   `acquire(False)` is `acquire({ blocking: false })`).
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#o.acquire(options);
  }

  /** {@linkcode Lock.acquire} that blocks the thread (`Atomics.wait`). */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#o.acquireSync(options);
  }

  /**
   * Releases the lock (any process may).
   *
   * @throws {ProcessError} when it is not locked.
   */
  release(): void {
    if (unlock(this.#o.w, OWNER) === 0) {
      throw new ProcessError(
        "release() of an unlocked Lock: acquire it first (or use `using _ = await lock.hold()`)",
      );
    }
  }

  /**
   * Acquires the lock and returns a guard that releases it: Python's
   * `with lock:` is `using _ = await lock.hold();`.
   *
   * @throws {TimeoutError} (rejects) when `timeout` runs out first.
   */
  hold(options?: HoldOptions): Promise<Disposable> {
    return this.#o.hold(options);
  }

  /** {@linkcode Lock.hold} that blocks the thread: `using _ = lock.holdSync();`. */
  holdSync(options?: HoldOptions): Disposable {
    return this.#o.holdSync(options);
  }

  /**
   * How many times, in any process, this lock was taken over from a process
   * that ended while holding it (the data it protects may be half-written).
   */
  get abandoned(): number {
    return this.#o.abandoned;
  }

  /** How the lock crosses into another process: its shared memory. */
  [reduceSymbol](): Reduced {
    return { tag: "mp.Lock", state: this.#o.w.buffer };
  }

  /** `Lock { locked: false }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    return repr("Lock", { locked: this.#o.locked });
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

let rlockOwner: (lock: RLock) => OwnerWord;

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
  #o: OwnerWord = new OwnerWord("RLock", () => this.release());

  static {
    rlockOwner = (lock) => lock.#o;
  }

  /**
   * Acquires (or re-enters) the lock without blocking the thread.
   *
   * @returns True once held; false as {@linkcode Lock.acquire}.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#o.acquire(options);
  }

  /** {@linkcode RLock.acquire} that blocks the thread (`Atomics.wait`). */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#o.acquireSync(options);
  }

  /**
   * Releases one level; the lock is free once every acquire was released.
   *
   * @throws {ProcessError} when this process does not hold it.
   */
  release(): void {
    const w = this.#o.w;
    if (!isMine(w, OWNER)) {
      const s = Atomics.load(w, OWNER);
      throw new ProcessError(
        s === 0
          ? "release() of an unlocked RLock: acquire it first"
          : `release() of an RLock held by another process (ident ${
            ownerIdent(s)
          }): only its holder can release it`,
      );
    }
    if (--w[COUNT] === 0) unlock(w, OWNER);
  }

  /** True when this process holds the lock. */
  isMine(): boolean {
    return isMine(this.#o.w, OWNER);
  }

  /** Acquires and returns a guard that releases: `using _ = await rlock.hold();`. */
  hold(options?: HoldOptions): Promise<Disposable> {
    return this.#o.hold(options);
  }

  /** {@linkcode RLock.hold} that blocks the thread: `using _ = rlock.holdSync();`. */
  holdSync(options?: HoldOptions): Disposable {
    return this.#o.holdSync(options);
  }

  /** How many times this lock was taken over from a process that died holding it. */
  get abandoned(): number {
    return this.#o.abandoned;
  }

  /** How the lock crosses into another process: its shared memory. */
  [reduceSymbol](): Reduced {
    return { tag: "mp.RLock", state: this.#o.w.buffer };
  }

  /** `RLock { locked: true, mine: true, count: 2 }` (Python's repr): reads its shared memory, never waits. */
  toString(): string {
    if (!this.#o.locked) return repr("RLock", { locked: false });
    // The count is the holder's own: only it can read it as it stands.
    const mine = this.isMine();
    return repr("RLock", {
      locked: true,
      mine,
      count: mine ? this.#o.w[COUNT] : undefined,
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
export function holds(lock: AnyLock): boolean {
  return isMine(ownerOf(lock).w, OWNER);
}

/** Frees `lock` entirely; returns the recursion level to restore. */
export function releaseAll(lock: AnyLock): number {
  if (lock instanceof Lock) {
    lock.release();
    return 1;
  }
  const w = ownerOf(lock).w;
  const count = w[COUNT];
  w[COUNT] = 1;
  lock.release();
  return count;
}

/** Gives `lock` back the recursion level {@linkcode releaseAll} returned. */
export function restoreLevel(lock: AnyLock, count: number): void {
  if (lock instanceof RLock) ownerOf(lock).w[COUNT] = count;
}
