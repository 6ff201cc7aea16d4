"""Python's side of bench/queue_bench.ts: prints one JSON object of results.

multiprocessing.Queue, run as the TypeScript side runs its Queue: the
processes start once, a warm-up round (a fifth of the items) goes through
them, then the timed round, from a `go` event to the moment every consumer
has taken every item; each producer ends its round with None, each consumer
stops at one. Best of 3 (or of --rounds N).
- one producer and one consumer process, 100,000 small items (msgs/s);
- 4 producers x 4 consumers, 25,000 small items each (msgs/s);
- one producer and one consumer, 1 MiB bytes items (MB/s).

Run by bench/queue_bench.ts (python3 bench/python/queue_bench.py); alone it
prints the same numbers.
"""
import json
import math
import multiprocessing as mp
import sys
import time

N_SMALL = 100_000
N_BIG = 200
BIG = 1 << 20


def producer(q, rounds, start, n, big):
    payload = bytes(BIG)
    for r, go in enumerate(rounds):
        go.wait()
        count = math.ceil(n / 5) if r == 0 else n
        if big:
            for _ in range(count):
                q.put(payload)
        else:
            for i in range(start, start + count):
                q.put({"id": i, "name": "item", "ok": True})
        q.put(None)


def consumer(q, rounds, done):
    for go in rounds:
        go.wait()
        n = 0
        while q.get() is not None:
            n += 1
        done.put(n)


def run(producers, consumers, per_producer, big=False):
    q = mp.Queue()
    done = mp.Queue()
    rounds = [mp.Event(), mp.Event()]
    procs = [mp.Process(target=consumer, args=(q, rounds, done)) for _ in range(consumers)]
    procs += [
        mp.Process(target=producer, args=(q, rounds, i * per_producer, per_producer, big))
        for i in range(producers)
    ]
    for p in procs:
        p.start()
    rounds[0].set()  # warm-up
    for _ in range(consumers):
        done.get()
    t = time.perf_counter()
    rounds[1].set()
    total = sum(done.get() for _ in range(consumers))
    s = time.perf_counter() - t
    for p in procs:
        p.join()
    assert total == producers * per_producer, total
    return total * BIG / s / 1e6 if big else total / s


if __name__ == "__main__":
    # --rounds N: best of N runs of each case (bench/queue_bench.ts asks for
    # one per round, to interleave them with its own).
    n_rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    result = {
        "one_to_one_per_s": max(run(1, 1, N_SMALL) for _ in range(n_rounds)),
        "four_by_four_per_s": max(run(4, 4, N_SMALL // 4) for _ in range(n_rounds)),
        "big_mb_per_s": max(run(1, 1, N_BIG, True) for _ in range(n_rounds)),
    }
    print(json.dumps(result))
