"""Python's side of bench/manager_bench.ts: prints one JSON object of results.

Proxy round trips of a manager dict: `d["k"] = i` then `d.get("k")` (one
pair = two calls), per second; the median of ROUNDS rounds of N pairs:
- local: `multiprocessing.Manager()` (its proxies talk over a Unix socket);
- tcp: a `SyncManager` listening on 127.0.0.1 with an authkey (its proxies
  talk over loopback TCP, after the HMAC handshake).
"""
import json
import statistics
import sys
import time
from multiprocessing.managers import SyncManager
import multiprocessing as mp

N = 5_000
ROUNDS = 5


def pairs_per_second(d):
    for i in range(500):
        d["k"] = i
        d.get("k")
    rates = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        for i in range(N):
            d["k"] = i
            d.get("k")
        rates.append(N / (time.perf_counter() - t))
    return statistics.median(rates)


if __name__ == "__main__":
    if "--quick" in sys.argv:
        N = 1_000
    # --rounds N: timed rounds of N pairs (bench/manager_bench.ts asks for 1 a round).
    if "--rounds" in sys.argv:
        ROUNDS = int(sys.argv[sys.argv.index("--rounds") + 1])
    mp.set_start_method("spawn")
    with mp.Manager() as m:
        local = pairs_per_second(m.dict())
    with SyncManager(address=("127.0.0.1", 0), authkey=b"bench-key") as m:
        tcp = pairs_per_second(m.dict())
    print(json.dumps({"local_pairs_per_s": local, "tcp_pairs_per_s": tcp}))
