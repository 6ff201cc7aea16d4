/**
 * {@linkcode Condition}: a table of waiters, each sleeping on its own slot,
 * over a {@linkcode Lock} or {@linkcode RLock}.
 *
 * @module
 */

import { ProcessError } from "../errors.ts";
import { type Reduced, reduceSymbol, registerRebuilder } from "../reduction.ts";
import { checkTimeout, deadline, waitAsync, waitSync } from "../shm/_wait.ts";
import { holderGone, selfMark, takeOver } from "../shm/_owner.ts";
import { repr } from "../_inspect.ts";
import { show } from "../_show.ts";
import {
  type AcquireOptions,
  adopt,
  checkCount,
  grow,
  growableWords,
  type HoldOptions,
} from "./_common.ts";
import {
  type AnyLock,
  holds,
  Lock,
  releaseAll,
  restoreLevel,
  RLock,
} from "./lock.ts";

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

function checkPredicate(predicate: unknown, what: string): void {
  if (typeof predicate !== "function") {
    throw new TypeError(
      `${what}() takes a predicate function first, got ${
        show(predicate)
      }; write ${what}(() => ready, timeoutMs)`,
    );
  }
}

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

  /**
   * Creates a condition over `lock` (a new {@linkcode RLock} by default).
   *
   * @throws {TypeError} when `lock` is not a Lock or an RLock of this module.
   */
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
        const took = mark === 0
          ? Atomics.compareExchange(w, i, 0, me) === 0
          : mark > 0 && takeOver(w, i, mark, me);
        if (!took) continue;
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
   * Releases the lock, waits for a notify, then holds the lock again (also
   * on timeout).
   *
   * @param timeoutMs The most to wait for a notify; undefined: forever.
   * @returns True when notified, false when `timeoutMs` ran out first.
   * @throws {ProcessError} when this process does not hold the lock.
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
   * wake-up), with the lock held as `wait` holds it.
   *
   * @param timeoutMs The most to wait in all; undefined: forever.
   * @returns The predicate's last value: falsy when `timeoutMs` ran out.
   */
  async waitFor<T>(
    predicate: () => T | Promise<T>,
    timeoutMs?: number,
  ): Promise<T> {
    checkPredicate(predicate, "waitFor");
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
    checkPredicate(predicate, "waitForSync");
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

  /**
   * Wakes up to `n` of the processes waiting now (default 1).
   *
   * @throws {ProcessError} when this process does not hold the lock.
   */
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
      if (mark <= 0 || ticket <= 0 || holderGone(mark)) continue;
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
      if (mark > 0 && Atomics.load(w, i + 1) > 0 && !holderGone(mark)) n++;
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
