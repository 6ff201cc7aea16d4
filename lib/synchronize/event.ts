/**
 * {@linkcode Event}: one shared flag word that its waiters sleep on.
 *
 * @module
 */

import { type Reduced, reduceSymbol, registerRebuilder } from "../reduction.ts";
import { checkTimeout, deadline, waitAsync, waitSync } from "../shm/_wait.ts";
import { repr } from "../_inspect.ts";
import { adopt, words } from "./_common.ts";

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

  /**
   * Waits until the flag is set.
   *
   * @param timeoutMs The most to wait; undefined: forever; 0: only look.
   * @returns True once set; false when `timeoutMs` ran out first.
   * @throws {RangeError} (rejects) for a negative or NaN `timeoutMs`.
   */
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
