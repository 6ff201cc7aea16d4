/**
 * Waiting on shared memory, the one place that knows Deno's quirks:
 * a pending `Atomics.waitAsync` does not keep the event loop alive, so every
 * async wait holds a ref'd timer for as long as it waits; and waits are cut in
 * slices so that a waiter can notice a dead peer (see `_proctable.ts`) without
 * a busy loop.
 *
 * @module
 */

import { haltIfEnded } from "./_proctable.ts";
import { traceAsyncWait, traceWait, tracing } from "../trace/_writer.ts";
import { showNumber } from "../_show.ts";

/** How a wait ended. */
export type WaitResult = "ok" | "not-equal" | "timed-out";

/** Longest single slice of a wait, so liveness checks run at least this often. */
export const SLICE_MS = 50;

// One interval for the whole thread, ref'd only while some async wait is
// pending (cheaper than a timer per wait: waits sit on the hot path).
let keepAliveTimer: number | undefined;
let pending = 0;
/**
 * Set in a Web Worker child: its event loop waits for messages whatever is
 * pending, so its waits need no timer, and a Web Worker's first timer costs
 * 4-11 ms (Deno sets timers up on first use; a node worker's are set up).
 */
let loopHeld = false;

/** This thread's event loop never ends by itself (a Web Worker's): async waits make no timer to hold it. */
export function loopStaysAlive(): void {
  loopHeld = true;
}

function hold(): void {
  if (pending++ === 0 && !loopHeld) {
    keepAliveTimer ??= setInterval(() => {}, 2 ** 30) as unknown as number;
    Deno.refTimer(keepAliveTimer);
  }
}

function released<T>(v: T): T {
  if (--pending === 0 && keepAliveTimer !== undefined) {
    Deno.unrefTimer(keepAliveTimer);
  }
  haltIfEnded();
  return v;
}

/**
 * `Atomics.waitAsync` that keeps the program alive while it waits and honours
 * `timeoutMs` (undefined = forever). With `holds` false it does not: for a
 * loop that serves waiters who hold the program themselves (a pool's results
 * loop: a result nobody waits for must not keep the program alive).
 */
export function waitAsync(
  i32: Int32Array,
  index: number,
  expected: number,
  timeoutMs?: number,
  holds = true,
): Promise<WaitResult> | WaitResult {
  const ms = timeoutMs === undefined || timeoutMs > MAX_TIMER_MS
    ? undefined
    : Math.max(0, timeoutMs);
  const r = Atomics.waitAsync(i32, index, expected, ms);
  if (!r.async) return r.value;
  if (!holds) {
    return r.value.then((v) => {
      haltIfEnded();
      return v;
    });
  }
  hold();
  if (tracing) return traceAsyncWait(r.value.then(released), i32, index);
  return r.value.then(released);
}

/**
 * Keeps the program alive until `p` settles: for waits on things that do not
 * hold the event loop themselves (an unref'd daemon worker's exit, ...).
 */
export function keepAlive<T>(p: Promise<T>): Promise<T> {
  hold();
  return p.finally(() => released(undefined));
}

/**
 * Resolves `true` once `p` settles (either way), or `false` once `timeoutMs`
 * passed first (undefined or `Infinity` = forever). The one timed wait on a
 * promise: `p` itself is left alone.
 */
export function settlesWithin(
  p: Promise<unknown>,
  timeoutMs?: number,
): Promise<boolean> {
  const settled = p.then(() => true, () => true);
  // setTimeout would fire at once for Infinity (past 2^31 - 1 ms); a wait
  // with no timer holds the program itself (a pool's results loop does not).
  if (timeoutMs === undefined || timeoutMs === Infinity) {
    return keepAlive(settled);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    settled,
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs)),
  ]).finally(() => clearTimeout(timer));
}

/** `Atomics.wait`, with `timeoutMs` (undefined = forever). */
export function waitSync(
  i32: Int32Array,
  index: number,
  expected: number,
  timeoutMs?: number,
): WaitResult {
  // In slices, so that a process terminated while it blocks here halts
  // (see haltIfEnded), and work that needs this thread goes on meanwhile.
  const end = deadline(timeoutMs);
  const t0 = tracing ? performance.now() : 0;
  while (true) {
    let slice = sliceUntil(end);
    for (const hook of blockingHooks) {
      if (hook()) slice = Math.min(slice, BUSY_SLICE_MS);
    }
    const r = Atomics.wait(i32, index, expected, slice);
    haltIfEnded();
    if (r !== "timed-out" || performance.now() >= end) {
      if (tracing) traceWait(t0, i32, index);
      return r;
    }
  }
}

/** Slice of a blocking wait while a hook still has work pending (ms). */
const BUSY_SLICE_MS = 1;
const blockingHooks: (() => boolean)[] = [];

/**
 * Registers work that must go on while this thread blocks in
 * {@linkcode waitSync} (which starves the event loop): `hook` runs before
 * each slice of every blocking wait, and returns true while it still has
 * work pending (then slices are short). The rings use it to go on writing
 * what a process put but could not write yet: without it, a process that
 * sends a big item and then blocks would never finish sending it.
 */
export function onBlockingWait(hook: () => boolean): void {
  blockingHooks.push(hook);
}

/**
 * The longest delay a timer takes (2^31 - 1 ms, about 24.8 days): Deno's and
 * Node's `setTimeout` fire at once past it. A longer timeout waits forever.
 */
export const MAX_TIMER_MS = 0x7fffffff;

/** A deadline from a timeout in ms; `Infinity` when there is none. */
export function deadline(timeoutMs?: number): number {
  return timeoutMs === undefined || timeoutMs > MAX_TIMER_MS
    ? Infinity
    : performance.now() + Math.max(0, timeoutMs);
}

/** Milliseconds left until `deadline`, cut to one slice. */
export function sliceUntil(deadline: number): number {
  const left = deadline - performance.now();
  return Math.max(0, Math.min(SLICE_MS, left));
}

/**
 * The one check of a timeout, for every wait of the module: returns it in
 * ms, or `undefined` for "forever" (undefined, `Infinity`, or longer than a
 * timer can wait, see {@linkcode MAX_TIMER_MS}). Throws a TypeError for a
 * non-number and a RangeError for NaN or a negative number, naming `what`
 * and the value.
 */
export function checkTimeout(
  timeoutMs: unknown,
  what = "timeout",
): number | undefined {
  if (timeoutMs === undefined) return undefined;
  if (typeof timeoutMs === "number" && timeoutMs >= 0) {
    return timeoutMs > MAX_TIMER_MS ? undefined : timeoutMs;
  }
  const fix =
    `${what} must be a non-negative number of milliseconds or undefined (wait forever), got ${
      showNumber(timeoutMs)
    }`;
  throw typeof timeoutMs === "number"
    ? new RangeError(fix)
    : new TypeError(fix);
}
