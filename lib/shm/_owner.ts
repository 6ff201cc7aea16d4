/**
 * The owner word: the one algorithm behind Lock and RLock (and the check
 * Condition makes that its lock is held).
 *
 * One Int32 word says who holds the lock: 0 when free, else the holder's
 * ident + 1 (the main program is ident 0), with {@linkcode CONTENDED} (the
 * sign bit) set once someone may be sleeping on it. Taking a free lock is a
 * single `compareExchange`; releasing it is a single `exchange` that calls
 * `Atomics.notify` only when the contended bit was set. A waiter sleeps in
 * slices of at most `SLICE_MS` and, between slices, asks the process table
 * whether the holder is still alive: when it is not, the waiter takes the lock
 * over (it is "abandoned") and the caller is told, so that it can count and
 * report it.
 *
 * The same takeover ({@linkcode takeOver}, "the holder's process ended" as
 * {@linkcode holderGone}) serves every word that names a holding process: a
 * ring's locks and its spinner, a semaphore's holder slots.
 *
 * @module
 */

import {
  currentIdent,
  haltIfEnded,
  isIdentAlive,
  isSelfEnded,
} from "./_proctable.ts";
import { ProcessError } from "../errors.ts";
import { deadline, sliceUntil, waitAsync, waitSync } from "./_wait.ts";

/** Set in the owner word when a waiter may be sleeping on it. */
export const CONTENDED: number = 0x80000000 | 0;

/** The owner word's value for this process (its ident + 1, never 0). */
export function selfMark(): number {
  return currentIdent() + 1;
}

/** The ident of the process a non-zero owner word names. */
export function ownerIdent(word: number): number {
  return (word & ~CONTENDED) - 1;
}

/**
 * True when the owner word value `word` names a process that ended (0, free,
 * names none). With `graceMs`, only once this process has seen it ended for
 * that long: a terminated worker busy in synchronous code runs on until it
 * returns to its event loop.
 */
export function holderGone(word: number, graceMs = 0): boolean {
  if (word === 0) return false;
  const ident = ownerIdent(word);
  if (isIdentAlive(ident)) {
    if (graceMs > 0) deadSince.delete(ident);
    return false;
  }
  if (graceMs <= 0) return true;
  const now = performance.now();
  const first = deadSince.get(ident);
  if (first === undefined) {
    deadSince.set(ident, now);
    return false;
  }
  return now - first >= graceMs;
}

/** When this process first saw each ended holder that a grace applies to. */
const deadSince = new Map<number, number>();

/**
 * Takes the word at `index` over from `seen` (an owner word value) when its
 * holder is {@linkcode holderGone} (after `graceMs`): one compareExchange to
 * `mark`. True when this caller took it.
 */
export function takeOver(
  w: Int32Array,
  index: number,
  seen: number,
  mark: number,
  graceMs = 0,
): boolean {
  return holderGone(seen, graceMs) &&
    Atomics.compareExchange(w, index, seen, mark) === seen;
}

/** True when the owner word at `index` names this process. */
export function isMine(w: Int32Array, index: number): boolean {
  return (Atomics.load(w, index) & ~CONTENDED) === selfMark();
}

/**
 * Frees the owner word; returns what it held (0 when it was already free,
 * which the caller turns into its error).
 */
export function unlock(w: Int32Array, index: number): number {
  const me = selfMark();
  // The common case in one step: our own hold, nobody sleeping.
  if (Atomics.compareExchange(w, index, me, 0) === me) return me;
  for (;;) {
    const old = Atomics.load(w, index);
    if (old === 0) return 0;
    // Another process's hold (a Lock may be released by any process), but
    // not by one that was ended: whoever took the lock over from it holds
    // it now. Checked after the load: a takeover follows the mark.
    if ((old & ~CONTENDED) !== me) refuseIfEnded();
    if (Atomics.compareExchange(w, index, old, 0) === old) {
      if (old < 0) Atomics.notify(w, index, 1);
      return old;
    }
  }
}

/** Halts (or, where it cannot, throws in) a process that was ended but runs on. */
function refuseIfEnded(): void {
  if (!isSelfEnded()) return;
  haltIfEnded();
  throw new ProcessError(
    "this process was terminated (terminate() or kill()) while it held a lock: " +
      "another process has taken it over, so this release() would free that one's hold",
  );
}

/**
 * One step of the slow path, shared by the sync and async waits: the lock
 * was taken, taken over from a dead holder, or the caller should sleep on the
 * given (contended) word value. `undefined`: the word changed under us, retry.
 */
type Step = { kind: "taken" } | { kind: "stolen"; from: number } | {
  kind: "sleep";
  on: number;
};

const TAKEN: Step = { kind: "taken" };

function step(w: Int32Array, index: number, me: number): Step | undefined {
  const s = Atomics.load(w, index);
  if (s === 0) {
    // Taken through the slow path: keep the contended bit, since others may
    // still sleep (the next release then wakes one of them).
    return Atomics.compareExchange(w, index, 0, me | CONTENDED) === 0
      ? TAKEN
      : undefined;
  }
  // No grace: a holder that ended but runs on is halted (or refused) when it
  // next acquires or releases (refuseIfEnded).
  if (holderGone(s)) {
    return Atomics.compareExchange(w, index, s, me | CONTENDED) === s
      ? { kind: "stolen", from: ownerIdent(s) }
      : undefined;
  }
  if (s >= 0) {
    const c = s | CONTENDED;
    return Atomics.compareExchange(w, index, s, c) === s
      ? { kind: "sleep", on: c }
      : undefined;
  }
  return { kind: "sleep", on: s };
}

/** What a slow-path acquire ended with. */
export type LockOutcome = "taken" | "timed-out" | { abandonedBy: number };

function outcome(st: Step): LockOutcome {
  return st.kind === "stolen" ? { abandonedBy: st.from } : "taken";
}

/**
 * Takes the owner word for this process, sleeping with `Atomics.wait` until it
 * is free, its holder died, or `timeoutMs` ran out.
 */
export function lockSync(
  w: Int32Array,
  index: number,
  timeoutMs?: number,
): LockOutcome {
  const me = selfMark();
  const end = deadline(timeoutMs);
  for (;;) {
    const st = step(w, index, me);
    if (st === undefined) continue;
    if (st.kind !== "sleep") return outcome(st);
    const slice = sliceUntil(end);
    if (slice <= 0) return "timed-out";
    waitSync(w, index, st.on, slice);
  }
}

/** {@linkcode lockSync} with `Atomics.waitAsync`: never blocks the thread. */
export async function lockAsync(
  w: Int32Array,
  index: number,
  timeoutMs?: number,
): Promise<LockOutcome> {
  const me = selfMark();
  const end = deadline(timeoutMs);
  for (;;) {
    const st = step(w, index, me);
    if (st === undefined) continue;
    if (st.kind !== "sleep") return outcome(st);
    const slice = sliceUntil(end);
    if (slice <= 0) return "timed-out";
    await waitAsync(w, index, st.on, slice);
  }
}
