/**
 * Our Pool beside the JavaScript worker pools a Deno user would pick
 * instead: piscina, tinypool, workerpool and poolifier-web-worker (pinned
 * npm versions, loaded by this bench only). Every pool has 2 workers and
 * runs the same exported functions (`_peer_tasks.ts`). Each round runs
 * every pool once, one after the other, the first pool rotating from round
 * to round; every figure is a ratio ours/peer taken within one round, then
 * the median and min-max over the rounds (higher is better for us):
 *
 * - start-up: constructor to the first result;
 * - calls: 20,000 separate one-item calls in flight (ours `apply`, piscina
 *   and tinypool `run`, workerpool `exec`, poolifier `execute`), calls/s;
 * - batch: 20,000 tiny items through one call (ours `map`, poolifier
 *   `mapExecute`; the others have no batch call), items/s;
 * - latency: one call at a time, median of 2,000 round trips (ratio
 *   peer/ours: above 1 means we are quicker);
 * - CPU-bound speed-up over the same work run serially in one plain worker:
 *   8 x `fib(32)` (integers) and 8 x `floaty(x)` (floats), through the
 *   pool's batch call if it has one, else separate calls in flight (best
 *   of 5 serial and 5 pool runs, alternating);
 * - 64 x 1 MiB `Float64Array` payloads, one call each, 4 in flight, GB/s.
 *
 * Beside the pools, "raw": two plain Web Workers posted each call (round
 * robin) or half a batch each, with no pool around them: the floor the
 * machine itself sets (for CPU-bound work, the best speed-up it allows).
 *
 * A pool that fails to load or to run (or takes over 2 minutes for its
 * round: hung) prints its error and is left out; the others go on.
 *
 * Run: `deno task bench:peers [--quick] [--rounds N] [--only piscina,tinypool]`.
 *
 * @module
 */
import { Pool } from "../mod.ts";
import * as tasks from "./_peer_tasks.ts";
import { roundsFromArgs } from "./_rounds.ts";
import { median, spread } from "./_stats.ts";

type TaskName = "square" | "fib" | "floaty" | "total";

/** One pool, started: how to call it by task name. */
interface Handle {
  call(name: TaskName, arg: unknown): Promise<unknown>;
  batch?(name: TaskName, args: unknown[]): Promise<unknown[]>;
  close(): Promise<void>;
}

interface Lib {
  name: string;
  start(): Promise<Handle>;
}

const TASKS_URL = new URL("./_peer_tasks.ts", import.meta.url);
const WORKERS = 2;

const ours: Lib = {
  name: "ours",
  start() {
    const pool = new Pool({ processes: WORKERS, module: TASKS_URL });
    return Promise.resolve({
      call: (name, arg) =>
        pool.apply(tasks[name] as (x: unknown) => unknown, [arg]),
      batch: (name, args) =>
        pool.map(tasks[name] as (x: unknown) => unknown, args),
      close: async () => {
        pool.terminate();
        await pool.join();
      },
    });
  },
};

/**
 * The floor under every pool: two plain Web Workers, posted each call
 * (round robin) or, for a batch, half the items each in one message. No
 * queueing, no load balancing: what the machine itself allows.
 */
const raw: Lib = {
  name: "raw",
  start() {
    const url = new URL("./_peer_workers/raw.ts", import.meta.url);
    const workers = Array.from(
      { length: WORKERS },
      () => new Worker(url, { type: "module" }),
    );
    const waiting = new Map<number, (v: unknown) => void>();
    for (const w of workers) {
      w.onmessage = (e) => {
        waiting.get(e.data.id)!(e.data.result);
        waiting.delete(e.data.id);
      };
    }
    let next = 0;
    const post = (w: Worker, msg: object) =>
      new Promise<unknown>((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        w.postMessage({ id, ...msg });
      });
    return Promise.resolve({
      call: (name, arg) => post(workers[next % WORKERS], { name, arg }),
      batch: async (name, args) => {
        const per = Math.ceil(args.length / WORKERS);
        const parts = await Promise.all(
          workers.map((w, i) =>
            post(w, { name, items: args.slice(i * per, (i + 1) * per) })
          ),
        );
        return (parts as unknown[][]).flat();
      },
      close: () => {
        for (const w of workers) w.terminate();
        return Promise.resolve();
      },
    });
  },
};

