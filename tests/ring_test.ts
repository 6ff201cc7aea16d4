// The ring under the queues: wrap-around with items of every size, and
// recovery when a reader or a writer process dies at the worst moment.
import assert from "node:assert/strict";
import { Empty, Event, Process, Queue, reduceSymbol } from "../mod.ts";
import { ItemRing as Ring, NOTHING } from "../lib/shm/_ring.ts";
import { WORDS } from "../lib/shm/_ring_layout.ts";
import {
  consumeAndReport,
  dieHoldingReadSide,
  dieInStreamedRead,
  dieInStreamedWrite,
  produceMixed,
} from "./fixtures/queue_targets.ts";

const module = new URL("./fixtures/queue_targets.ts", import.meta.url);
const T = 20_000;

function ringOf(q: Queue<unknown>): Ring {
  return Ring.attach(q[reduceSymbol]().state as SharedArrayBuffer);
}

function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

function bytes(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = (i + k * 13) & 255;
  return b;
}

Deno.test("ring: items from 0 bytes to 4x the ring wrap around and come back whole, in order", () => {
  using q = new Queue<Uint8Array | string>({ capacityBytes: 4096 });
  const ring = ringOf(q);
  assert.equal(ring.capacity, 4096);
  const r = rng(7);
  let put = 0;
  let got = 0;
  for (let round = 0; round < 300; round++) {
    const n = 1 + Math.floor(r() * 4);
    for (let j = 0; j < n; j++) {
      const size = Math.floor(r() ** 3 * 4 * 4096);
      q.putNowait(j % 5 === 4 ? "s".repeat(size % 700) : bytes(put, size));
      put++;
    }
    const m = Math.floor(r() * (put - got + 1));
    for (let j = 0; j < m; j++) {
      const v = q.getSync({ timeout: T });
      if (typeof v !== "string") {
        assert.deepEqual(v, bytes(got, v.length), `item ${got}`);
      }
      got++;
    }
  }
  while (got < put) {
    q.getSync({ timeout: T });
    got++;
  }
  assert.equal(q.qsize(), 0);
  assert.equal(q.empty(), true);
  assert.throws(() => q.getNowait(), Empty);
});

Deno.test("ring: an item exactly filling what a whole record may hold, and one byte more", () => {
  using q = new Queue<Uint8Array>({ capacityBytes: 4096 });
  // A whole record holds up to a quarter of the ring (less its header);
  // the encoding adds 6 bytes (tag, kind, length) to the raw bytes.
  for (const size of [1024 - 8 - 6, 1024 - 8 - 5, 4096, 4096 * 3 + 1]) {
    q.putNowait(bytes(size, size));
    q.putNowait(bytes(1, 1));
    assert.deepEqual(q.getSync({ timeout: T }), bytes(size, size));
    assert.deepEqual(q.getSync({ timeout: T }), bytes(1, 1));
  }
});

Deno.test("ring: items a thread that never returns to its event loop buffered are written by its blocking waits, every time", () => {
  // The pattern of putSync producers: put, block, put, block, and no event
  // loop turn in between, so the async flusher never runs. (The stall of a
  // bounded queue fed by putSync: slots held by items nobody wrote.)
  using q = new Queue<Uint8Array>({ capacityBytes: 4096 });
  const ring = ringOf(q);
  const blockBriefly = () => new Event().waitSync(1); // runs the hooks
  for (let round = 0; round < 3; round++) {
    q.putNowait(bytes(round, 4096 * 2)); // bigger than the ring: buffered
    assert.equal(ring.buffering, true, `round ${round}`);
    let got: unknown = NOTHING;
    for (let i = 0; i < 200 && got === NOTHING; i++) {
      got = ring.tryGet(); // reads without flushing: only the hooks write
      if (got === NOTHING) blockBriefly();
    }
    assert.deepEqual(got, bytes(round, 4096 * 2), `round ${round}`);
    assert.equal(ring.buffering, false);
  }
});

Deno.test("ring: a reader that died holding the consumer side is taken over; its item is read once", async () => {
  using q = new Queue<string>();
  using ready = new Queue<string>();
  await q.put("first");
  await q.put("second");
  const ring = ringOf(q);
  const p = new Process({
    module,
    target: dieHoldingReadSide,
    args: [q, ready],
  });
  await p.start();
  assert.equal(await ready.get({ timeout: T }), "holding");
  assert.equal(Atomics.load(ring.ctl, WORDS.RLOCK), p.pid! + 1);
  assert.equal(
    q.qsize(),
    1,
    "the dying reader had counted the head item as read",
  );
  // While the holder lives, a reader that cannot wait finds nothing to take.
  p.terminate();
  await p.join(T);
  assert.equal(await q.get({ timeout: T }), "first", "read again, not lost");
  assert.equal(q.qsize(), 1, "counted once, not twice");
  assert.equal(await q.get({ timeout: T }), "second");
  assert.equal(q.qsize(), 0);
  await assert.rejects(q.get({ timeout: 50 }), Empty);
});

