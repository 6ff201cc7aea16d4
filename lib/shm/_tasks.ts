/**
 * JoinableQueue's count of unfinished tasks, in its ring's control words:
 * each `put` adds one, each `taskDone()` takes one, `join()` waits for 0.
 *
 * @module
 */

import type { ItemRing } from "./_ring.ts";
import { JOIN_WAITERS, UNFINISHED } from "./_ring_layout.ts";

/** One more unfinished task (each `put`). */
export function addUnfinished(ring: ItemRing): void {
  Atomics.add(ring.ctl, UNFINISHED, 1);
}

/** One task done; false when none was unfinished. */
export function taskDone(ring: ItemRing): boolean {
  const ctl = ring.ctl;
  for (;;) {
    const n = Atomics.load(ctl, UNFINISHED);
    if (n <= 0) return false;
    if (Atomics.compareExchange(ctl, UNFINISHED, n, n - 1) === n) {
      if (n === 1) ring.notify(UNFINISHED, JOIN_WAITERS);
      return true;
    }
  }
}

/** True when no task is unfinished; else says what to wait for (`ring.waitSync` / `waitAsync`). */
export function allDone(ring: ItemRing): boolean {
  const n = Atomics.load(ring.ctl, UNFINISHED);
  if (n <= 0) return true;
  ring.waitFor(UNFINISHED, n, JOIN_WAITERS);
  return false;
}
