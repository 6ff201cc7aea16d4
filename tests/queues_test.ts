// Queue, SimpleQueue, JoinableQueue: the API, bad input, and many producers
// and consumers in separate processes.
import assert from "node:assert/strict";
import {
  Empty,
  Event,
  Full,
  JoinableQueue,
  Process,
  ProcessError,
  Queue,
  SimpleQueue,
  TimeoutError,
} from "../mod.ts";
import {
  consumeRange,
  consumeSizes,
  joinableWorker,
  produceRange,
  produceRangeSync,
  produceSizes,
  putBigThenBlock,
  putMoreThanFits,
  syncEcho,
  takeAndEnd,
} from "./fixtures/queue_targets.ts";
import { runTask } from "./_run_task.ts";

const module = new URL("./fixtures/queue_targets.ts", import.meta.url);
const T = 30_000;

Deno.test("Queue: FIFO, qsize/empty/full, the Nowait and Sync forms", async () => {
  using q = new Queue<unknown>({ maxsize: 3 });
  assert.equal(q.maxsize, 3);
  assert.equal(q.empty(), true);
  assert.equal(q.full(), false);
  await q.put(1);
  q.putNowait({ two: [2] });
  q.putSync("three");
  assert.equal(q.qsize(), 3);
  assert.equal(q.full(), true);
  assert.equal(q.empty(), false);
  assert.throws(() => q.putNowait(4), Full);
  await assert.rejects(q.put(4, { block: false }), Full);
  await assert.rejects(q.put(4, { timeout: 20 }), Full);
  assert.throws(() => q.putSync(4, { timeout: 20 }), Full);
  assert.equal(await q.get(), 1);
  assert.deepEqual(q.getNowait(), { two: [2] });
  assert.equal(q.getSync(), "three");
  assert.equal(q.qsize(), 0);
  assert.throws(() => q.getNowait(), Empty);
  await assert.rejects(q.get({ block: false }), Empty);
  await assert.rejects(q.get({ timeout: 20 }), Empty);
  assert.throws(() => q.getSync({ timeout: 20 }), Empty);
  assert.throws(() => q.getSync({ block: false }), Empty);
});

Deno.test("Queue: a put waiting on a full queue goes on when a get makes room", async () => {
  using q = new Queue<number>(1); // Python's Queue(maxsize)
  await q.put(1);
  const waiting = q.put(2, { timeout: T });
  assert.equal(await q.get(), 1);
  await waiting;
  assert.equal(await q.get(), 2);
});

Deno.test("Queue: any structured-cloneable item passes; what cannot be sent fails clearly and the queue goes on", async () => {
  using q = new Queue<unknown>();
  const items = [
    0,
    -0,
    NaN,
    "é😀",
    10n ** 30n,
    null,
    undefined,
    [1, [2]],
    { a: { b: new Uint8Array([1, 2]) } },
    new Map([[1, new Set(["x"])]]),
    new Date(5),
    /re/g,
    new Float64Array([1.5]),
    new ArrayBuffer(3),
  ];
  for (const v of items) await q.put(v);
  for (const v of items) assert.deepEqual(await q.get(), v);
  await assert.rejects(
    q.put({ handler: () => 1 }),
    (e: Error) =>
      e instanceof TypeError && /item\.handler is a function/.test(e.message),
  );
  assert.throws(() => q.putNowait([Symbol("s")]), /item\[0\] is a symbol/);
  assert.throws(
    () => q.putNowait({ q: new Queue() }),
    /item\.q is a Queue: it holds shared memory/,
  );
  assert.equal(q.qsize(), 0, "a failed put takes no slot");
  await q.put("fine");
  assert.equal(await q.get(), "fine");
});