const peers: Lib[] = [
  {
    name: "piscina",
    async start() {
      // deno-lint-ignore no-import-prefix -- pinned for this bench only
      const { Piscina } = await import("npm:piscina@5.3.2");
      const pool = new Piscina({
        filename: TASKS_URL.href,
        minThreads: WORKERS,
        maxThreads: WORKERS,
      });
      return {
        call: (name, arg) => pool.run(arg, { name }),
        close: () => pool.destroy(),
      };
    },
  },
  {
    name: "tinypool",
    async start() {
      // deno-lint-ignore no-import-prefix -- pinned for this bench only
      const { default: Tinypool } = await import("npm:tinypool@2.2.0");
      const pool = new Tinypool({
        filename: TASKS_URL.href,
        minThreads: WORKERS,
        maxThreads: WORKERS,
      });
      return {
        call: (name, arg) => pool.run(arg, { name }),
        close: () => pool.destroy(),
      };
    },
  },
  {
    name: "workerpool",
    async start() {
      // deno-lint-ignore no-import-prefix -- pinned for this bench only
      const { default: workerpool } = await import("npm:workerpool@10.0.3");
      const pool = workerpool.pool(
        new URL("./_peer_workers/workerpool.ts", import.meta.url).pathname,
        { minWorkers: WORKERS, maxWorkers: WORKERS, workerType: "thread" },
      );
      return {
        call: (name, arg) => pool.exec(name, [arg]),
        close: async () => {
          await pool.terminate();
        },
      };
    },
  },
  {
    name: "poolifier",
    async start() {
      const { FixedThreadPool } = await import(
        // deno-lint-ignore no-import-prefix -- pinned for this bench only
        "npm:poolifier-web-worker@0.5.15"
      );
      const pool = new FixedThreadPool<unknown, unknown>(
        WORKERS,
        new URL("./_peer_workers/poolifier.ts", import.meta.url),
      );
      return {
        call: (name, arg) => pool.execute(arg, name),
        batch: (name, args) =>
          pool.mapExecute(args, name) as Promise<unknown[]>,
        close: () => pool.destroy(),
      };
    },
  },
];

/** One pool's figures in one round (higher is better, except the times). */
interface Figures {
  startMs: number;
  calls: number;
  batch?: number;
  latencyUs: number;
  fibSpeedup: number;
  floatSpeedup: number;
  gbs: number;
}

const quick = Deno.args.includes("--quick");
const ROUNDS = roundsFromArgs(5, 3);
const N_CALLS = quick ? 5_000 : 20_000;
const N_LATENCY = quick ? 500 : 2_000;
const FIB_N = 32, CPU_ITEMS = 8, CPU_REPEAT = 5;
const MIB_ITEMS = quick ? 16 : 64, MIB_WINDOW = 4;
/** A pool that takes longer than this for its round is left out as hung. */
const ROUND_TIMEOUT_MS = 120_000;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`wrong result: ${what}`);
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** One plain worker for the serial runs a speed-up is taken against. */
let serialWorker: Worker | undefined;

/** Ms the task `name` took over `items`, one after another, in the serial worker. */
function serialMs(name: TaskName, items: unknown[]): Promise<number> {
  serialWorker ??= new Worker(
    new URL("./_peer_workers/serial.ts", import.meta.url),
    { type: "module" },
  );
  const w = serialWorker;
  return new Promise((resolve) => {
    w.onmessage = (e) => resolve(e.data as number);
    w.postMessage({ name, items });
  });
}

/** Batch call if the pool has one, else separate calls in flight. */
function many(h: Handle, name: TaskName, args: unknown[]): Promise<unknown[]> {
  return h.batch
    ? h.batch(name, args)
    : Promise.all(args.map((a) => h.call(name, a)));
}

const items = range(N_CALLS);
const fibItems = Array(CPU_ITEMS).fill(FIB_N);
const floatItems = range(CPU_ITEMS).map((i) => i + 0.5);
const mib = new Float64Array(1 << 17).fill(0.5); // 1 MiB
const mibTotal = tasks.total(mib);
const fibWant = tasks.fib(FIB_N), floatWant = tasks.floaty(1.5);

