"""Python's side of bench/process_bench.ts: prints one JSON object of results.

- start+join: median over N_START runs of Process(target=noop).start(); join(),
  with the spawn start method (a fresh interpreter, as our workers are fresh
  isolates);
- Pipe round trip: parent sends a small object, a child echoes it back.
"""
import json
import multiprocessing as mp
import statistics
import time

N_START = 20
N_RT = 20_000


def noop():
    pass


def echo(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            break
        conn.send(msg)


def start_join():
    times = []
    for _ in range(N_START):
        t = time.perf_counter()
        p = mp.Process(target=noop)
        p.start()
        p.join()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def pipe_rt():
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b,))
    p.start()
    msg = {"i": 1}
    for _ in range(1000):
        a.send(msg)
        a.recv()
    t = time.perf_counter()
    for _ in range(N_RT):
        a.send(msg)
        a.recv()
    dt = time.perf_counter() - t
    a.send(None)
    p.join()
    return dt / N_RT * 1e6


if __name__ == "__main__":
    mp.set_start_method("spawn")
    print(json.dumps({"start_join_ms": start_join(), "pipe_rt_us": pipe_rt()}))
