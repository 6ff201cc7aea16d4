"""Python's side of bench/sync_bench.ts: prints one JSON object of results.

Run by bench/sync_bench.ts (python3 bench/python/sync_bench.py); alone it
prints the same numbers.
"""
import json
import sys
import multiprocessing as mp
import time

N_UNCONTENDED = 2_000_000
N_CONTENDED = 100_000


def uncontended_lock():
    """The statement the issue names: `lock.acquire(); lock.release()`."""
    lock = mp.Lock()
    t = time.perf_counter()
    for _ in range(N_UNCONTENDED):
        lock.acquire(); lock.release()
    return N_UNCONTENDED / (time.perf_counter() - t)


def uncontended_bound():
    """Python at its fastest: the methods looked up once."""
    lock = mp.Lock()
    acquire, release = lock.acquire, lock.release
    t = time.perf_counter()
    for _ in range(N_UNCONTENDED):
        acquire()
        release()
    return N_UNCONTENDED / (time.perf_counter() - t)


def uncontended_with():
    lock = mp.Lock()
    t = time.perf_counter()
    for _ in range(N_UNCONTENDED):
        with lock:
            pass
    return N_UNCONTENDED / (time.perf_counter() - t)


def increment(value, n, go):
    go.wait()
    for _ in range(n):
        with value.get_lock():
            value.value += 1


def contended():
    value = mp.Value("i", 0)
    go = mp.Event()
    procs = [mp.Process(target=increment, args=(value, N_CONTENDED, go)) for _ in range(2)]
    for p in procs:
        p.start()
    time.sleep(0.2)  # both started and waiting on `go`
    t = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t
    assert value.value == 2 * N_CONTENDED, value.value
    return elapsed


if __name__ == "__main__":
    # --repeat N: best of N runs of each (bench/sync_bench.ts runs this once a round).
    k = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    best = lambda f: max(f() for _ in range(k))
    print(json.dumps({
        "lock_per_s": best(uncontended_lock),
        "bound_per_s": best(uncontended_bound),
        "with_per_s": best(uncontended_with),
        "contended_s": min(contended() for _ in range(k)),
    }))
