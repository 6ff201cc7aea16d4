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
 * (a fifth of the items: V8 compiles the hot code), then the timed round,
 * from a `go` event to the moment every consumer has taken every item; each
 * producer ends its round with a `null`, each consumer stops at one.
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

/** Items (or bytes) per second through a Queue. */
async function run(
  producers: number,
  consumers: number,
  perProducer: number,
  big = false,
): Promise<number> {
  using q = new Queue<unknown>();
  using done = new Queue<number>();
  const rounds = [new Event(), new Event()];
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
  const t = performance.now();
  rounds[1].set();
  let total = 0;
  for (let c = 0; c < consumers; c++) total += await done.get();
  const s = (performance.now() - t) / 1000;
  for (const p of procs) await p.join();
  if (total !== producers * perProducer) throw new Error(`got ${total}`);
  return big ? total * BIG / s / 1e6 : total / s;
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

/** Items (or bytes) per second through raw postMessage, `pairs` producer/consumer pairs. */
async function runPost(
  pairs: number,
  n: number,
  big = false,
): Promise<number> {
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
  const t = performance.now();
  const total = await round(n);
  const s = (performance.now() - t) / 1000;
  for (const w of workers) w.terminate();
  if (total !== pairs * n) throw new Error(`got ${total}`);
  return big ? total * BIG / s / 1e6 : total / s;
}

/** One round of Python's side: one run of each case. */
function python(): Promise<Record<string, number>> {
  return runPython<Record<string, number>>("queue_bench.py", ["--rounds", "1"]);
}

/** Ours: one run of each case. */
async function ours(): Promise<number[]> {
  return [
    await run(1, 1, N_SMALL),
    await run(4, 4, N_SMALL / 4),
    await run(1, 1, N_BIG, true),
  ];
}

/** Raw postMessage: one run of each case. */
async function post(): Promise<number[]> {
  return [
    await runPost(1, N_SMALL),
    await runPost(4, N_SMALL / 4),
    await runPost(1, N_BIG, true),
  ];
}

/** Python: one run of each case. */
async function py(): Promise<number[]> {
  const r = await python();
  return [r.one_to_one_per_s, r.four_by_four_per_s, r.big_mb_per_s];
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
    `Queue beside Python's multiprocessing.Queue and raw postMessage, ${rounds} interleaved rounds (higher is better)`,
  );
  for (const [c, title] of cases.entries()) {
    const our = all.ours.map((x) => x[c]);
    const raw = all.post.map((x) => x[c]);
    const python = all.py.map((x) => x[c]);
    const [tPy, tPost] = targets[c];
    console.log(title);
    console.log(`  Python multiprocessing.Queue  ${range(c, python)}`);
    console.log(
      `  raw postMessage${c === 1 ? ", 4 pairs" : "         "}      ${
        range(c, raw)
      }`,
    );
    console.log(`  Queue                         ${range(c, our)}`);
    console.log(
      `  Queue/Python per round ${spread(ratios(our, python), 1, "x")}${
        tPy ? ` (target >= ${tPy})` : ""
      }, Queue/postMessage ${spread(ratios(our, raw), 1, "x")}${
        tPost ? ` (target >= ${tPost})` : ""
      }`,
    );
  }
}
