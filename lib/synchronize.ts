/**
 * Synchronization between processes, as Python's `multiprocessing` has it:
 * {@linkcode Lock}, {@linkcode RLock}, {@linkcode Semaphore},
 * {@linkcode BoundedSemaphore}, {@linkcode Event}, {@linkcode Condition} and
 * {@linkcode Barrier}, all over SharedArrayBuffer and Atomics, so they work
 * across workers running truly in parallel.
 *
 * Every wait is async (`Atomics.waitAsync`, the thread stays free) and has a
 * `...Sync` twin that blocks the thread with `Atomics.wait` (for workers and
 * tight loops). Timeouts are milliseconds; `undefined` waits forever. Each
 * object crosses into a child inside `args` (see `reduction.ts`) and is the
 * same object there: the same shared memory.
 *
 * Beyond Python: a process that ends while holding a Lock, RLock or Semaphore
 * (terminated, crashed, `exit()`) does not leave the others blocked forever.
 * The next waiter takes the lock over, the lock's `abandoned` count goes up
 * and a warning is printed once, since the data it protects may be
 * half-written. A Condition waiter whose process ended is never notified in
 * place of a live one, and a Barrier party whose process ended breaks the
 * round it waited in. A terminated process that still runs (busy in
 * synchronous code) is halted when it next acquires, or releases what was
 * taken over from it.
 *
 * Misuse throws {@linkcode ProcessError}: releasing an unlocked Lock, an
 * RLock this process does not hold, a BoundedSemaphore past its start value,
 * or waiting on (notifying) a Condition whose lock is not held.
 *
 * @module
 */

export type { AcquireOptions, HoldOptions } from "./synchronize/_common.ts";
export { type AnyLock, Lock, RLock } from "./synchronize/lock.ts";
export { BoundedSemaphore, Semaphore } from "./synchronize/semaphore.ts";
export { Event } from "./synchronize/event.ts";
export { Condition } from "./synchronize/condition.ts";
export { Barrier, type BarrierOptions } from "./synchronize/barrier.ts";
