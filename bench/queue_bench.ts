/**
 * Queues beside Python's `multiprocessing.Queue` and beside raw
 * `postMessage`, in one run (the machine is noisy: only ratios taken in the
 * same run mean anything). Each case is timed from a `go` event to the last
 * consumer done, best of 3:
 *
 * - one producer and one consumer process, 100,000 small items (msgs/s);
 * - 4 producers x 4 consumers, 25,000 small items each (msgs/s);
 * - one producer and one consumer, 1 MiB `Uint8Array` items (MB/s).
 *
 * Small item: `{ id: i, name: "item", ok: true }` (Python: the same dict).
 * Raw postMessage: a worker posting the same items through a
 * MessageChannel to another that counts them (4 such pairs for 4 x 4).
 *
 * Run: `deno run --allow-all bench/queue_bench.ts` (needs `python3`).
 *
 * @module
 */
import { Event, Process, Queue } from "../mod.ts";

const N_SMALL = 100_000;
const N_BIG = 200;
const BIG = 1 << 20;

/** Child: puts `n` small items numbered from `start`, once `go` is set. */
export async function producer(
  q: Queue<unknown>,
  go: Event,
  start: number,
  n: number,
) {
  await go.wait();
  for (let i = start; i < start + n; i++) {
    await q.put({ id: i, name: "item", ok: true });
  }
}

/** Child: puts `n` 1 MiB items and then `null`, once `go` is set. */
export async function bigProducer(q: Queue<unknown>, go: Event, n: number) {
  const payload = new Uint8Array(BIG);
  await go.wait();
  for (let i = 0; i < n; i++) await q.put(payload);
  await q.put(null);
}

/** Child: gets items until `null`, then reports how many on `done`. */
export async function consumer(
  q: Queue<unknown>,
  go: Event,
  done: Queue<number>,
) {
  await go.wait();
  let n = 0;
  while ((await q.get()) !== null) n++;
  await done.put(n);
}

async function run(
  producers: number,
  consumers: number,
  perProducer: number,
): Promise<number> {
  using q = new Queue<unknown>();
  using done = new Queue<number>();
  const go = new Event();
  const cs = Array.from(
    { length: consumers },
    () => new Process({ target: consumer, args: [q, go, done] }),
  );
  const ps = Array.from(
    { length: producers },
    (_, i) =>
      new Process({
        target: producer,
        args: [q, go, i * perProducer, perProducer],
      }),
  );
  for (const p of [...cs, ...ps]) await p.start();
  await new Promise((r) => setTimeout(r, 300));
  const t = performance.now();
  go.set();
  for (const p of ps) await p.join();
  for (const _ of cs) await q.put(null);
  let total = 0;
  for (const _ of cs) total += await done.get();
  const s = (performance.now() - t) / 1000;
  for (const p of cs) await p.join();
  if (total !== producers * perProducer) throw new Error(`got ${total}`);
  return total / s;
}

async function runBig(): Promise<number> {
  using q = new Queue<unknown>();
  using done = new Queue<number>();
  const go = new Event();
  const c = new Process({ target: consumer, args: [q, go, done] });
  const p = new Process({ target: bigProducer, args: [q, go, N_BIG] });
  await c.start();
  await p.start();
  await new Promise((r) => setTimeout(r, 300));
  const t = performance.now();
  go.set();
  const n = await done.get();
  const s = (performance.now() - t) / 1000;
  await p.join();
  await c.join();
  if (n !== N_BIG) throw new Error(`got ${n}`);
  return N_BIG * BIG / s / 1e6;
}

// Raw postMessage: plain workers, one MessageChannel per pair.
const POST_WORKER = `
self.onmessage = (e) => {
  const { role, port, n, big } = e.data;
  if (role === "producer") {
    self.onmessage = () => {
      if (big) {
        const payload = new Uint8Array(${BIG});
        for (let i = 0; i < n; i++) port.postMessage(payload);
      } else {
        for (let i = 0; i < n; i++) port.postMessage({ id: i, name: "item", ok: true });
      }
      port.postMessage(null);
    };
    self.postMessage("ready");
  } else {
    let count = 0;
    port.onmessage = (m) => {
      if (m.data === null) { self.postMessage(count); port.close(); return; }
      count++;
    };
    self.postMessage("ready");
  }
};`;

