/**
 * Process start+join latency and Pipe round-trip latency, beside Python's
 * `multiprocessing` (spawn) and beside raw Deno workers, in one run (the
 * machine is noisy: only ratios taken in the same run mean anything).
 *
 * - start+join: median of `new Process({ target: noop })`, `start()`,
 *   `join()`; raw: `new Worker(...)` until its first message, then
 *   `terminate()`.
 * - Pipe round trip: a child echoes a small object; raw: the same over a bare
 *   MessageChannel with `onmessage` on both sides, and a SharedArrayBuffer +
 *   Atomics ping-pong (the floor).
 *
 * Targets (issue 2): start+join at most half of Python's; Pipe round trip
 * within 1.2x of raw MessageChannel.
 *
 * Each round runs every side once, the first rotating (`_rounds.ts`);
 * ratios are taken within a round, printed as median (min-max).
 *
 * Run: `deno run --allow-all bench/process_bench.ts [--quick] [--rounds N]`
 * (needs `python3`; 5 rounds, `--quick` 2).
 *
 * @module
 */
import { type Connection, Pipe, Process } from "../mod.ts";
import { runPython } from "./_python.ts";
import { interleave, roundsFromArgs } from "./_rounds.ts";
import { median, minMax, ratios, spread } from "./_stats.ts";

const N_START = 30;
const N_RT = 20_000;

/** Child for start+join: does nothing. */
export function noop() {}

/** Child for the round trip: echoes until EOF. */
export async function echo(conn: Connection) {
  while (true) {
    let msg;
    try {
      msg = await conn.recv();
    } catch {
      return;
    }
    conn.send(msg);
  }
}

async function startJoin(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < N_START; i++) {
    const t = performance.now();
    const p = new Process({ target: noop });
    await p.start();
    await p.join();
    times.push(performance.now() - t);
  }
  return median(times);
}

async function rawStart(): Promise<number> {
  const times: number[] = [];
  const src = "data:application/javascript," +
    encodeURIComponent("postMessage(1)");
  for (let i = 0; i < N_START; i++) {
    const t = performance.now();
    const w = new Worker(src, { type: "module" });
    await new Promise((r) => w.onmessage = r);
    w.terminate();
    times.push(performance.now() - t);
  }
  return median(times);
}

async function pipeRt(): Promise<number> {
  const [a, b] = Pipe();
  const p = new Process({ target: echo, args: [b] });
  await p.start();
  const msg = { i: 1 };
  for (let i = 0; i < 1000; i++) {
    a.send(msg);
    await a.recv();
  }
  const t = performance.now();
  for (let i = 0; i < N_RT; i++) {
    a.send(msg);
    await a.recv();
  }
  const us = (performance.now() - t) * 1000 / N_RT;
  a.close();
  await p.join();
  return us;
}

async function rawChannelRt(): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  const src = "data:application/javascript," + encodeURIComponent(
    "self.onmessage = (m) => { const p = m.data; p.onmessage = (e) => p.postMessage(e.data); };",
  );
  const w = new Worker(src, { type: "module" });
  w.postMessage(port2, [port2]);
  const msg = { i: 1 };
  const run = (n: number) =>
    new Promise<void>((resolve) => {
      let k = 0;
      port1.onmessage = () => {
        if (++k === n) resolve();
        else port1.postMessage(msg);
      };
      port1.postMessage(msg);
    });
  await run(1000);
  const t = performance.now();
  await run(N_RT);
  const us = (performance.now() - t) * 1000 / N_RT;
  port1.close();
  w.terminate();
  return us;
}

async function rawAtomicsRt(): Promise<number> {
  const i32 = new Int32Array(new SharedArrayBuffer(8));
  const src = "data:application/javascript," + encodeURIComponent(
    `self.onmessage = (m) => { const a = new Int32Array(m.data); postMessage(0);
       for (let v = 1; ; v += 2) { Atomics.wait(a, 0, v - 1); if (Atomics.load(a, 1)) return; Atomics.store(a, 0, v + 1); Atomics.notify(a, 0); } };`,
  );
  const w = new Worker(src, { type: "module" });
  w.postMessage(i32.buffer);
  await new Promise((r) => w.onmessage = r);
  const t = performance.now();
  for (let v = 0; v < 2 * N_RT; v += 2) {
    Atomics.store(i32, 0, v + 1);
    Atomics.notify(i32, 0);
    Atomics.wait(i32, 0, v + 1);
  }
  const us = (performance.now() - t) * 1000 / N_RT;
  Atomics.store(i32, 1, 1);
  Atomics.store(i32, 0, 2 * N_RT + 1);
  Atomics.notify(i32, 0);
  w.terminate();
  return us;
}

function python(): Promise<{ start_join_ms: number; pipe_rt_us: number }> {
  return runPython<{ start_join_ms: number; pipe_rt_us: number }>(
    "process_bench.py",
  );
}

if (import.meta.main) {
  const rounds = roundsFromArgs();
  const r = await interleave(rounds, {
    ours: async () => ({ start: await startJoin(), rt: await pipeRt() }),
    python: python,
    raw: async () => ({
      start: await rawStart(),
      rt: await rawChannelRt(),
      atomics: await rawAtomicsRt(),
    }),
  });
  const f = (xs: number[]) => minMax(xs);
  const ours = r.ours, py = r.python, raw = r.raw;
  const start = ours.map((x) => x.start), rt = ours.map((x) => x.rt);
  const pyStart = py.map((x) => x.start_join_ms);
  const pyRt = py.map((x) => x.pipe_rt_us);
  const rawStartMs = raw.map((x) => x.start), rawRt = raw.map((x) => x.rt);
  console.log(
    `${rounds} interleaved rounds; ratios per round, median (min-max) (lower is better)`,
  );
  console.log("Process start+join (median ms of a round)");
  console.log(
    `  ours ${f(start)}  python ${f(pyStart)}  raw Worker ${f(rawStartMs)}`,
  );
  console.log(
    `  ours/python ${
      spread(ratios(start, pyStart))
    } (target <= 0.5)  ours/raw ${spread(ratios(start, rawStartMs))}`,
  );
  console.log("Pipe round trip (us)");
  console.log(
    `  ours ${f(rt)}  python ${f(pyRt)}  raw MessageChannel ${
      f(rawRt)
    }  raw Atomics ${f(raw.map((x) => x.atomics))}`,
  );
  console.log(
    `  ours/raw MessageChannel ${
      spread(ratios(rt, rawRt))
    } (target <= 1.2)  ours/python ${spread(ratios(rt, pyRt))}`,
  );
}
