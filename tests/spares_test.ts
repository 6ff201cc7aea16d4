// The spare shared buffers big pool payloads travel in (lib/shm/_spares.ts):
// a buffer handed back is taken again for a payload it fits, never for one
// it is too small or far too big for, and what is kept stays bounded.
import assert from "node:assert/strict";
import { SPARE_BYTES, SPARE_COUNT, SpareBuffers } from "../lib/shm/_spares.ts";

Deno.test("spares: a new buffer when none is spare, the spare one when it fits", () => {
  const s = new SpareBuffers();
  const a = s.take(1_000_000);
  assert.ok(a.byteLength >= 1_000_000 && a.byteLength % 65536 === 0);
  assert.notEqual(s.take(1_000_000), a, "nothing was handed back yet");
  s.give(a);
  assert.notEqual(s.take(a.byteLength + 1), a, "too small for it");
  assert.notEqual(s.take(100_000), a, "ten times what is asked");
  assert.equal(s.take(900_000), a);
  assert.notEqual(s.take(900_000), a, "taken once, it is no longer spare");
});

Deno.test("spares: the smallest that fits is taken; clear() drops them all", () => {
  const s = new SpareBuffers();
  const big = new SharedArrayBuffer(4 << 20),
    small = new SharedArrayBuffer(3 << 20);
  s.give(big);
  s.give(small);
  assert.equal(s.take(2_500_000), small);
  assert.equal(s.take(2_500_000), big);
  s.give(big);
  s.clear();
  assert.notEqual(s.take(2_500_000), big);
});

Deno.test("spares: at most SPARE_COUNT buffers and SPARE_BYTES are kept", () => {
  const s = new SpareBuffers();
  const given = Array.from(
    { length: SPARE_COUNT + 2 },
    () => new SharedArrayBuffer(65536),
  );
  for (const b of given) s.give(b);
  const back = new Set(
    Array.from({ length: SPARE_COUNT + 2 }, () => s.take(65536)),
  );
  assert.equal(given.filter((b) => back.has(b)).length, SPARE_COUNT);
  const huge = new SharedArrayBuffer(SPARE_BYTES + 65536);
  s.give(huge);
  assert.notEqual(s.take(SPARE_BYTES), huge, "over the byte bound: dropped");
});
