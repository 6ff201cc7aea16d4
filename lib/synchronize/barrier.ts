/**
 * {@linkcode Barrier}: Python's barrier (fill, drain, reset, break) run under
 * a {@linkcode Condition}, with a table of the parties inside so that one
 * whose process ended breaks the round it waited in.
 *
 * @module
 */

import {
  BrokenBarrierError,
  ProcessError,
  TargetNotExportedError,
} from "../errors.ts";
import { type Reduced, reduceSymbol, registerRebuilder } from "../reduction.ts";
import { checkTimeout, deadline, SLICE_MS } from "../shm/_wait.ts";
import { holderGone, selfMark } from "../shm/_owner.ts";
import {
  resolveLoadedRef,
  resolveRef,
  type TargetRef,
  targetRef,
} from "../process/_target.ts";
import { repr } from "../_inspect.ts";
import { checkCount, grow, growableWords } from "./_common.ts";
import { show } from "../_show.ts";
import { checkKeys } from "../_options.ts";
import { Lock } from "./lock.ts";
import { Condition } from "./condition.ts";

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

  /**
   * Creates a barrier for `parties` processes.
   *
   * @throws {RangeError} unless `parties` is a positive integer; for a
   *   negative or NaN `timeout`.
   * @throws {TypeError} for an unknown option or an `action` that is not a
   *   function.
   */
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
   * Waits until `parties` processes wait.
   *
   * @param timeoutMs The most to wait; default: the barrier's `timeout`.
   * @returns This party's index, from 0; the last to arrive gets
   *   `parties - 1` and runs the action.
   * @throws {BrokenBarrierError} (rejects) when the barrier is or becomes
   *   broken (`abort()`, `reset()`, a party that ended), or `timeoutMs` runs
   *   out (then it breaks for every party).
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
      if (!holderGone(mark)) continue;
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
