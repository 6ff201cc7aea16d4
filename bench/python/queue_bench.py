"""Python's side of bench/queue_bench.ts: prints one JSON object of results.

multiprocessing.Queue, each case timed from a `go` event to the last
consumer done (best of 3):
- one producer and one consumer process, 100,000 small items (msgs/s);
- 4 producers x 4 consumers, 25,000 small items each (msgs/s);
- one producer and one consumer, 1 MiB bytes items (MB/s).

Run by bench/queue_bench.ts (python3 bench/python/queue_bench.py); alone it
prints the same numbers.
"""
import json
import multiprocessing as mp
import time

N_SMALL = 100_000
N_BIG = 200
BIG = 1 << 20


def small(i):
    return {"id": i, "name": "item", "ok": True}


def producer(q, go, start, n):
    go.wait()
    for i in range(start, start + n):
        q.put(small(i))


def consumer(q, go, done):
    go.wait()
    n = 0
    while True:
        item = q.get()
        if item is None:
            break
        n += 1
    done.put(n)


def big_producer(q, go, n):
    payload = bytes(BIG)
    go.wait()
    for _ in range(n):
        q.put(payload)
    q.put(None)


def run(producers, consumers, per_producer):
    q = mp.Queue()
    done = mp.Queue()
    go = mp.Event()
    cs = [mp.Process(target=consumer, args=(q, go, done)) for _ in range(consumers)]
    ps = [
        mp.Process(target=producer, args=(q, go, i * per_producer, per_producer))
        for i in range(producers)
    ]
    for p in cs + ps:
        p.start()
    time.sleep(0.3)
    t = time.perf_counter()
    go.set()
    for p in ps:
        p.join()
    for _ in cs:
        q.put(None)
    total = sum(done.get() for _ in cs)
    s = time.perf_counter() - t
    for p in cs:
        p.join()
    assert total == producers * per_producer, total
    return producers * per_producer / s


def run_big():
    q = mp.Queue()
    done = mp.Queue()
    go = mp.Event()
    c = mp.Process(target=consumer, args=(q, go, done))
    p = mp.Process(target=big_producer, args=(q, go, N_BIG))
    c.start()
    p.start()
    time.sleep(0.3)
    t = time.perf_counter()
    go.set()
    n = done.get()
    s = time.perf_counter() - t
    p.join()
    c.join()
    assert n == N_BIG
    return N_BIG * BIG / s / 1e6


if __name__ == "__main__":
    result = {
        "one_to_one_per_s": max(run(1, 1, N_SMALL) for _ in range(3)),
        "four_by_four_per_s": max(run(4, 4, N_SMALL // 4) for _ in range(3)),
        "big_mb_per_s": max(run_big() for _ in range(3)),
    }
    print(json.dumps(result))
