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
import { traceAsyncWait, traceWait, tracing } from "./_trace.ts";

/** How a wait ended. */
export type WaitResult = "ok" | "not-equal" | "timed-out";

/** Longest single slice of a wait, so liveness checks run at least this often. */
export const SLICE_MS = 50;

// One interval for the whole thread, ref'd only while some async wait is
// pending (cheaper than a timer per wait: waits sit on the hot path).
let keepAliveTimer: number | undefined;
let pending = 0;

function hold(): void {
  if (pending++ === 0) {
    keepAliveTimer ??= setInterval(() => {}, 2 ** 30) as unknown as number;
    Deno.refTimer(keepAliveTimer);
  }
}

function released<T>(v: T): T {
  if (--pending === 0) Deno.unrefTimer(keepAliveTimer!);
  haltIfEnded();
  return v;
}

/**
 * `Atomics.waitAsync` that keeps the program alive while it waits and honours
 * `timeoutMs` (undefined = forever).
 */
export function waitAsync(
  i32: Int32Array,
  index: number,
  expected: number,
  timeoutMs?: number,
): Promise<WaitResult> | WaitResult {
  const ms = timeoutMs === undefined || timeoutMs === Infinity
    ? undefined
    : Math.max(0, timeoutMs);
  const r = Atomics.waitAsync(i32, index, expected, ms);
  if (!r.async) return r.value;
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

/** A deadline from a timeout in ms; `Infinity` when there is none. */
export function deadline(timeoutMs?: number): number {
  return timeoutMs === undefined || timeoutMs === Infinity
    ? Infinity
    : performance.now() + Math.max(0, timeoutMs);
}

/** Milliseconds left until `deadline`, cut to one slice. */
export function sliceUntil(deadline: number): number {
  const left = deadline - performance.now();
  return Math.max(0, Math.min(SLICE_MS, left));
}

/** Rejects a timeout that is not a non-negative number (or undefined). */
export function checkTimeout(timeoutMs: unknown, what = "timeout"): void {
  if (timeoutMs === undefined) return;
  if (
    typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0
  ) {
    throw new RangeError(
      `${what} must be a non-negative number of milliseconds or undefined (wait forever), got ${
        String(timeoutMs)
      }`,
    );
  }
}
