/**
 * {@linkcode Semaphore} and {@linkcode BoundedSemaphore}: a count of units
 * and a table of who holds how many, so that the units of a process that
 * ended come back.
 *
 * @module
 */

import { ProcessError } from "../errors.ts";
import { type Reduced, reduceSymbol, registerRebuilder } from "../reduction.ts";
import { deadline, sliceUntil, waitAsync, waitSync } from "../shm/_wait.ts";
import { holderGone, selfMark, takeOver } from "../shm/_owner.ts";
import { repr } from "../_inspect.ts";
import {
  abandonedBy,
  type AcquireOptions,
  acquireTimeout,
  adopt,
  adopting,
  checkCount,
  grow,
  growableWords,
  guardFor,
  holdAsync,
  holdBlocking,
  type HoldOptions,
} from "./_common.ts";

const S_VALUE = 0;
const S_SLEEPERS = 1;
const S_ABANDONED = 2;
const S_CAP = 3; // most units one process is recorded as holding: the start value
const S_MAX = 4; // BoundedSemaphore's bound, -1 when unbounded
const S_SLOTS = 8; // then pairs (ident + 1, units held), a table that grows
const S_FIRST_BYTES = (S_SLOTS + 2 * 64) * 4;
// As many holders as processes can be alive at once (see shm/_proctable.ts).
const S_MAX_BYTES = (S_SLOTS + 2 * 65536) * 4;
const RECLAIMING = -1;

let semWords: (sem: Semaphore) => Int32Array;

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

  /**
   * Creates a semaphore holding `value` units (default 1).
   *
   * @throws {RangeError} unless `value` is an integer from 0 to 2^31 - 1.
   */
  constructor(value = 1) {
    checkCount(value, "Semaphore value");
    const fresh = !adopting();
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
        if (id <= 0 || i === mine || holderGone(id) !== ended) continue;
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
      // Taken as RECLAIMING, not by this process: the units go back to all.
      if (id <= 0 || !takeOver(w, i, id, RECLAIMING)) continue;
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

  /**
   * Takes one unit, waiting while there is none, without blocking the thread.
   *
   * @param options `{ blocking: false }` or `{ timeout: 0 }`: one try.
   * @returns True once a unit is taken; false when `timeout` ran out first,
   *   or none was left and `blocking` is false.
   */
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
   * Gives one unit back, waking a waiter.
   *
   * @throws {ProcessError} on a BoundedSemaphore, for a release past its
   *   start value.
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

  /**
   * Takes a unit and returns a guard that gives it back:
   * `using _ = await sem.hold();`.
   *
   * @throws {TimeoutError} (rejects) when `timeout` runs out first.
   */
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
    const fresh = !adopting();
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
