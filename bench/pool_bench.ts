/**
 * Pool beside Python's `multiprocessing.Pool`, same number of workers, in
 * one run (the machine is noisy: only ratios taken in the same run mean
 * anything):
 *
 * - `map(square, range(100_000))` with the default chunksize, items/s: a
 *   fresh pool's first call (after a map of 1,000 items only), then the
 *   best of 3 warm calls on it;
 * - `map(square, range(10_000), 1)`: chunksize 1, items/s (this needs many
 *   tasks in flight per worker, not one round trip each);
 * - a CPU-bound map (naive `fib`) on 1 worker, then on 2: the speed-up.
 *
 * Each round runs every case on both sides, on fresh pools, the side going
 * first rotating (`_rounds.ts`); ratios are taken within a round and printed
 * as median (min-max) over the rounds.
 *
 * Run: `deno run --allow-all bench/pool_bench.ts [--quick] [--rounds N]`
 * (needs `python3`; 5 rounds, `--quick` 2).
 *
 * @module
 */
import { Pool } from "../mod.ts";
import { runPython } from "./_python.ts";
import { interleave, roundsFromArgs } from "./_rounds.ts";
import { minMax, ratios, spread } from "./_stats.ts";

/** The tiny task. */
export function square(x: number): number {
  return x * x;
}

/** The CPU-bound task. */
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Seconds `fn` took, the best of `repeat` runs. */
async function best(repeat: number, fn: () => Promise<unknown>) {
  let t = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await fn();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

const N = 100_000, N1 = 10_000;

/** One side's figures for one round. */
interface Figures {
  /** `map(square, range(N))`, items/s: a fresh pool's first call (after a map of 1,000), then the best of `repeat` warm calls. */
  first?: number;
  warm: number;
  /** `map(square, range(N1), 1)`, items/s. */
  chunk1: number;
  /** `map(fib, ...)` on 1 worker over on 2. */
  speedup: number;
}

interface PyResults {
  map_default: { items_per_s: number };
  map_chunk1: { items_per_s: number };
  fib_1: { n: number; items: number; seconds: number };
  fib_2: { seconds: number };
  fib_speedup: number;
}

/** Python: one round (`--repeat`: warm calls a round; `--quick`: smaller fib). */
async function python(quick: boolean, repeat: number): Promise<Figures> {
  const py = await runPython<PyResults>("pool_bench.py", [
    "--repeat",
    String(repeat),
    ...(quick ? ["--quick"] : []),
  ]);
  return {
    warm: py.map_default.items_per_s,
    chunk1: py.map_chunk1.items_per_s,
    speedup: py.fib_speedup,
  };
}

// JS runs fib ~40x faster than Python: a larger n for a similar duration.
const fibN = (quick: boolean) => quick ? 27 : 32;
const FIB_ITEMS = 32;

/**
 * Ours: one round: the `map(square)` figures on a fresh pool, `fib` on the
 * two pools of `fib` (kept from round to round: a fresh pool's second
 * worker may still be starting when a short map begins).
 */
async function ours(
  quick: boolean,
  repeat: number,
  fibPools: [Pool, Pool],
): Promise<Figures> {
  const big = range(N), small = range(N1);
  let first: number, warm: number, chunk1: number;
  {
    await using pool = new Pool({ processes: 2 });
    await pool.map(square, range(1000)); // warm up
    const t0 = performance.now();
    const check = await pool.map(square, big);
    first = N / ((performance.now() - t0) / 1000);
    if (check[N - 1] !== (N - 1) ** 2) throw new Error("wrong result");
    warm = N / await best(repeat, () => pool.map(square, big));
    chunk1 = N1 / await best(repeat, () => pool.map(square, small, 1));
  }
  const items = Array(FIB_ITEMS).fill(fibN(quick));
  const [one, two] = fibPools;
  const t1 = await best(1, () => one.map(fib, items));
  const t2 = await best(1, () => two.map(fib, items));
  return { first, warm, chunk1, speedup: t1 / t2 };
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const rounds = roundsFromArgs();
  const repeat = quick ? 2 : 3;
  await using one = new Pool({ processes: 1 });
  await using two = new Pool({ processes: 2 });
  // Warm up, with time for every worker to start.
  await one.map(fib, [20]);
  await two.map(fib, [20, 20]);
  await new Promise((r) => setTimeout(r, 300));
  await two.map(fib, Array(8).fill(25));
  const r = await interleave(rounds, {
    ours: () => ours(quick, repeat, [one, two]),
    python: () => python(quick, repeat),
  });
  const fmt = (x: number) =>
    x >= 1e6 ? `${(x / 1e6).toFixed(2)}M/s` : `${(x / 1e3).toFixed(1)}k/s`;
  const range = (xs: number[]) => minMax(xs, fmt);
  const of = (k: keyof Figures, side: Figures[]) => side.map((f) => f[k]!);
  const [o, p] = [r.ours, r.python];
  console.log(
    `Pool(2) beside Python's multiprocessing.Pool(2), ${rounds} interleaved rounds, ratios per round as median (min-max) (higher is better)`,
  );
  console.log(`map(square, range(100_000)), default chunksize, items/s`);
  console.log(
    `  warm, best of ${repeat} a round: Python ${range(of("warm", p))}, Deno ${
      range(of("warm", o))
    }  ${
      spread(ratios(of("warm", o), of("warm", p)), 1, "x")
    } Python (target >= 3x)`,
  );
  console.log(
    `  a fresh pool's first call (after a map of 1,000): Deno ${
      range(of("first", o))
    }  ${
      spread(ratios(of("first", o), of("warm", o)), 2, "x")
    } of its warm best`,
  );
  console.log(`map(square, range(10_000), chunksize 1), items/s`);
  console.log(
    `  Python ${range(of("chunk1", p))}, Deno ${range(of("chunk1", o))}  ${
      spread(ratios(of("chunk1", o), of("chunk1", p)), 1, "x")
    } Python (target >= 3x)`,
  );
  console.log(
    `CPU-bound map(fib, ...), speed-up of 2 workers over 1 (Python ${
      quick ? "16 x fib(24)" : "32 x fib(27)"
    }, Deno ${FIB_ITEMS} x fib(${fibN(quick)}))`,
  );
  console.log(
    `  Python ${spread(of("speedup", p), 2, "x")}, Deno ${
      spread(of("speedup", o), 2, "x")
    } (target >= 1.8x)`,
  );
}