function worker(): Worker {
  return new Worker(
    "data:application/javascript," + encodeURIComponent(POST_WORKER),
    { type: "module" },
  );
}

function next(w: Worker): Promise<unknown> {
  return new Promise((r) => w.onmessage = (e) => r(e.data));
}

async function runPost(
  pairs: number,
  n: number,
  big: boolean,
): Promise<number> {
  const ws: Worker[] = [];
  const producers: Worker[] = [];
  const counts: Promise<unknown>[] = [];
  for (let i = 0; i < pairs; i++) {
    const { port1, port2 } = new MessageChannel();
    const prod = worker();
    const cons = worker();
    ws.push(prod, cons);
    let ready = next(cons);
    cons.postMessage({ role: "consumer", port: port2 }, [port2]);
    await ready;
    ready = next(prod);
    prod.postMessage({ role: "producer", port: port1, n, big }, [port1]);
    await ready;
    producers.push(prod);
    counts.push(next(cons));
  }
  await new Promise((r) => setTimeout(r, 300));
  const t = performance.now();
  for (const p of producers) p.postMessage("go");
  const total = (await Promise.all(counts)).reduce(
    (a: number, b) => a + (b as number),
    0,
  );
  const s = (performance.now() - t) / 1000;
  for (const w of ws) w.terminate();
  if (total !== pairs * n) throw new Error(`got ${total}`);
  return big ? total * BIG / s / 1e6 : total / s;
}

async function python(): Promise<Record<string, number>> {
  const out = await new Deno.Command("python3", {
    args: [new URL("./python/queue_bench.py", import.meta.url).pathname],
    stdout: "piped",
  }).output();
  if (!out.success) {
    throw new Error("python3 bench/python/queue_bench.py failed");
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

if (import.meta.main) {
  const py = await python();
  let one = 0, four = 0, big = 0, postOne = 0, postFour = 0, postBig = 0;
  for (let round = 0; round < 3; round++) {
    one = Math.max(one, await run(1, 1, N_SMALL));
    postOne = Math.max(postOne, await runPost(1, N_SMALL, false));
    four = Math.max(four, await run(4, 4, N_SMALL / 4));
    postFour = Math.max(postFour, await runPost(4, N_SMALL / 4, false));
    big = Math.max(big, await runBig());
    postBig = Math.max(postBig, await runPost(1, N_BIG, true));
  }
  const k = (x: number) => `${(x / 1000).toFixed(0)}k msgs/s`;
  const mb = (x: number) => `${x.toFixed(0)} MB/s`;
  const x = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
  console.log(
    `1 producer -> 1 consumer, ${N_SMALL} small items (higher is better)`,
  );
  console.log(`  Python multiprocessing.Queue     ${k(py.one_to_one_per_s)}`);
  console.log(`  raw postMessage                  ${k(postOne)}`);
  console.log(
    `  Queue                            ${k(one)}  ${
      x(one, py.one_to_one_per_s)
    } Python (target >= 10x), ${x(one, postOne)} postMessage (target >= 2x)`,
  );
  console.log(`4 producers x 4 consumers, ${N_SMALL} small items in all`);
  console.log(`  Python multiprocessing.Queue     ${k(py.four_by_four_per_s)}`);
  console.log(`  raw postMessage, 4 pairs         ${k(postFour)}`);
  console.log(
    `  Queue                            ${k(four)}  ${
      x(four, py.four_by_four_per_s)
    } Python, ${x(four, postFour)} postMessage`,
  );
  console.log(`1 producer -> 1 consumer, ${N_BIG} items of 1 MiB`);
  console.log(`  Python multiprocessing.Queue     ${mb(py.big_mb_per_s)}`);
  console.log(`  raw postMessage (a copy each)    ${mb(postBig)}`);
  console.log(
    `  Queue                            ${mb(big)}  ${
      x(big, py.big_mb_per_s)
    } Python, ${x(big, postBig)} postMessage (target >= 1000 MB/s)`,
  );
}
