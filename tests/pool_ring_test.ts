// The pool's single-producer single-consumer record ring (lib/pool/_record_ring.ts):
// records of every size wrap around whole and in order, full and empty are
// told apart, the wrapping int32 counters cross 2^31, and a producer in
// another process publishes records a reader sees whole.
import assert from "node:assert/strict";
import { R, RecordRing as Ring, W } from "../lib/pool/_record_ring.ts";
import { waitAsync } from "../lib/shm/_wait.ts";
import {
  produceRecords,
  recordBytes,
  recordLength,
} from "./fixtures/machinery_targets.ts";
import { endsWell, withChild } from "./_child.ts";

const T = 20_000;

function put(ring: Ring, i: number, length: number): boolean {
  const at = ring.begin(length);
  if (at < 0) return false;
  assert.equal(at % 8, 0, "payloads are 8-byte aligned");
  ring.u8.set(recordBytes(i, length), at);
  ring.commit(i, length);
  return true;
}

function take(ring: Ring, i: number, length: number): void {
  assert.equal(ring.next(), true, `record ${i} is there`);
  assert.equal(ring.type, i, `record ${i}'s type`);
  assert.equal(ring.length, length, `record ${i}'s length`);
  assert.deepEqual(
    ring.u8.slice(ring.at, ring.at + ring.length),
    recordBytes(i, length),
    `record ${i}'s bytes`,
  );
  ring.release();
}

Deno.test("pool ring: a capacity that is not a power of two of at least 64 bytes is a RangeError naming it", () => {
  assert.throws(() => new Ring(100), /power of two, got 100/);
  assert.throws(() => new Ring(32), /power of two, got 32/);
  assert.throws(() => new Ring(new SharedArrayBuffer(16 + 96)), /got 96/);
  assert.equal(new Ring(64).maxPayload, 24);
  assert.equal(new Ring(new SharedArrayBuffer(16 + 4096)).maxPayload, 2040);
});

Deno.test("pool ring: empty until a record is committed, empty again once it is released", () => {
  const ring = new Ring(256);
  assert.equal(ring.empty(), true);
  assert.equal(ring.next(), false);
  const at = ring.begin(5);
  assert.ok(at > 0);
  assert.equal(ring.empty(), true, "a reserved record is not visible yet");
  assert.equal(ring.next(), false);
  ring.u8.set(recordBytes(9, 5), at);
  ring.commit(9, 5);
  assert.equal(ring.empty(), false);
  take(ring, 9, 5);
  assert.equal(ring.empty(), true);
  assert.equal(
    Atomics.load(ring.hdr, W),
    16,
    "8-byte head + 5 bytes padded to 8",
  );
  assert.equal(Atomics.load(ring.hdr, R), 16);
});

Deno.test("pool ring: a full ring refuses a record until the reader frees room, and never overwrites unread ones", () => {
  const ring = new Ring(256);
  // 24-byte records take 32 bytes each: 8 fill the ring exactly.
  for (let i = 0; i < 8; i++) {
    assert.equal(put(ring, i, 24), true, `record ${i}`);
  }
  assert.equal(put(ring, 8, 0), false, "full: not even an empty record fits");
  take(ring, 0, 24);
  assert.equal(
    put(ring, 8, 25),
    false,
    "32 bytes free, a 40-byte record does not fit",
  );
  assert.equal(put(ring, 8, 24), true);
  for (let i = 1; i <= 8; i++) take(ring, i, 24);
  assert.equal(ring.empty(), true);
  assert.equal(
    ring.begin(ring.maxPayload + 1),
    -1,
    "over the largest payload, even empty",
  );
});

Deno.test("pool ring: the largest payload fits an empty ring at every offset (a pad record fills the end)", () => {
  const ring = new Ring(256);
  for (let off = 0; off < 256; off += 8) {
    Atomics.store(ring.hdr, W, off);
    Atomics.store(ring.hdr, R, off);
    assert.equal(put(ring, off, ring.maxPayload), true, `at offset ${off}`);
    take(ring, off, ring.maxPayload);
    assert.equal(ring.empty(), true, `at offset ${off}`);
  }
});

Deno.test("pool ring: records of every size wrap around whole and in order, with the counters crossing 2^31", () => {
  const ring = new Ring(1024);
  // The counters wrap as int32: start them just short of 2^31.
  const start = 0x7fffff00;
  Atomics.store(ring.hdr, W, start);
  Atomics.store(ring.hdr, R, start);
  let seed = 11;
  const rnd = () =>
    (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const queued: [number, number][] = [];
  let next = 0;
  for (let round = 0; round < 2000; round++) {
    // Fill until full, then drain a random part: every offset gets a turn.
    // (A 1 KB ring holds at most 128 records: more means it overwrote.)
    for (let k = 0;; k++) {
      assert.ok(k <= 128, "the ring took more than it can hold");
      const length = Math.floor(rnd() ** 2 * (ring.maxPayload + 1));
      if (!put(ring, next, length)) break;
      queued.push([next++, length]);
    }
    const drain = 1 + Math.floor(rnd() * queued.length);
    for (let k = 0; k < drain; k++) {
      const [i, length] = queued.shift()!;
      take(ring, i, length);
    }
  }
  for (const [i, length] of queued.splice(0)) take(ring, i, length);
  assert.equal(ring.empty(), true);
  assert.ok(Atomics.load(ring.hdr, W) < 0, "the write counter wrapped");
  assert.ok(next > 4000, `${next} records went round`);
});

Deno.test("pool ring: records a producer in another process writes arrive whole and in order", async () => {
  const ring = new Ring(4096);
  const n = 3000;
  await withChild(produceRecords, [ring.buffer, n], async (p) => {
    for (let i = 0; i < n; i++) {
      while (!ring.next()) {
        const w = Atomics.load(ring.hdr, W);
        if (!ring.empty()) continue;
        const r = await waitAsync(ring.hdr, W, w, T);
        assert.notEqual(r, "timed-out", `record ${i} never came`);
      }
      const length = recordLength(i, ring.maxPayload);
      assert.equal(ring.type, i);
      assert.equal(ring.length, length);
      assert.deepEqual(
        ring.u8.slice(ring.at, ring.at + length),
        recordBytes(i, length),
      );
      ring.release();
    }
    assert.equal(ring.empty(), true);
    await endsWell(p);
  });
});
