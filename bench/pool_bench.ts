/**
 * Pool beside Python's `multiprocessing.Pool`, same number of workers, in
 * one run (the machine is noisy: only ratios taken in the same run mean
 * anything):
 *
 * - `map(square, range(100_000))` with the default chunksize, items/s: warm
 *   (best of 5 on one pool) and a cold pool's first call (after a map of
 *   1,000 items only), on 3 fresh pools;
 * - `map(square, range(10_000), 1)`: chunksize 1, items/s (this needs many
 *   tasks in flight per worker, not one round trip each);
 * - a CPU-bound map (naive `fib`) on 1 worker, then on 2: the speed-up.
 *
 * Run: `deno run --allow-all bench/pool_bench.ts [--quick]` (needs `python3`).
 *
 * @module
 */
import { Pool } from "../mod.ts";
import { runPython } from "./_python.ts";

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

async function best(rounds: number, fn: () => Promise<unknown>) {
  let t = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

interface PyResults {
  map_default: { items_per_s: number };
  map_chunk1: { items_per_s: number };
  fib_1: { n: number; items: number; seconds: number };
  fib_2: { seconds: number };
  fib_speedup: number;
}

function python(quick: boolean): Promise<PyResults> {
  return runPython<PyResults>("pool_bench.py", quick ? ["--quick"] : []);
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const rounds = quick ? 2 : 5;
  const py = await python(quick);

  const N = 100_000, N1 = 10_000;
  let tDefault: number, tChunk1: number;
  // A cold pool's first big map (after a small warm-up only), on fresh
  // pools: what a short program sees, beside the warm best below.
  const firsts: number[] = [];
  for (let p = 0; p < (quick ? 2 : 3); p++) {
    await using pool = new Pool({ processes: 2 });
    await pool.map(square, range(1000)); // warm up
    const big = range(N);
    const t0 = performance.now();
    const check = await pool.map(square, big);
    firsts.push((performance.now() - t0) / 1000);
    if (check[N - 1] !== (N - 1) ** 2) throw new Error("wrong result");
  }
  {
    await using pool = new Pool({ processes: 2 });
    await pool.map(square, range(1000)); // warm up
    const big = range(N), small = range(N1);
    await pool.map(square, big);
    tDefault = await best(rounds, () => pool.map(square, big));
    tChunk1 = await best(rounds, () => pool.map(square, small, 1));
  }
  // JS runs fib ~40x faster than Python: a larger n for a similar duration.
  // Rounds alternate 1 and 2 workers, so that noise hits both alike.
  const fibN = quick ? 27 : 32, fibItems = 32;
  const fibTime = [Infinity, Infinity];
  {
    await using one = new Pool({ processes: 1 });
    await using two = new Pool({ processes: 2 });
    await one.map(fib, [20]); // warm up
    await two.map(fib, [20, 20]);
    const items = Array(fibItems).fill(fibN);
    for (let round = 0; round < Math.max(2, rounds >> 1); round++) {
      fibTime[0] = Math.min(
        fibTime[0],
        await best(1, () => one.map(fib, items)),
      );
      fibTime[1] = Math.min(
        fibTime[1],
        await best(1, () => two.map(fib, items)),
      );
    }
  }

  const rate = (n: number, s: number) => n / s;
  const fmt = (r: number) =>
    r >= 1e6 ? `${(r / 1e6).toFixed(2)}M/s` : `${(r / 1e3).toFixed(1)}k/s`;
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  const dRate = rate(N, tDefault), cRate = rate(N1, tChunk1);
  const speedup = fibTime[0] / fibTime[1];
  console.log("Pool(2).map throughput, items/s (higher is better)");
  console.log(
    `  map(square, range(100_000)), default chunksize: Python ${
      fmt(py.map_default.items_per_s)
    }, Deno ${fmt(dRate)}  ${
      x(dRate, py.map_default.items_per_s)
    } Python (target >= 3x)`,
  );
  console.log(
    `  the same, a cold pool's first call (after map of 1,000): Deno ${
      firsts.map((t) => fmt(rate(N, t))).join(", ")
    }  ${firsts.map((t) => x(tDefault, t)).join(", ")} of the warm best`,
  );
  console.log(
    `  map(square, range(10_000), chunksize 1):        Python ${
      fmt(py.map_chunk1.items_per_s)
    }, Deno ${fmt(cRate)}  ${
      x(cRate, py.map_chunk1.items_per_s)
    } Python (target >= 3x)`,
  );
  console.log(`CPU-bound map(fib, ...) on 1 worker vs 2 (parallel speed-up)`);
  console.log(
    `  Python fib(${py.fib_1.n}) x ${py.fib_1.items}: ${
      py.fib_1.seconds.toFixed(3)
    } s vs ${py.fib_2.seconds.toFixed(3)} s  speed-up ${
      py.fib_speedup.toFixed(2)
    }x`,
  );
  console.log(
    `  Deno   fib(${fibN}) x ${fibItems}: ${fibTime[0].toFixed(3)} s vs ${
      fibTime[1].toFixed(3)
    } s  speed-up ${speedup.toFixed(2)}x (target >= 1.8x)`,
  );
}
