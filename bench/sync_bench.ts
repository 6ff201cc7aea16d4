/**
 * Locks beside Python's, in one run (the machine is noisy: only ratios taken
 * in the same run mean anything):
 *
 * - uncontended acquire + release per second: `acquireSync()`, `await
 *   acquire()`, `using _ = lock.holdSync()`, against Python's
 *   `lock.acquire(); lock.release()` and `with lock:`, and against a raw
 *   `Atomics.compareExchange` + `Atomics.store` loop (the ceiling);
 * - two processes each adding 1 to one shared Value 100,000 times under its
 *   lock: total time, against Python's `with value.get_lock():`.
 *
 * Run: `deno run --allow-all bench/sync_bench.ts` (needs `python3`).
 *
 * @module
 */
import { Event, Lock, Process, RLock, Value } from "../mod.ts";
import { runPython } from "./_python.ts";

const N_UNCONTENDED = 5_000_000;
const N_CONTENDED = 100_000;

/** Child: adds 1 to `value` `n` times under its lock, once `go` is set. */
export async function increment(
  value: Value<"i">,
  n: number,
  go: Event,
  sync: boolean,
) {
  await go.wait();
  const lock = value.getLock();
  if (sync) {
    for (let i = 0; i < n; i++) {
      using _ = lock.holdSync();
      value.value += 1;
    }
  } else {
    for (let i = 0; i < n; i++) {
      using _ = await lock.hold();
      value.value += 1;
    }
  }
}

function perSecond(n: number, fn: (n: number) => void): number {
  const t = performance.now();
  fn(n);
  return n / ((performance.now() - t) / 1000);
}

async function perSecondAsync(
  n: number,
  fn: (n: number) => Promise<void>,
): Promise<number> {
  const t = performance.now();
  await fn(n);
  return n / ((performance.now() - t) / 1000);
}

function raw(n: number): void {
  const w = new Int32Array(new SharedArrayBuffer(8));
  for (let i = 0; i < n; i++) {
    if (Atomics.compareExchange(w, 0, 0, 1) !== 0) throw new Error("held");
    Atomics.store(w, 0, 0);
  }
}

function lockSync(n: number): void {
  const lock = new Lock();
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    lock.release();
  }
}

function rlockSync(n: number): void {
  const lock = new RLock();
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    lock.release();
  }
}

function holdSync(n: number): void {
  const lock = new Lock();
  for (let i = 0; i < n; i++) {
    using _ = lock.holdSync();
  }
}

async function lockAsync(n: number): Promise<void> {
  const lock = new Lock();
  for (let i = 0; i < n; i++) {
    await lock.acquire();
    lock.release();
  }
}

async function contended(sync: boolean): Promise<number> {
  const value = new Value("i", 0);
  const go = new Event();
  const procs = [0, 1].map(() =>
    new Process({ target: increment, args: [value, N_CONTENDED, go, sync] })
  );
  for (const p of procs) await p.start();
  await new Promise((r) => setTimeout(r, 200)); // both wait on `go`
  const t = performance.now();
  go.set();
  for (const p of procs) await p.join();
  const s = (performance.now() - t) / 1000;
  if (value.value !== 2 * N_CONTENDED) {
    throw new Error(`lost updates: ${value.value}`);
  }
  return s;
}

function python(): Promise<Record<string, number>> {
  return runPython<Record<string, number>>("sync_bench.py");
}

if (import.meta.main) {
  const py = await python();
  // Rounds interleave the loops, so that noise hits them alike; best of each.
  let rawRate = 0, syncRate = 0, rlockRate = 0, holdRate = 0, asyncRate = 0;
  for (let round = 0; round < 5; round++) {
    rawRate = Math.max(rawRate, perSecond(N_UNCONTENDED, raw));
    syncRate = Math.max(syncRate, perSecond(N_UNCONTENDED, lockSync));
    rlockRate = Math.max(rlockRate, perSecond(N_UNCONTENDED, rlockSync));
    holdRate = Math.max(holdRate, perSecond(N_UNCONTENDED, holdSync));
    asyncRate = Math.max(
      asyncRate,
      await perSecondAsync(N_UNCONTENDED, lockAsync),
    );
  }
  let contSync = Infinity, contAsync = Infinity;
  for (let i = 0; i < 3; i++) {
    contSync = Math.min(contSync, await contended(true));
    contAsync = Math.min(contAsync, await contended(false));
  }
  const M = (x: number) => `${(x / 1e6).toFixed(1)}M/s`;
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log("uncontended Lock acquire + release (higher is better)");
  console.log(`  raw CAS + store loop (ceiling)   ${M(rawRate)}`);
  console.log(`  Python lock.acquire(); release() ${M(py.lock_per_s)}`);
  console.log(`  Python, methods bound once       ${M(py.bound_per_s)}`);
  console.log(`  Python with lock:                ${M(py.with_per_s)}`);
  console.log(
    `  acquireSync(); release()         ${M(syncRate)}  ${
      x(syncRate, py.lock_per_s)
    } Python (target >= 3x), raw/this ${x(rawRate, syncRate)} (target <= 1.5x)`,
  );
  console.log(`  RLock acquireSync(); release()   ${M(rlockRate)}`);
  console.log(
    `  using _ = lock.holdSync()        ${M(holdRate)}  ${
      x(holdRate, py.with_per_s)
    } Python's with (V8's own \`using\` costs ~150 ns)`,
  );
  console.log(
    `  await acquire(); release()       ${M(asyncRate)}  ${
      x(asyncRate, py.lock_per_s)
    } Python (target >= 1x)`,
  );
  console.log(
    `two processes x ${N_CONTENDED} increments of one Value under its lock (lower is better)`,
  );
  console.log(
    `  Python                           ${py.contended_s.toFixed(3)} s`,
  );
  console.log(
    `  holdSync()                       ${contSync.toFixed(3)} s  ${
      x(py.contended_s, contSync)
    } faster than Python (target > 1x)`,
  );
  console.log(
    `  await hold()                     ${contAsync.toFixed(3)} s  ${
      x(py.contended_s, contAsync)
    } faster than Python`,
  );
}
