"""Python's multiprocessing.Pool, measured the way bench/pool_bench.ts measures
the Deno Pool. Prints one JSON object (items/s and seconds) on stdout.

Run: python3 bench/python/pool_bench.py [--quick] [--repeat N]
"""
import json
import sys
import time
from multiprocessing import Pool


def square(x):
    return x * x


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    quick = "--quick" in sys.argv
    # --repeat N: best of N warm calls (bench/pool_bench.ts runs this once a round).
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 2 if quick else 5
    out = {}
    with Pool(2) as pool:
        pool.map(square, range(1000))  # warm up
        n = 100_000
        t = best(lambda: pool.map(square, range(n)), repeat)
        out["map_default"] = {"items": n, "seconds": t, "items_per_s": n / t}
        n1 = 10_000
        t = best(lambda: pool.map(square, range(n1), chunksize=1), repeat)
        out["map_chunk1"] = {"items": n1, "seconds": t, "items_per_s": n1 / t}
    fib_n, fib_items = (24, 16) if quick else (27, 32)
    for workers in (1, 2):
        with Pool(workers) as pool:
            pool.map(fib, [10] * workers)  # warm up
            t = best(lambda: pool.map(fib, [fib_n] * fib_items), max(1, repeat // 2))
            out[f"fib_{workers}"] = {"items": fib_items, "n": fib_n, "seconds": t}
    out["fib_speedup"] = out["fib_1"]["seconds"] / out["fib_2"]["seconds"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