Deno.test("Queue: bad options are RangeErrors or TypeErrors naming the value", () => {
  for (const maxsize of [-1, 1.5, NaN, "3" as unknown as number]) {
    assert.throws(
      () => new Queue({ maxsize }),
      (e: Error) =>
        e instanceof RangeError &&
        /maxsize must be a non-negative integer/.test(e.message) &&
        e.message.includes(String(maxsize)),
    );
  }
  assert.throws(() => new Queue(-2), RangeError);
  assert.throws(() => new JoinableQueue({ maxsize: -1 }), RangeError);
  assert.throws(() => new Queue({ capacityBytes: 0 }), /capacityBytes/);
  assert.throws(() => new Queue({ capacityBytes: 2 ** 31 }), /capacityBytes/);
  assert.throws(
    () => new SimpleQueue({ maxsize: 3 } as never),
    /SimpleQueue has no maxsize/,
  );
  using q = new Queue();
  assert.throws(() => q.getSync({ timeout: -1 }), RangeError);
  assert.throws(() => q.putSync(1, false as never), TypeError);
});

Deno.test("Queue: put or get after close() throws; the queue lives on for other objects", async () => {
  const q = new Queue<number>();
  await q.put(1);
  q.close();
  await assert.rejects(
    q.put(2),
    (e: Error) =>
      e instanceof ProcessError && /put\(\) on a closed Queue/.test(e.message),
  );
  assert.throws(() => q.putNowait(2), ProcessError);
  await assert.rejects(q.get(), ProcessError);
  assert.throws(() => q.getNowait(), ProcessError);
  await q.joinThread();
  q.close(); // twice is fine
});

Deno.test("JoinableQueue: join waits for taskDone; taskDone too often throws", async () => {
  using q = new JoinableQueue<number>();
  using out = new Queue<number>();
  const p = new Process({ module, target: joinableWorker, args: [q, out] });
  await p.start();
  for (let i = 0; i < 5; i++) await q.put(i);
  await q.put(null as unknown as number);
  await q.join();
  const got = [];
  for (let i = 0; i < 5; i++) got.push(await out.get({ timeout: T }));
  assert.deepEqual(got, [0, 2, 4, 6, 8]);
  await p.join(T);
  assert.equal(p.exitCode, 0);
  assert.throws(
    () => q.taskDone(),
    (e: Error) =>
      e instanceof ProcessError &&
      /taskDone\(\) called more times/.test(e.message),
  );
  await q.put(1);
  await q.get();
  q.taskDone();
  q.joinSync();
});

Deno.test("JoinableQueue: join(timeout) rejects with TimeoutError when a consumer ended before taskDone()", async () => {
  using q = new JoinableQueue<number>();
  const p = new Process({ module, target: takeAndEnd, args: [q] });
  await p.start();
  await q.put(7);
  await p.join(T);
  assert.equal(p.exitCode, 0);
  // Its item is never done: join would wait forever, a timeout bounds it.
  await assert.rejects(
    q.join(50),
    (e: Error) =>
      e instanceof TimeoutError &&
      /not marked done .* after 50 ms/.test(e.message),
  );
  assert.throws(() => q.joinSync(10), TimeoutError);
  await assert.rejects(q.join(-1), RangeError);
  assert.throws(() => q.joinSync("5" as never), TypeError);
  q.taskDone();
  await q.join(50);
  q.joinSync(0);
});

Deno.test("SimpleQueue and JoinableQueue cross into a child as themselves", async () => {
  using sq = new SimpleQueue<number>();
  using out = new JoinableQueue<number>();
  await sq.put(21);
  const p = new Process({ module, target: syncEcho, args: [sq, out] });
  await p.start();
  await p.join(T);
  assert.equal(p.exitCode, 0);
  assert.equal(await out.get({ timeout: T }), 42);
  out.taskDone(); // the child's put counted as a task
  assert.throws(() => out.taskDone(), ProcessError);
});

Deno.test("a burst past a full ring: small, ring-sized and streamed items all come out whole, in order", async () => {
  // A 4 KiB ring holds a few items; the rest wait in this process (the small
  // ones back to back in one buffer that grows and compacts, the others each
  // on its own) and go in as gets make room, some while more are put.
  using q = new Queue<unknown>({ capacityBytes: 4096 });
  const item = (i: number): unknown =>
    i % 97 === 0
      ? "s".repeat(3000 + i % 5) // streamed in pieces
      : i % 31 === 0
      ? "m".repeat(1000 + i % 40) // near the largest whole record
      : i % 2
      ? { i, pad: "x".repeat(i % 300) }
      : i;
  const N = 6000;
  let got = 0;
  for (let i = 0; i < N; i++) {
    q.putNowait(item(i));
    // Every so often a few gets, so that writing resumes mid-burst.
    if (i % 1000 === 999) {
      for (let k = 0; k < 300; k++) {
        assert.deepEqual(q.getNowait(), item(got++));
      }
    }
  }
  assert.equal(q.qsize(), N - got);
  while (got < N) {
    assert.deepEqual(await q.get({ timeout: T }), item(got), `item ${got}`);
    got++;
  }
  assert.equal(q.empty(), true);
});

