"""Python's side of bench/queue_bench.ts: prints one JSON object of results.

multiprocessing.Queue, run as the TypeScript side runs its Queue: the
processes start once, a warm-up round (a fifth of the items) goes through
them, then --timed N timed rounds (default 5), each from a `go` event to the
moment every consumer has taken every item; each producer ends its round
with None, each consumer stops at one. Prints each case's rate per timed
round.
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


def run(producers, consumers, per_producer, big=False, timed=5):
    q = mp.Queue()
    done = mp.Queue()
    rounds = [mp.Event() for _ in range(1 + timed)]
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
    rates = []
    for r in range(1, 1 + timed):
        t = time.perf_counter()
        rounds[r].set()
        total = sum(done.get() for _ in range(consumers))
        s = time.perf_counter() - t
        assert total == producers * per_producer, total
        rates.append(total * BIG / s / 1e6 if big else total / s)
    for p in procs:
        p.join()
    return rates


if __name__ == "__main__":
    timed = int(sys.argv[sys.argv.index("--timed") + 1]) if "--timed" in sys.argv else 5
    result = {
        "one_to_one_per_s": run(1, 1, N_SMALL, timed=timed),
        "four_by_four_per_s": run(4, 4, N_SMALL // 4, timed=timed),
        "big_mb_per_s": run(1, 1, N_BIG, True, timed=timed),
    }
    print(json.dumps(result))
