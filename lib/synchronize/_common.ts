/**
 * What the synchronization primitives share: their options, the shared
 * memory they are made over (fresh, or handed over by a rebuilder), and the
 * acquire / hold / takeover plumbing of the locks and semaphores.
 *
 * @module
 */

import { TimeoutError } from "../errors.ts";
import { haltIfEnded } from "../shm/_proctable.ts";
import { checkTimeout } from "../shm/_wait.ts";
import { show, showNumber } from "../_show.ts";
import { checkKeys } from "../_options.ts";
import type { LockOutcome } from "../shm/_owner.ts";

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

/** The buffer a rebuilder hands to the constructor it calls next. */
let adopted: SharedArrayBuffer | undefined;

/** An object's words: the buffer a rebuilder hands over, else fresh memory. */
export function words(bytes: number): Int32Array {
  const buffer = adopted ?? new SharedArrayBuffer(bytes);
  adopted = undefined;
  return new Int32Array(buffer);
}

/**
 * {@linkcode words} over a growable buffer, for the tables of waiters and
 * holders: they grow (in every process at once) as more processes use them.
 */
export function growableWords(bytes: number, maxBytes: number): Int32Array {
  const buffer = adopted ??
    new SharedArrayBuffer(bytes, { maxByteLength: maxBytes });
  adopted = undefined;
  return new Int32Array(buffer); // tracks the buffer's length
}

/** Grows `w` to at least `n` words (doubling); false when at its limit. */
export function grow(w: Int32Array, n: number): boolean {
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

/** True while a rebuilder hands its buffer to the constructor being run: the state is there already. */
export function adopting(): boolean {
  return adopted !== undefined;
}

/** Runs `make` (a constructor) over `buffer` instead of fresh memory. */
export function adopt<T>(buffer: SharedArrayBuffer, make: () => T): T {
  adopted = buffer;
  try {
    return make();
  } finally {
    adopted = undefined;
  }
}

/** The timeout `acquire` options come to: 0 for a non-blocking try. */
export function acquireTimeout(
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
  if (blocking === false && timeout !== undefined && options.timeout !== 0) {
    // Python: "can't specify a timeout for a non-blocking call".
    throw new TypeError(
      `acquire({ blocking: false, timeout: ${options.timeout} }): a non-blocking try takes no timeout; ` +
        `write acquire({ blocking: false }) or acquire({ timeout: ${options.timeout} })`,
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
export function abandonedBy(
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

export function guardFor(release: () => void): Disposable {
  return { [Symbol.dispose]: release };
}

/** What `hold()` needs of a lock or semaphore. */
export interface Acquirable {
  acquire(options?: AcquireOptions): Promise<boolean>;
  acquireSync(options?: AcquireOptions): boolean;
}

/** `hold()`: acquires, then returns `guard`; throws TimeoutError when it could not. */
export async function holdAsync(
  lock: Acquirable,
  guard: Disposable,
  what: string,
  options: HoldOptions | undefined,
): Promise<Disposable> {
  if (!(await lock.acquire(options))) throw notHeld(what, options?.timeout);
  return guard;
}

/** `holdSync()`: {@linkcode holdAsync} that blocks the thread. */
export function holdBlocking(
  lock: Acquirable,
  guard: Disposable,
  what: string,
  options: HoldOptions | undefined,
): Disposable {
  if (!lock.acquireSync(options)) throw notHeld(what, options?.timeout);
  return guard;
}

/** Ends a slow-path acquire: `false` on timeout; counts and reports a takeover. */
export function settle(
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

export const TRUE: Promise<boolean> = Promise.resolve(true);

/** Checks a count (a semaphore's value, a barrier's parties, notify's n). */
export function checkCount(value: unknown, what: string): number {
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

/** What `v` is, for an error message: its class or its type. */
