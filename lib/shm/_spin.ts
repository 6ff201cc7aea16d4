/**
 * A brief, adaptive spin before a futex wait, for round trips between two
 * threads that answer each other within microseconds (a manager proxy and
 * its server, the two ends of a Pipe).
 *
 * Waking a thread parked in `Atomics.wait` costs ~7 us on a VM (the kernel
 * reschedules it, often with an interrupt to another core): a futex ping-pong
 * measured 14.5 us a round trip here, and 0.5 us when each side spins on
 * `Atomics.load` first. So a waiter that expects its answer soon watches the
 * word for up to {@linkcode SPIN_MS} before it parks.
 *
 * Spinning only pays while the other side runs on another core at the same
 * time. When the two share a core (a two-core machine with another program
 * loading one core), a spinner holds the very core the other side needs to
 * answer: every spin then runs to its end for nothing. So a spin that ends
 * without the answer turns spinning off for the next few waits, twice as
 * many each time it fails again (up to {@linkcode MAX_SKIP}); one that gets
 * its answer turns it back on. Under load the cost is then one wasted spin
 * every {@linkcode MAX_SKIP} waits, well under 1%.
 *
 * {@linkcode Spinner.spinThenBlock} is the one spin-then-block policy: spin
 * while that pays, then a brief futex wait ({@linkcode blockFor}, or the
 * caller's own counted wait), before the caller parks on an async wait.
 *
 * @module
 */

/** How long one spin watches the word (ms). */
export const SPIN_MS = 0.03;
/** The most waits a failed spin turns spinning off for. */
export const MAX_SKIP = 1024;

/**
 * A blocking wait of up to `ms` for the word a spin watched; true when it
 * changed. {@linkcode blockFor} by default; a ring passes its own, which
 * counts itself as a waiter so that the other side notifies.
 */
export type Block = (ms: number) => boolean;

/** One waiter's spin policy (keep one per waiting loop). */
export class Spinner {
  /** How long one spin watches the word (ms). */
  readonly #spinMs: number;
  /** Waits left before spinning is tried again. */
  #skip = 0;
  /** How many waits the next failure turns spinning off for. */
  #backoff = 2;

  /** A spinner whose spins last `spinMs` (default {@linkcode SPIN_MS}). */
  constructor(spinMs: number = SPIN_MS) {
    this.#spinMs = spinMs;
  }

  /**
   * Watches `i32[index]` for up to its spin length (and not past `until`, a
   * `performance.now()` time) while it equals `seen`; true as soon as it
   * differs. False at once while spinning is off, and after a spin that saw
   * no change (which turns it off for a while).
   */
  spin(
    i32: Int32Array,
    index: number,
    seen: number,
    until = Infinity,
  ): boolean {
    if (this.#skip > 0) {
      this.#skip--;
      return false;
    }
    const end = Math.min(until, performance.now() + this.#spinMs);
    do {
      for (let k = 0; k < 32; k++) {
        if (Atomics.load(i32, index) !== seen) {
          this.#backoff = 2;
          return true;
        }
      }
    } while (performance.now() < end);
    this.#skip = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, MAX_SKIP);
    return false;
  }

  /**
   * Spin, then block: {@linkcode Spinner.spin}, and when that saw no change,
   * blocks the thread up to `ms` (`block`, by default {@linkcode blockFor}'s
   * futex wait). True when `i32[index]` left `seen`; false tells the caller
   * to park on an async wait instead.
   */
  spinThenBlock(
    i32: Int32Array,
    index: number,
    seen: number,
    ms: number,
    block?: Block,
  ): boolean {
    if (this.spin(i32, index, seen)) return true;
    return block ? block(ms) : blockFor(i32, index, seen, ms);
  }
}

/**
 * Blocks the thread up to `ms` for `i32[index]` to leave `seen`, in a futex
 * wait (`Atomics.wait`): the other side's notify wakes it within
 * microseconds and it burns no CPU meanwhile. True when it changed.
 *
 * It does not spin: on a machine with fewer free cores than busy threads
 * (two cores, one of them loaded by another program), the two ends of a
 * channel share one core, and a thread spinning for its reply holds the very
 * core the other end needs to make it: every round trip then costs the whole
 * spin plus a reschedule (measured: ~10x slower, ~2,000 dict set+get pairs
 * a second instead of ~25,000). Callers spin first only through a
 * {@linkcode Spinner}, which stops spinning when spins stop paying.
 */
export function blockFor(
  i32: Int32Array,
  index: number,
  seen: number,
  ms: number,
): boolean {
  return Atomics.wait(i32, index, seen, ms) !== "timed-out";
}
