// The adaptive spin before a futex wait (lib/shm/_spin.ts): a failed spin turns
// spinning off for twice as many waits each time it fails again, up to
// MAX_SKIP; a spin that sees its change turns it back on. And blockFor.
import assert from "node:assert/strict";
import { blockFor, MAX_SKIP, Spinner } from "../lib/shm/_spin.ts";
import { waitAsync } from "../lib/shm/_wait.ts";
import { churn, notifyWhenAsked } from "./fixtures/machinery_targets.ts";
import { endsWell, withChild } from "./_child.ts";

const T = 20_000;

function word(): Int32Array<SharedArrayBuffer> {
  return new Int32Array(new SharedArrayBuffer(12));
}

// In one thread nothing changes a word during a spin, so whether a spin
// fails or succeeds is decided by the test: `still` never differs from what
// the spinner saw, `moved` always does.
const still = word();
const moved = word();
Atomics.store(moved, 0, 1);

/** Fails `n` spins in a row (each one after the skips the previous one set). */
function fail(s: Spinner, n: number): void {
  let skip = 2;
  for (let i = 0; i < n; i++) {
    assert.equal(s.spin(still, 0, 0), false, `failure ${i + 1}`);
    if (i === n - 1) return;
    for (let k = 0; k < skip; k++) assert.equal(s.spin(still, 0, 0), false);
    skip = Math.min(skip * 2, MAX_SKIP);
  }
}

/** How many waits skip spinning before one spins (and sees `moved`). */
function skipped(s: Spinner): number {
  for (let n = 0; n <= MAX_SKIP + 1; n++) {
    if (s.spin(moved, 0, 0)) return n;
  }
  throw new Error(`spinning stayed off past MAX_SKIP (${MAX_SKIP}) waits`);
}

Deno.test("Spinner: a spin that sees its change returns true at once, and spinning stays on", () => {
  const s = new Spinner();
  for (let i = 0; i < 100; i++) assert.equal(s.spin(moved, 0, 0), true);
});

Deno.test("Spinner: each failed spin in a row turns spinning off for twice as many waits, up to MAX_SKIP", () => {
  for (let n = 1; n <= 12; n++) {
    const s = new Spinner();
    fail(s, n);
    assert.equal(skipped(s), Math.min(2 ** n, MAX_SKIP), `after ${n} failures`);
  }
});

Deno.test("Spinner: a spin that pays resets the back-off to its start", () => {
  const s = new Spinner();
  fail(s, 6);
  assert.equal(skipped(s), 64);
  // The spin skipped() ended with succeeded: the next failure skips 2 again.
  fail(s, 1);
  assert.equal(skipped(s), 2);
});

Deno.test("Spinner: a spin sees a change another process makes while it watches", async () => {
  const w = word();
  await withChild(churn, [w.buffer], async (p) => {
    try {
      assert.notEqual(await waitAsync(w, 2, 0, T), "timed-out", "churning");
      // The other thread may be descheduled for whole spins on a loaded
      // machine: one fresh spinner of many (for up to T) must see a change.
      let seen = false;
      const end = performance.now() + T;
      while (!seen && performance.now() < end) {
        seen = new Spinner().spin(w, 0, Atomics.load(w, 0));
      }
      assert.equal(seen, true, `no spin saw the word move in ${T} ms`);
    } finally {
      Atomics.store(w, 1, 1); // it stops churning
    }
    await endsWell(p);
  });
});

Deno.test("blockFor: false when the word stays for the timeout, true when it differs or another process changes it", async () => {
  const w = word();
  assert.equal(blockFor(w, 0, 0, 20), false);
  assert.equal(blockFor(w, 0, 7, 20), true, "already not what was seen");
  await withChild(notifyWhenAsked, [w.buffer], async (p) => {
    Atomics.store(w, 1, 1);
    Atomics.notify(w, 1);
    let changed = false;
    for (let i = 0; i < T / 100 && !changed; i++) {
      changed = blockFor(w, 0, 0, 100);
    }
    assert.equal(changed, true);
    assert.equal(Atomics.load(w, 0), 1);
    await endsWell(p);
  });
});

Deno.test("Spinner.spinThenBlock: a spin that sees the change never blocks; one that does not blocks for ms (blockFor, or the caller's block) and says what that saw", () => {
  const asked: number[] = [];
  const block = (ms: number) => (asked.push(ms), true);
  const s = new Spinner();
  assert.equal(s.spinThenBlock(moved, 0, 0, 5, block), true);
  assert.deepEqual(asked, [], "the spin saw it: no block");
  assert.equal(s.spinThenBlock(still, 0, 0, 5, block), true);
  assert.deepEqual(asked, [5], "a failed spin blocks, for ms");
  // Spinning is off now (the spin failed): straight to the block.
  assert.equal(s.spinThenBlock(still, 0, 0, 7, () => false), false);
  // The default block is blockFor's futex wait: the word stays, so false.
  assert.equal(new Spinner().spinThenBlock(still, 0, 0, 5), false);
});
