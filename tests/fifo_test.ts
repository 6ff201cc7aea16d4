// The one first-in first-out list (lib/_fifo.ts) behind the pool's task
// lists, a Queue's buffered items and a pipe's port messages: order kept
// across its compaction, peek, putting back at the front, draining.
import assert from "node:assert/strict";
import { Fifo } from "../lib/_fifo.ts";

Deno.test("fifo: items come out in the order they went in, across compactions", () => {
  const f = new Fifo<number>();
  assert.equal(f.shift(), undefined);
  assert.equal(f.peek(), undefined);
  let next = 0, want = 0;
  // Interleaved so that the front passes the compaction point many times.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 3000; i++) f.push(next++);
    for (let i = 0; i < 2500; i++) {
      assert.equal(f.peek(), want);
      assert.equal(f.shift(), want++);
    }
    assert.equal(f.length, next - want);
  }
  while (f.length) assert.equal(f.shift(), want++);
  assert.equal(want, next);
  assert.equal(f.shift(), undefined);
});

Deno.test("fifo: last, unshiftAll puts items back at the front in order; drain takes the rest", () => {
  const f = new Fifo<string>();
  assert.equal(f.last(), undefined);
  for (const x of ["a", "b", "c", "d"]) f.push(x);
  assert.equal(f.last(), "d");
  assert.equal(f.shift(), "a");
  f.unshiftAll(["x", "y"]);
  assert.equal(f.length, 5);
  assert.equal(f.shift(), "x");
  assert.deepEqual(f.drain(), ["y", "b", "c", "d"]);
  assert.equal(f.length, 0);
  assert.equal(f.last(), undefined);
  f.push("e");
  assert.equal(f.peek(), "e");
  assert.equal(f.last(), "e");
});
