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
 * Run: `deno run --allow-all bench/process_bench.ts` (needs `python3`).
 *
 * @module
 */
import { type Connection, Pipe, Process } from "../mod.ts";
import { runPython } from "./_python.ts";
import { median } from "./_stats.ts";

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
  const py = await python();
  const ours = await startJoin();
  const raw = await rawStart();
  const rt = await pipeRt();
  const rawRt = await rawChannelRt();
  const atomicsRt = await rawAtomicsRt();
  const f = (x: number) => x.toFixed(2);
  console.log("Process start+join (median ms)");
  console.log(
    `  ours ${f(ours)}  python ${f(py.start_join_ms)}  raw Worker ${f(raw)}`,
  );
  console.log(
    `  ours/python ${f(ours / py.start_join_ms)} (target <= 0.5)  ours/raw ${
      f(ours / raw)
    }`,
  );
  console.log("Pipe round trip (us)");
  console.log(
    `  ours ${f(rt)}  python ${f(py.pipe_rt_us)}  raw MessageChannel ${
      f(rawRt)
    }  raw Atomics ${f(atomicsRt)}`,
  );
  console.log(
    `  ours/raw MessageChannel ${f(rt / rawRt)} (target <= 1.2)  ours/python ${
      f(rt / py.pipe_rt_us)
    }`,
  );
}
