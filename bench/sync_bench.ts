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
 * Each round runs every measure once on both sides, the first side
 * rotating (`_rounds.ts`); ratios are taken within a round, printed as
 * median (min-max).
 *
 * Run: `deno run --allow-all bench/sync_bench.ts [--quick] [--rounds N]`
 * (needs `python3`; 5 rounds, `--quick` 2).
 *
 * @module
 */
import { Event, Lock, Process, RLock, Value } from "../mod.ts";
import { runPython } from "./_python.ts";
import { interleave, roundsFromArgs } from "./_rounds.ts";
import { minMax, ratios, spread } from "./_stats.ts";

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

/** Python: one round (one run of each). */
function python(): Promise<Record<string, number>> {
  return runPython<Record<string, number>>("sync_bench.py", ["--repeat", "1"]);
}

/** Ours: one round (one run of each). */
async function ours(): Promise<Record<string, number>> {
  return {
    raw: perSecond(N_UNCONTENDED, raw),
    sync: perSecond(N_UNCONTENDED, lockSync),
    rlock: perSecond(N_UNCONTENDED, rlockSync),
    hold: perSecond(N_UNCONTENDED, holdSync),
    async: await perSecondAsync(N_UNCONTENDED, lockAsync),
    contSync: await contended(true),
    contAsync: await contended(false),
  };
}

if (import.meta.main) {
  const rounds = roundsFromArgs();
  const r = await interleave(rounds, { ours, python });
  const o = (k: string) => r.ours.map((x) => x[k]);
  const p = (k: string) => r.python.map((x) => x[k]);
  const M = (xs: number[]) => `${minMax(xs, (x) => (x / 1e6).toFixed(1))}M/s`;
  const S = (xs: number[]) => `${minMax(xs, (x) => x.toFixed(3))} s`;
  console.log(
    `${rounds} interleaved rounds; ratios per round, median (min-max)`,
  );
  console.log("uncontended Lock acquire + release (higher is better)");
  console.log(`  raw CAS + store loop (ceiling)   ${M(o("raw"))}`);
  console.log(`  Python lock.acquire(); release() ${M(p("lock_per_s"))}`);
  console.log(`  Python, methods bound once       ${M(p("bound_per_s"))}`);
  console.log(`  Python with lock:                ${M(p("with_per_s"))}`);
  console.log(
    `  acquireSync(); release()         ${M(o("sync"))}  ${
      spread(ratios(o("sync"), p("lock_per_s")), 2, "x")
    } Python (target >= 3x), raw/this ${
      spread(ratios(o("raw"), o("sync")), 2, "x")
    } (target <= 1.5x)`,
  );
  console.log(`  RLock acquireSync(); release()   ${M(o("rlock"))}`);
  console.log(
    `  using _ = lock.holdSync()        ${M(o("hold"))}  ${
      spread(ratios(o("hold"), p("with_per_s")), 2, "x")
    } Python's with (V8's own \`using\` costs ~150 ns)`,
  );
  console.log(
    `  await acquire(); release()       ${M(o("async"))}  ${
      spread(ratios(o("async"), p("lock_per_s")), 2, "x")
    } Python (target >= 1x)`,
  );
  console.log(
    `two processes x ${N_CONTENDED} increments of one Value under its lock (lower is better)`,
  );
  console.log(`  Python                           ${S(p("contended_s"))}`);
  console.log(
    `  holdSync()                       ${S(o("contSync"))}  ${
      spread(ratios(p("contended_s"), o("contSync")), 2, "x")
    } faster than Python (target > 1x)`,
  );
  console.log(
    `  await hold()                     ${S(o("contAsync"))}  ${
      spread(ratios(p("contended_s"), o("contAsync")), 2, "x")
    } faster than Python`,
  );
}