Deno.test("a child that put more than fits writes it all out before it ends", async () => {
  using q = new Queue<{ i: number; pad: string }>({ capacityBytes: 4096 });
  const p = new Process({
    module,
    target: putMoreThanFits,
    args: [q, 200, 300],
  });
  await p.start();
  for (let i = 0; i < 200; i++) {
    assert.equal((await q.get({ timeout: T })).i, i);
  }
  await p.join(T);
  assert.equal(p.exitCode, 0);
  assert.equal(q.empty(), true);
});

async function runRange(
  producers: number,
  consumers: number,
  perProducer: number,
  options: { capacityBytes?: number; maxsize?: number; sync?: boolean },
) {
  const { sync: _, ...queueOptions } = options;
  using q = new Queue<unknown>(queueOptions);
  using results = new Queue<Int32Array[]>();
  const cs = [];
  for (let c = 0; c < consumers; c++) {
    const p = new Process({
      module,
      target: consumeRange,
      args: [q, results, producers, options.sync ?? false],
    });
    await p.start();
    cs.push(p);
  }
  const ps = [];
  for (let i = 0; i < producers; i++) {
    const p = new Process({
      module,
      target: options.sync ? produceRangeSync : produceRange,
      args: [q, i, perProducer],
    });
    await p.start();
    ps.push(p);
  }
  for (const p of ps) {
    await p.join(T * 4);
    assert.equal(p.exitCode, 0);
  }
  for (let c = 0; c < consumers; c++) await q.put(null);
  const seen = Array.from(
    { length: producers },
    () => new Uint8Array(perProducer),
  );
  for (let c = 0; c < consumers; c++) {
    const got = await results.get({ timeout: T * 4 });
    for (let p = 0; p < producers; p++) {
      let last = -1;
      for (const i of got[p]) {
        assert(
          i > last,
          `consumer ${c} got producer ${p}'s ${i} after ${last}`,
        );
        last = i;
        seen[p][i]++;
      }
    }
  }
  for (const p of cs) {
    await p.join(T);
    assert.equal(p.exitCode, 0);
  }
  for (let p = 0; p < producers; p++) {
    const lost = seen[p].findIndex((n) => n === 0);
    const twice = seen[p].findIndex((n) => n > 1);
    assert.equal(lost, -1, `producer ${p}: item ${lost} lost`);
    assert.equal(twice, -1, `producer ${p}: item ${twice} duplicated`);
  }
  assert.equal(q.qsize(), 0);
}

Deno.test("stress: 4 producers x 4 consumers x 25,000 items, nothing lost, duplicated or reordered per producer", async () => {
  await runRange(4, 4, 25_000, {});
});

Deno.test("stress: a small bounded ring, putSync/getSync in workers, 3 x 3 x 5,000", async () => {
  await runRange(3, 3, 5_000, { capacityBytes: 4096, maxsize: 50, sync: true });
});