async function measure(lib: Lib): Promise<Figures> {
  const t0 = performance.now();
  const h = await lib.start();
  const step = (what: string) => {
    if (Deno.env.get("PEERS_TRACE")) console.log(`  ${lib.name}: ${what}`);
  };
  try {
    check(await h.call("square", 3) === 9, "square(3)");
    const startMs = performance.now() - t0;

    // Warm-up: every task once, and enough tiny calls for the JIT.
    await Promise.all(range(2_000).map((x) => h.call("square", x)));
    await many(h, "fib", [20, 20]);
    await many(h, "floaty", [0.5, 1.5]);
    await h.call("total", mib);

    let out: unknown[] = [];
    step("calls");
    const callsMs = await time(async () => {
      out = await Promise.all(items.map((x) => h.call("square", x)));
    });
    check(out[N_CALLS - 1] === (N_CALLS - 1) ** 2, "calls");
    let batch: number | undefined;
    if (h.batch) {
      const ms = await time(async () => {
        out = await h.batch!("square", items);
      });
      check(out[N_CALLS - 1] === (N_CALLS - 1) ** 2, "batch");
      batch = N_CALLS / ms * 1000;
    }

    step("latency");
    const lat: number[] = [];
    for (let i = 0; i < N_LATENCY; i++) {
      const s = performance.now();
      await h.call("square", i);
      lat.push(performance.now() - s);
    }

    step("cpu");
    // Serial and pool runs alternate, best of CPU_REPEAT each: a noisy
    // machine slows one run or the other, rarely all of them.
    let fibSerial = Infinity, fibMs = Infinity;
    let floatSerial = Infinity, floatMs = Infinity;
    for (let r = 0; r < CPU_REPEAT; r++) {
      fibSerial = Math.min(
        fibSerial,
        await serialMs("fib", fibItems),
      );
      fibMs = Math.min(
        fibMs,
        await time(async () => {
          out = await many(h, "fib", fibItems);
        }),
      );
      check(out[0] === fibWant, "fib");
      floatSerial = Math.min(
        floatSerial,
        await serialMs("floaty", floatItems),
      );
      floatMs = Math.min(
        floatMs,
        await time(async () => {
          out = await many(h, "floaty", floatItems);
        }),
      );
      check(out[1] === floatWant, "floaty");
    }

    step("payloads");
    // At most MIB_WINDOW in flight: piscina hung (its threads idle, no
    // result ever) with 64 in flight in some runs.
    const mibMs = await time(async () => {
      const sums: Promise<unknown>[] = [];
      for (let i = 0; i < MIB_ITEMS; i++) {
        if (i >= MIB_WINDOW) await sums[i - MIB_WINDOW];
        sums.push(h.call("total", mib));
      }
      out = await Promise.all(sums);
    });
    check(out[MIB_ITEMS - 1] === mibTotal, "total");

    return {
      startMs,
      calls: N_CALLS / callsMs * 1000,
      batch,
      latencyUs: median(lat) * 1000,
      fibSpeedup: fibSerial / fibMs,
      floatSpeedup: floatSerial / floatMs,
      gbs: MIB_ITEMS * mib.byteLength / (mibMs / 1000) / 1e9,
    };
  } finally {
    await h.close();
  }
}

interface Row {
  label: string;
  /** Higher is better. */
  value: (f: Figures) => number | undefined;
  /** How to print one pool's raw figure. */
  raw: (f: Figures) => string;
}

const rate = (r: number) =>
  r >= 1e6 ? `${(r / 1e6).toFixed(2)}M/s` : `${(r / 1e3).toFixed(1)}k/s`;

const rows: Row[] = [
  {
    label: "start-up to first result",
    value: (f) => 1 / f.startMs,
    raw: (f) => `${f.startMs.toFixed(0)} ms`,
  },
  {
    label: `${N_CALLS / 1000}k separate calls, calls/s`,
    value: (f) => f.calls,
    raw: (f) => rate(f.calls),
  },
  {
    label: `${N_CALLS / 1000}k tiny items in one batch call, items/s`,
    value: (f) => f.batch,
    raw: (f) => f.batch === undefined ? "-" : rate(f.batch),
  },
  {
    label: "one call's round trip (median)",
    value: (f) => 1 / f.latencyUs,
    raw: (f) => `${f.latencyUs.toFixed(0)} us`,
  },
  {
    label: `CPU-bound ${CPU_ITEMS} x fib(${FIB_N}), speed-up`,
    value: (f) => f.fibSpeedup,
    raw: (f) => `${f.fibSpeedup.toFixed(2)}x`,
  },
  {
    label: `CPU-bound ${CPU_ITEMS} x floaty(x), speed-up`,
    value: (f) => f.floatSpeedup,
    raw: (f) => `${f.floatSpeedup.toFixed(2)}x`,
  },
  {
    label: `${MIB_ITEMS} x 1 MiB Float64Array, GB/s`,
    value: (f) => f.gbs,
    raw: (f) => `${f.gbs.toFixed(2)} GB/s`,
  },
];

