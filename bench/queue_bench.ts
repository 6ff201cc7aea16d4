/**
 * Queues beside Python's `multiprocessing.Queue` and beside raw
 * `postMessage`, in one run (the machine is noisy: only ratios taken in the
 * same run mean anything):
 *
 * - one producer and one consumer process, 100,000 small items (msgs/s);
 * - 4 producers x 4 consumers, 25,000 small items each (msgs/s);
 * - one producer and one consumer, 1 MiB `Uint8Array` items (MB/s).
 *
 * Small item: `{ id: i, name: "item", ok: true }` (Python: the same dict).
 * Raw postMessage: a worker posting the same items through a
 * MessageChannel to another that counts them (4 such pairs for 4 x 4).
 *
 * Each case starts its processes once, runs a warm-up round through them
 * (a fifth of the items), then `TIMED` (5) timed rounds, each from a
 * `go` event to the moment every consumer has taken every item; each
 * producer ends its round with a `null`, each consumer stops at one. V8
 * needs a few hundred thousand items to compile a queue's hot code in both
 * processes (measured: ~0.7M items/s in a fresh pair's first 100k, ~2.3M/s
 * from the third), so the first timed round (what a fresh pair of processes
 * gives) and the best one (warm) are both printed; Python runs alike.
 *
 * A round runs each case once on every side, Python's included (python3 is
 * started once a round), the side going first rotating (`_rounds.ts`); the
 * ratios are taken within a round, then their median (min-max) printed.
 *
 * Run: `deno run --allow-all bench/queue_bench.ts [--rounds N] [--quick]`
 * (needs `python3`; 5 rounds, `--quick` 2).
 *
 * @module
 */
import { Event, Process, Queue } from "../mod.ts";
import { runPython } from "./_python.ts";
import { interleave, roundsFromArgs } from "./_rounds.ts";
import { minMax, ratios, spread } from "./_stats.ts";

const N_SMALL = 100_000;
const N_BIG = 200;
const BIG = 1 << 20;
/** Timed rounds through the same processes, after the warm-up. */
const TIMED = 5;

/** A case's figures in one run: its first timed round and its best. */
interface Figures {
  first: number;
  best: number;
}

function figures(perRound: number[]): Figures {
  return { first: perRound[0], best: Math.max(...perRound) };
}

/** Child: each round, once its event is set, puts `n` items numbered from `start`, then `null`. */
export async function producer(
  q: Queue<unknown>,
  rounds: Event[],
  start: number,
  n: number,
  big: boolean,
) {
  const payload = new Uint8Array(BIG);
  for (const [r, go] of rounds.entries()) {
    await go.wait();
    const count = r === 0 ? Math.ceil(n / 5) : n;
    if (big) {
      for (let i = 0; i < count; i++) await q.put(payload);
    } else {
      for (let i = start; i < start + count; i++) {
        await q.put({ id: i, name: "item", ok: true });
      }
    }
    await q.put(null);
  }
}

/** Child: each round, gets items until a `null`, then reports how many on `done`. */
export async function consumer(
  q: Queue<unknown>,
  rounds: Event[],
  done: Queue<number>,
) {
  for (const go of rounds) {
    await go.wait();
    let n = 0;
    while ((await q.get()) !== null) n++;
    await done.put(n);
  }
}

/** Items (or bytes) per second through a Queue: its first timed round and its best. */
async function run(
  producers: number,
  consumers: number,
  perProducer: number,
  big = false,
): Promise<Figures> {
  using q = new Queue<unknown>();
  using done = new Queue<number>();
  const rounds = Array.from({ length: 1 + TIMED }, () => new Event());
  const procs = [
    ...Array.from(
      { length: consumers },
      () => new Process({ target: consumer, args: [q, rounds, done] }),
    ),
    ...Array.from(
      { length: producers },
      (_, i) =>
        new Process({
          target: producer,
          args: [q, rounds, i * perProducer, perProducer, big],
        }),
    ),
  ];
  for (const p of procs) await p.start();
  rounds[0].set(); // warm-up
  for (let c = 0; c < consumers; c++) await done.get();
  const rates: number[] = [];
  for (let r = 1; r <= TIMED; r++) {
    const t = performance.now();
    rounds[r].set();
    let total = 0;
    for (let c = 0; c < consumers; c++) total += await done.get();
    const s = (performance.now() - t) / 1000;
    if (total !== producers * perProducer) throw new Error(`got ${total}`);
    rates.push(big ? total * BIG / s / 1e6 : total / s);
  }
  for (const p of procs) await p.join();
  return figures(rates);
}

// Raw postMessage: plain workers, one MessageChannel per pair.
const POST_WORKER = `
self.onmessage = (e) => {
  const { role, port } = e.data;
  if (role === "producer") {
    self.onmessage = (m) => {
      const { n, big } = m.data;
      if (big) {
        const payload = new Uint8Array(${BIG});
        for (let i = 0; i < n; i++) port.postMessage(payload);
      } else {
        for (let i = 0; i < n; i++) port.postMessage({ id: i, name: "item", ok: true });
      }
      port.postMessage(null);
    };
  } else {
    let count = 0;
    port.onmessage = (m) => {
      if (m.data !== null) { count++; return; }
      self.postMessage(count);
      count = 0;
    };
  }
  self.postMessage("ready");
};`;

