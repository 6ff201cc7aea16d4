/**
 * The writes a ring could not take yet: a producer never blocks on a full
 * ring (Python's `put` never blocks on an unbounded queue), so what does not
 * fit is buffered in this process and written by an async flusher as space
 * frees. Blocking waits push the writes on themselves (a thread blocked in a
 * wait starves the event loop the flushers need), and a child process awaits
 * its flushers before it ends (`process/_atexit.ts`). What a pipe's reader
 * can no longer read (its end closed, its process ended) is dropped.
 *
 * @module
 */

import { ProcessError } from "../errors.ts";
import { atExit } from "../process/_atexit.ts";
import { onBlockingWait } from "./_wait.ts";

/** What a flusher needs of its ring (`ItemRing`). */
export interface Flushable {
  /** Writes what fits now of the buffered items; true when none is left. */
  flushStep(patient?: boolean): boolean;
  /** Waits for what the last step that wrote nothing asked for. */
  waitAsync(deadline: number): Promise<void>;
  /** Drops the buffered items when nobody can read them any more; true when it did. */
  dropIfUnread(): boolean;
}

/** Flushers a child awaits before it ends. */
const draining = new Set<Flusher>();
/** Flushers of rings with items this process could not write yet. */
const flushing = new Set<Flusher>();
onBlockingWait(() => {
  for (const flusher of flushing) {
    try {
      const ring = flusher.ring;
      if (ring.flushStep(false) || ring.dropIfUnread()) {
        flushing.delete(flusher);
      }
    } catch {
      // Terminated: the flusher itself stops.
    }
  }
  return flushing.size > 0;
});
atExit(async () => {
  while (draining.size) {
    await Promise.all([...draining].map((f) => f.drain()));
  }
});

/** One ring's flusher in this process. */
export class Flusher {
  #running: Promise<void> | null = null;
  #joinAtExit = true;

  constructor(readonly ring: Flushable) {}

  /** Writes the ring's buffered items in the background until none is left. */
  start(): void {
    // In `flushing` whenever items are pending, even while an earlier
    // flusher still awaits: a thread looping on putSync never lets that one
    // run, and only the blocking-wait hook writes for it (it drops rings it
    // emptied).
    if (this.#joinAtExit) draining.add(this);
    flushing.add(this);
    if (this.#running) return;
    this.#running = (async () => {
      await null; // let the caller record the promise first
      try {
        // A wait is one slice (the ring's): then look whether anyone can
        // still read what is left.
        while (!this.ring.flushStep() && !this.ring.dropIfUnread()) {
          await this.ring.waitAsync(Infinity);
        }
      } catch (e) {
        if (!(e instanceof ProcessError)) throw e; // terminated: stop writing
      } finally {
        this.#running = null;
        draining.delete(this);
        flushing.delete(this);
      }
    })();
  }

  /** Resolves once every item this process put is in the ring. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Python's `cancel_join_thread`: this process will not wait for its buffered items when it ends. */
  cancelDrainAtExit(): void {
    this.#joinAtExit = false;
    draining.delete(this);
  }
}