Deno.test("stress: 2 producers x 2 consumers, item sizes from 0 bytes to 4x the ring", async () => {
  const ringBytes = 64 * 1024;
  using q = new Queue<unknown>({ capacityBytes: ringBytes });
  using results = new Queue<Int32Array>();
  const count = 60;
  const cs = [];
  for (let c = 0; c < 2; c++) {
    const p = new Process({ module, target: consumeSizes, args: [q, results] });
    await p.start();
    cs.push(p);
  }
  const ps = [];
  for (let i = 0; i < 2; i++) {
    const p = new Process({
      module,
      target: produceSizes,
      args: [q, i, count, 4 * ringBytes],
    });
    await p.start();
    ps.push(p);
  }
  for (const p of ps) await p.join(T * 4);
  for (const _ of cs) await q.put(null);
  const next = [0, 0];
  const perConsumerLast = [[-1, -1], [-1, -1]];
  let big = 0;
  let empty = 0;
  for (let c = 0; c < 2; c++) {
    const rows = await results.get({ timeout: T * 4 });
    for (let k = 0; k < rows.length; k += 4) {
      const [p, i, size, ok] = rows.subarray(k, k + 4);
      assert.equal(ok, 1, `producer ${p} item ${i} (${size} bytes) corrupt`);
      assert(i > perConsumerLast[c][p], "reordered");
      perConsumerLast[c][p] = i;
      next[p]++;
      if (size > ringBytes) big++;
      if (size === 0) empty++;
    }
  }
  for (const p of cs) await p.join(T);
  assert.deepEqual(next, [count, count], "every item arrived once");
  assert(
    big > 0 && empty > 0,
    `sizes spread: ${big} bigger than the ring, ${empty} empty`,
  );
});

Deno.test("a producer that puts more than the ring holds, then blocks, still delivers it", async () => {
  using q = new Queue<unknown>({ capacityBytes: 64 * 1024 });
  const done = new Event();
  const p = new Process({
    module,
    target: putBigThenBlock,
    args: [q, done, 200_000],
  });
  await p.start();
  assert.equal((await q.get({ timeout: T }) as string).length, 200_000);
  done.set();
  await p.join(T);
  assert.equal(p.exitCode, 0);
});

Deno.test("example:queue prints seed 001's squares and seed 002's colors", async () => {
  const out = await runTask("example:queue");
  assert.equal(
    out,
    [
      "Queue elements:",
      "1",
      "4",
      "9",
      "16",
      "Queue is now empty!",
      "pushing items to queue:",
      "item no:  1   red",
      "item no:  2   green",
      "item no:  3   blue",
      "item no:  4   black",
      "",
      "popping items from queue:",
      "item no:  0   red",
      "item no:  1   green",
      "item no:  2   blue",
      "item no:  3   black",
      "",
    ].join("\n"),
  );
});

Deno.test("example:tasks: 10 tasks done by 4 processes, the done queue printed with their names", async () => {
  const lines = (await runTask("example:tasks")).trimEnd().split("\n");
  assert.equal(lines.length, 20, lines.join("\n"));
  const taken = lines.slice(0, 10);
  const done = lines.slice(10);
  const all = Array.from({ length: 10 }, (_, i) => `Task no ${i}`);
  assert.deepEqual([...taken].sort(), [...all].sort(), "each task taken once");
  const names = new Set<string>();
  for (const line of done) {
    const m = line.match(/^(Task no \d) is done by (Process-[1-4])$/);
    assert(m, `unexpected line: ${line}`);
    names.add(m[2]);
  }
  assert.deepEqual(
    done.map((l) => l.split(" is done")[0]).sort(),
    [...all].sort(),
  );
  assert(names.size >= 2, `the work was shared: ${[...names]}`);
});

Deno.test("example:pipeline: 5000 numbers squared then rooted, all back in order, ended by a sentinel", async () => {
  const out = await runTask("example:pipeline");
  const lines = out.trimEnd().split("\n");
  assert.equal(lines.length, 3 * 5000 + 1);
  assert.equal(
    lines.at(-1),
    "pipeline summary: 5000 of 5000 values back, in order: true",
  );
  const entering = lines.filter((l) => l.startsWith("entering the Q : "));
  const p1 = lines.filter((l) => l.startsWith("tmp process1 : "));
  const p2 = lines.filter((l) => l.startsWith("tmp process2 : "));
  assert.equal(entering.length, 5000);
  assert.equal(p1.length, 5000);
  assert.equal(p2.length, 5000);
  for (const i of [0, 1, 2, 1234, 4999]) {
    assert.equal(entering[i], `entering the Q :  ${i}`);
    assert.equal(p1[i], `tmp process1 :  ${i}`);
    assert.equal(p2[i], `tmp process2 :  ${i}.0`);
  }
});