function next(w: Worker): Promise<unknown> {
  return new Promise((r) => w.onmessage = (e) => r(e.data));
}

/** Items (or bytes) per second through raw postMessage, `pairs` producer/consumer pairs: first timed round and best. */
async function runPost(
  pairs: number,
  n: number,
  big = false,
): Promise<Figures> {
  const workers: Worker[] = [];
  const producers: Worker[] = [];
  const consumers: Worker[] = [];
  for (let i = 0; i < pairs; i++) {
    const { port1, port2 } = new MessageChannel();
    for (const [role, port] of [["consumer", port2], ["producer", port1]]) {
      const w = new Worker(
        "data:application/javascript," + encodeURIComponent(POST_WORKER),
        { type: "module" },
      );
      workers.push(w);
      const ready = next(w);
      w.postMessage({ role, port }, [port as MessagePort]);
      await ready;
      (role === "producer" ? producers : consumers).push(w);
    }
  }
  const round = async (count: number) => {
    const counts = consumers.map(next);
    for (const p of producers) p.postMessage({ n: count, big });
    return (await Promise.all(counts)).reduce(
      (a: number, b) => a + (b as number),
      0,
    );
  };
  await round(Math.ceil(n / 5)); // warm-up
  const rates: number[] = [];
  for (let r = 0; r < TIMED; r++) {
    const t = performance.now();
    const total = await round(n);
    const s = (performance.now() - t) / 1000;
    if (total !== pairs * n) throw new Error(`got ${total}`);
    rates.push(big ? total * BIG / s / 1e6 : total / s);
  }
  for (const w of workers) w.terminate();
  return figures(rates);
}

/** One round of Python's side: one run of each case. */
function python(): Promise<Record<string, number[]>> {
  return runPython<Record<string, number[]>>("queue_bench.py", [
    "--timed",
    String(TIMED),
  ]);
}

/** Ours: one run of each case. */
async function ours(): Promise<Figures[]> {
  return [
    await run(1, 1, N_SMALL),
    await run(4, 4, N_SMALL / 4),
    await run(1, 1, N_BIG, true),
  ];
}

/** Raw postMessage: one run of each case. */
async function post(): Promise<Figures[]> {
  return [
    await runPost(1, N_SMALL),
    await runPost(4, N_SMALL / 4),
    await runPost(1, N_BIG, true),
  ];
}

/** Python: one run of each case. */
async function py(): Promise<Figures[]> {
  const r = await python();
  return [r.one_to_one_per_s, r.four_by_four_per_s, r.big_mb_per_s].map(
    figures,
  );
}

if (import.meta.main) {
  const rounds = roundsFromArgs();
  const all = await interleave(rounds, { ours, post, py });
  const cases = [
    `1 producer -> 1 consumer, ${N_SMALL} small items, msgs/s`,
    `4 producers x 4 consumers, ${N_SMALL} small items in all, msgs/s`,
    `1 producer -> 1 consumer, ${N_BIG} items of 1 MiB, MB/s`,
  ];
  const targets = [
    ["10x", "2x"],
    ["", ""],
    ["", ""],
  ];
  const fig = (c: number, x: number) =>
    c === 2 ? x.toFixed(0) : `${(x / 1000).toFixed(0)}k`;
  const range = (c: number, xs: number[]) => minMax(xs, (x) => fig(c, x));
  console.log(
    `Queue beside Python's multiprocessing.Queue and raw postMessage, ${rounds} interleaved rounds (higher is better);`,
  );
  console.log(
    `each run: a warm-up, then ${TIMED} timed rounds through the same processes: "first" is the first of them, "best" the best`,
  );
  for (const [c, title] of cases.entries()) {
    const pick = (side: Figures[][], k: keyof Figures) =>
      side.map((x) => x[c][k]);
    const [tPy, tPost] = targets[c];
    console.log(title);
    const rows: [string, Figures[][]][] = [
      ["Python multiprocessing.Queue", all.py],
      [`raw postMessage${c === 1 ? ", 4 pairs" : ""}`, all.post],
      ["Queue", all.ours],
    ];
    for (const [name, side] of rows) {
      console.log(
        `  ${name.padEnd(29)} first ${range(c, pick(side, "first"))}  best ${
          range(c, pick(side, "best"))
        }`,
      );
    }
    for (const k of ["best", "first"] as const) {
      const our = pick(all.ours, k);
      console.log(
        `  ${k.padEnd(5)} Queue/Python per round ${
          spread(ratios(our, pick(all.py, k)), 1, "x")
        }${
          tPy && k === "best" ? ` (target >= ${tPy})` : ""
        }, Queue/postMessage ${spread(ratios(our, pick(all.post, k)), 1, "x")}${
          tPost && k === "best" ? ` (target >= ${tPost})` : ""
        }`,
      );
    }
  }
}