if (import.meta.main) {
  const only = Deno.args.indexOf("--only");
  const libs = [ours, ...peers, raw].filter((l) =>
    only < 0 || l.name === "ours" ||
    Deno.args[only + 1].split(",").includes(l.name)
  );
  const failed = new Map<string, string>();
  const results: Map<string, Figures>[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const got = new Map<string, Figures>();
    for (let k = 0; k < libs.length; k++) {
      const lib = libs[(round + k) % libs.length];
      if (failed.has(lib.name)) continue;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        got.set(
          lib.name,
          await Promise.race([
            measure(lib),
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () =>
                  reject(
                    new Error(`no result in ${ROUND_TIMEOUT_MS} ms: hung`),
                  ),
                ROUND_TIMEOUT_MS,
              );
            }),
          ]),
        );
      } catch (e) {
        failed.set(lib.name, String(e));
        console.log(`${lib.name} failed, left out: ${e}`);
      } finally {
        clearTimeout(timer);
      }
    }
    results.push(got);
    console.log(`round ${round + 1}/${ROUNDS} done`);
  }
  const names = libs.map((l) => l.name).filter((n) => !failed.has(n));
  // The raw workers are the machine's floor, shown beside the pools but not
  // a pool to beat.
  const peerNames = names.filter((n) => n !== "ours" && n !== "raw");
  const otherNames = names.filter((n) => n !== "ours");
  console.log(
    `\nPool, ${WORKERS} workers each, ${ROUNDS} rounds interleaved (first pool rotating); ` +
      `median (min-max) over rounds`,
  );
  for (const row of rows) {
    console.log(`\n${row.label}`);
    for (const n of names) {
      const vals = results.map((r) => r.get(n)).filter((f) => f !== undefined)
        .map((f) => row.raw(f!));
      console.log(`  ${n.padEnd(10)} ${vals.join("  ")}`);
    }
    for (const p of otherNames) {
      const ratios: number[] = [];
      for (const r of results) {
        const a = r.get("ours"), b = r.get(p);
        if (!a || !b) continue;
        const va = row.value(a), vb = row.value(b);
        if (va === undefined || vb === undefined) continue;
        ratios.push(va / vb);
      }
      if (ratios.length) {
        console.log(`  ours/${p.padEnd(10)} ${spread(ratios)}`);
      }
    }
  }

  // The targets, each from same-round figures.
  const perRound = (f: (r: Map<string, Figures>) => number | undefined) =>
    results.map(f).filter((v): v is number => v !== undefined);
  console.log("\nTargets (median (min-max) over rounds)");
  const fib = perRound((r) => r.get("ours")?.fibSpeedup);
  const flo = perRound((r) => r.get("ours")?.floatSpeedup);
  console.log(
    `  CPU-bound speed-up, integers: ${spread(fib)}x (target >= 1.9x)`,
  );
  console.log(
    `  CPU-bound speed-up, floats:   ${spread(flo)}x (target >= 1.9x)`,
  );
  if (names.includes("raw")) {
    const rf = perRound((r) => r.get("raw")?.fibSpeedup);
    const rfl = perRound((r) => r.get("raw")?.floatSpeedup);
    console.log(
      `  the machine's own (raw workers, half the items each): integers ${
        spread(rf)
      }x, floats ${spread(rfl)}x`,
    );
  }
  if (names.includes("piscina")) {
    const x = perRound((r) => {
      const a = r.get("ours"), b = r.get("piscina");
      return a && b ? a.calls / b.calls : undefined;
    });
    console.log(`  separate calls, ours/piscina: ${spread(x)}x (target >= 5x)`);
  }
  const lat = perRound((r) => {
    const a = r.get("ours");
    const best = Math.min(
      ...peerNames.map((p) => r.get(p)?.latencyUs ?? Infinity),
    );
    return a && best < Infinity ? a.latencyUs / best : undefined;
  });
  console.log(
    `  one-call latency, ours/best peer's: ${spread(lat)}x (target <= 0.8x)`,
  );
  for (const [n, e] of failed) console.log(`  ${n} left out: ${e}`);
  // A hung peer's threads would keep this program alive.
  Deno.exit(0);
}