Deno.test("ring: a reader killed in the middle of a streamed item: the next one skips its rest and goes on", async () => {
  using q = new Queue<unknown>({ capacityBytes: 4096 });
  const ring = ringOf(q);
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const p = new Process({ module, target: dieInStreamedRead, args: [q, flag] });
  await p.start();
  // Bigger than the ring: the put writes the first piece now and keeps the
  // rest for this process's flusher, which cannot run while this thread
  // blocks below; so the child reads the first piece and waits for more.
  q.putNowait(bytes(5, 4096 * 3));
  assert.equal(Atomics.wait(flag, 0, 0, T), "ok");
  assert.equal(Atomics.load(ring.ctl, WORDS.RSTREAM), 1);
  q.putNowait("next");
  p.terminate();
  await p.join(T);
  // The streamed item is lost with the reader that had begun it; the rest of
  // its pieces are skipped, and the queue goes on.
  assert.equal(await q.get({ timeout: T }), "next");
  await q.joinThread();
  assert.equal(q.empty(), true);
  assert.equal(Atomics.load(ring.ctl, WORDS.RSTREAM), 0);
  q.putNowait(bytes(6, 4096 * 2));
  assert.deepEqual(await q.get({ timeout: T }), bytes(6, 4096 * 2));
});

Deno.test("ring: a writer killed in the middle of a streamed item: its part is dropped, a waiting reader goes on", async () => {
  using q = new Queue<unknown>({ capacityBytes: 4096 });
  using ready = new Queue<string>();
  const ring = ringOf(q);
  const p = new Process({
    module,
    target: dieInStreamedWrite,
    args: [q, ready, 4096 * 4],
  });
  await p.start();
  assert.equal(await ready.get({ timeout: T }), "streaming");
  assert.equal(Atomics.load(ring.ctl, WORDS.WLOCK), p.pid! + 1);
  // This reader begins the streamed item and waits for the rest.
  const reading = q.get({ timeout: T });
  p.terminate();
  await p.join(T);
  // Our put waits until it may take over the producer side, then the reader
  // drops the partial item and gets this one.
  await q.put("after");
  assert.equal(await reading, "after");
  assert.equal(Atomics.load(ring.ctl, WORDS.WSTREAM), 0);
  assert.equal(q.empty(), true);
  q.putNowait(bytes(7, 4096 * 4));
  assert.deepEqual(await q.get({ timeout: T }), bytes(7, 4096 * 4));
});

Deno.test("ring: streamed typed arrays of every kind, buffers and views at odd offsets arrive whole", () => {
  using q = new Queue<unknown>({ capacityBytes: 4096 });
  const big = 4096 * 3 + 24;
  const base = new ArrayBuffer(big + 16);
  new Uint8Array(base).forEach((_, i, a) => a[i] = (i * 7) & 255);
  const items: unknown[] = [
    new Float64Array(base, 8, big / 8),
    new Int16Array(base, 2, big / 2),
    new Uint8Array(base, 3, big), // not 8-aligned in its buffer
    new DataView(base, 1, big),
    base.slice(5, 5 + big),
    new BigInt64Array(big / 8).fill(-5n),
    { nested: new Float32Array(big / 4).fill(1.5), tail: "x" },
  ];
  for (const v of items) q.putNowait(v);
  for (const v of items) {
    const got = q.getSync({ timeout: T });
    assert.deepEqual(got, v);
    if (ArrayBuffer.isView(got)) {
      // As structuredClone gives it: the same offset in a copy of its buffer.
      const want = v as ArrayBufferView;
      assert.equal(got.byteOffset, want.byteOffset);
      assert.equal(got.buffer.byteLength, want.buffer.byteLength);
      assert.notEqual(got.buffer, want.buffer);
    }
  }
});

Deno.test("ring: a consumer terminated at a random moment: nothing duplicated or corrupt, at most its one item lost, no one blocked", async () => {
  const ringBytes = 16 * 1024;
  for (let round = 0; round < 3; round++) {
    using q = new Queue<unknown>({ capacityBytes: ringBytes });
    using out = new Queue<number>();
    const count = 600;
    const producer = new Process({
      module,
      target: produceMixed,
      args: [q, count, ringBytes],
    });
    const a = new Process({ module, target: consumeAndReport, args: [q, out] });
    await a.start();
    await producer.start();
    // Let A take some items, then end it wherever it is.
    const taken: number[] = [];
    while (taken.length < 20 + round * 37) {
      taken.push(await out.get({ timeout: T }));
    }
    a.terminate();
    await a.join(T);
    const b = new Process({ module, target: consumeAndReport, args: [q, out] });
    await b.start();
    for (;;) {
      const i = await out.get({ timeout: T });
      if (i === -1) break;
      taken.push(i);
    }
    await producer.join(T);
    await b.join(T);
    assert(!taken.includes(-2), "a corrupt item was delivered");
    const seen = new Set(taken);
    assert.equal(seen.size, taken.length, "an item was delivered twice");
    const lost = count - seen.size;
    assert(lost <= 1, `${lost} items lost`);
    // Per producer FIFO, across the two consumers one after the other.
    for (let k = 1; k < taken.length; k++) {
      assert(
        taken[k] > taken[k - 1],
        `out of order at ${k}: ${taken[k - 1]}, ${taken[k]}`,
      );
    }
  }
});
