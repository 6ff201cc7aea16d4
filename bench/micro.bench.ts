/**
 * Micro-benchmarks for `deno bench`: each group times one operation of ours
 * beside the nearest raw Deno way of doing the same (the group's baseline),
 * so `deno bench` prints how many times faster or slower ours is. The
 * comparisons with Python's multiprocessing are the scripts beside this file
 * (`deno task bench`).
 *
 * Run: `deno bench -A` (the children and the manager's server are daemons:
 * they end with the run).
 *
 * @module
 */
import { Worker as NodeWorker } from "node:worker_threads";
import { Lock, Manager, Pipe, Process, Queue } from "../mod.ts";
import { Decoder, Encoder } from "../lib/wire/_codec.ts";
import { echo } from "./_micro_targets.ts";

const item = { id: 7, name: "item", ok: true, tags: ["a", "b"], at: 1.5 };

// ---------------------------------------------------------------- codec
const encoder = new Encoder();
const decoder = new Decoder();
const scratch = new Uint8Array(1024);
Deno.bench("structuredClone of a small object", {
  group: "copy a small object",
  baseline: true,
}, () => {
  structuredClone(item);
});
Deno.bench("codec encode + decode (queues, pipes)", {
  group: "copy a small object",
}, () => {
  const n = encoder.encode(item);
  encoder.copyTo(scratch, 0, 0, n);
  decoder.decode(scratch, 0, n);
});

// ---------------------------------------------------------------- lock
const cell = new Int32Array(new SharedArrayBuffer(4));
Deno.bench("raw Atomics CAS + store", {
  group: "uncontended lock",
  baseline: true,
}, () => {
  if (Atomics.compareExchange(cell, 0, 0, 1) === 0) Atomics.store(cell, 0, 0);
});
const lock = new Lock();
Deno.bench("Lock acquireSync + release", { group: "uncontended lock" }, () => {
  lock.acquireSync();
  lock.release();
});

// ---------------------------------------------------------------- queue
const channel = new MessageChannel();
channel.port1.start();
channel.port2.start();
Deno.bench("MessageChannel postMessage + message event", {
  group: "one item through, one thread",
  baseline: true,
}, async () => {
  const got = new Promise((r) => channel.port2.onmessage = r);
  channel.port1.postMessage(item);
  await got;
});
const queue = new Queue<unknown>();
Deno.bench("Queue putNowait + getNowait", {
  group: "one item through, one thread",
}, () => {
  queue.putNowait(item);
  queue.getNowait();
});
// A burst bigger than the ring: most items wait in this process's buffer,
// which should cost about what one item at a time does (a shift of that
// buffer, an array, cost 34 us at 200k items before it was a Fifo).
const BURST = 200_000;
Deno.bench("Queue: 200k putNowait buffered, then 200k getNowait", {
  group: "a burst of items past the ring, one thread",
  n: 1,
}, () => {
  for (let i = 0; i < BURST; i++) queue.putNowait(i);
  for (let i = 0; i < BURST; i++) queue.getNowait();
});
Deno.bench("Queue: 200k putNowait + getNowait, one at a time", {
  group: "a burst of items past the ring, one thread",
  baseline: true,
  n: 1,
}, () => {
  for (let i = 0; i < BURST; i++) {
    queue.putNowait(i);
    queue.getNowait();
  }
});

// ---------------------------------------------------------------- pipe
// A raw echo worker (unref'd, so it ends with the run) on a bare port.
const raw = new MessageChannel();
const rawWorker = new NodeWorker(
  new URL(
    "data:text/javascript," + encodeURIComponent(
      `import { parentPort } from "node:worker_threads";
       parentPort.once("message", (p) => { p.on("message", (m) => p.postMessage(m)); });`,
    ),
  ),
);
rawWorker.unref();
rawWorker.postMessage(raw.port2, [raw.port2 as never]);
raw.port1.start();
Deno.bench("MessageChannel round trip to a worker", {
  group: "round trip to another process",
  baseline: true,
}, async () => {
  const got = new Promise((r) => raw.port1.onmessage = r);
  raw.port1.postMessage(item);
  await got;
});
const [mine, theirs] = Pipe();
const child = new Process({
  target: echo,
  args: [theirs],
  daemon: true,
  module: new URL("./_micro_targets.ts", import.meta.url),
});
await child.start();
Deno.bench("Pipe round trip to a child Process", {
  group: "round trip to another process",
}, async () => {
  mine.send(item);
  await mine.recv();
});

// ---------------------------------------------------------------- manager
const manager = await Manager.start();
const dict = await manager.dict<string, unknown>();
Deno.bench("manager dict set + get (two round trips)", {
  group: "round trip to another process",
}, async () => {
  await dict.set("k", item);
  await dict.get("k");
});

// ------------------------------------------------- a big value, 8 MiB
// Review item 8: a big value through a manager cost 30-90x a Pipe's.
const big = new Uint8Array(8 << 20).fill(7);
Deno.bench("Pipe round trip of 8 MiB bytes to a child Process", {
  group: "8 MiB there and back",
  baseline: true,
  n: 20,
  warmup: 2,
}, async () => {
  mine.send(big);
  await mine.recv();
});
Deno.bench("manager dict set + get of 8 MiB bytes", {
  group: "8 MiB there and back",
  n: 20,
  warmup: 2,
}, async () => {
  await dict.set("big", big);
  await dict.get("big");
});
