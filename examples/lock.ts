/**
 * The "classes" tutorial's Lock section as a program: a lock lets one process claim a
 * piece of code so that no other process runs it until the lock is
 * released. `acquire()` claims it, `release()` releases it; Python's
 * `with lock:` is `using _ = await lock.hold();`. Last, beyond Python: a
 * process that ends while holding the lock does not block the others forever.
 *
 * Run: `deno task example:lock`
 *
 * @module
 */
import { currentProcess, Event, Lock, Process } from "../mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Claims the lock, works a little, releases it. */
export async function printWithLock(lock: Lock) {
  const name = currentProcess().name;
  await lock.acquire(); // claim the lock: the others wait here
  try {
    console.log(`${name} claimed the lock`);
    await sleep(50); // no other process prints in between
    console.log(`${name} releases the lock`);
  } finally {
    lock.release(); // release the lock
  }
}

/** The same with the lock as a context manager (Python's `with lock:`). */
export async function printWithContext(lock: Lock) {
  const name = currentProcess().name;
  using _ = await lock.hold();
  console.log(`${name} claimed the lock (using)`);
  await sleep(50);
  console.log(`${name} releases the lock (using)`);
}

/** Claims the lock and never releases it. */
export async function holdForever(lock: Lock, held: Event) {
  await lock.acquire();
  console.log(`${currentProcess().name} claimed the lock and keeps it`);
  held.set();
  await new Promise(() => setInterval(() => {}, 1000));
}

if (import.meta.main) {
  const lock = new Lock();
  for (const target of [printWithLock, printWithContext]) {
    const procs = [1, 2, 3].map(() => new Process({ target, args: [lock] }));
    for (const p of procs) await p.start();
    for (const p of procs) await p.join();
  }

  const held = new Event();
  const holder = new Process({ target: holdForever, args: [lock, held] });
  await holder.start();
  await held.wait();
  const waiting = lock.acquire(); // blocked: the holder keeps it
  holder.terminate();
  console.log(`${holder.name} was terminated while holding the lock`);
  await waiting;
  console.log(
    `main claimed the lock anyway; lock.abandoned = ${lock.abandoned}`,
  );
  lock.release();
}
