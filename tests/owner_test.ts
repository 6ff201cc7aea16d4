// The owner word under Lock and RLock (lib/shm/_owner.ts): taking, timing out,
// waking on release, and taking over from a holder whose process is dead in
// the process table, in this process and across a real child.
import assert from "node:assert/strict";
import {
  CONTENDED,
  holderGone,
  isMine,
  lockAsync,
  lockSync,
  ownerIdent,
  selfMark,
  takeOver,
  unlock,
} from "../lib/shm/_owner.ts";
import { allocateIdent, markDead } from "../lib/shm/_proctable.ts";
import { waitAsync } from "../lib/shm/_wait.ts";
import { lockThenSignal } from "./fixtures/machinery_targets.ts";
import { endsWell, withChild } from "./_child.ts";

const T = 20_000;

function word(): Int32Array<SharedArrayBuffer> {
  return new Int32Array(new SharedArrayBuffer(12));
}

/** Waits (bounded) until `w[index]` is not 0. */
async function until(w: Int32Array, index: number): Promise<void> {
  const r = await waitAsync(w, index, 0, T);
  assert.notEqual(r, "timed-out", `word ${index} was never set`);
}

Deno.test("owner word: a free word is taken with this process's mark; unlock returns what it held, 0 once free", async () => {
  const w = word();
  assert.equal(selfMark(), 1, "the main program is ident 0, marked 1");
  assert.equal(lockSync(w, 0, 0), "taken");
  assert.equal(isMine(w, 0), true);
  assert.equal(ownerIdent(Atomics.load(w, 0)), 0);
  const held = unlock(w, 0);
  assert.equal(held & ~CONTENDED, selfMark());
  assert.equal(isMine(w, 0), false);
  assert.equal(unlock(w, 0), 0, "a second unlock finds it free");
  assert.equal(await lockAsync(w, 0, 0), "taken");
  assert.equal(isMine(w, 0), true);
});

Deno.test("owner word: a live holder makes a timed lock time out, with the word marked contended and still the holder's", async () => {
  const w = word();
  const holder = allocateIdent();
  try {
    Atomics.store(w, 0, holder + 1);
    assert.equal(lockSync(w, 0, 0), "timed-out");
    assert.equal(lockSync(w, 0, 80), "timed-out", "longer than one slice");
    assert.equal(Atomics.load(w, 0), (holder + 1) | CONTENDED);
    assert.equal(ownerIdent(Atomics.load(w, 0)), holder);
    assert.equal(isMine(w, 0), false);
    assert.equal(await lockAsync(w, 0, 80), "timed-out");
    assert.equal(Atomics.load(w, 0), (holder + 1) | CONTENDED);
    // The holder's release sees the contended bit: it would notify.
    assert.ok(unlock(w, 0) < 0);
  } finally {
    markDead(holder);
  }
});

Deno.test("owner word: a holder whose process-table slot is marked dead is taken over, and the caller is told whose it was", async () => {
  const w = word();
  const dead = allocateIdent();
  Atomics.store(w, 0, dead + 1);
  markDead(dead);
  assert.deepEqual(lockSync(w, 0, 0), { abandonedBy: dead });
  assert.equal(isMine(w, 0), true);
  unlock(w, 0);

  // A waiter already asleep notices the death between slices.
  const dying = allocateIdent();
  Atomics.store(w, 0, dying + 1);
  const waiter = lockAsync(w, 0, T);
  await new Promise((r) => setTimeout(r, 20));
  markDead(dying);
  assert.deepEqual(await waiter, { abandonedBy: dying });
  assert.equal(isMine(w, 0), true);
});

Deno.test("owner word: takeOver takes a word from a dead holder only, at once or after its grace, and never a free or changed word", async () => {
  const w = word();
  const alive = allocateIdent();
  Atomics.store(w, 0, alive + 1);
  assert.equal(holderGone(0), false); // free: nobody to take it from
  assert.equal(takeOver(w, 0, alive + 1, selfMark()), false);
  assert.equal(Atomics.load(w, 0), alive + 1);

  const dead = allocateIdent();
  Atomics.store(w, 0, (dead + 1) | CONTENDED);
  markDead(dead);
  assert.equal(takeOver(w, 0, dead + 1, selfMark()), false); // not what it holds
  // With a grace: not the first time it is seen dead, but once it has passed.
  assert.equal(takeOver(w, 0, (dead + 1) | CONTENDED, selfMark(), 30), false);
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(takeOver(w, 0, (dead + 1) | CONTENDED, selfMark(), 30), true);
  assert.equal(Atomics.load(w, 0), selfMark());

  const gone = allocateIdent();
  Atomics.store(w, 0, gone + 1);
  markDead(gone);
  assert.equal(takeOver(w, 0, gone + 1, -1), true); // no grace: at once
  assert.equal(Atomics.load(w, 0), -1);
});

Deno.test("owner word: a holder in another process wakes a waiter here when it unlocks", async () => {
  const w = word();
  await withChild(lockThenSignal, [w.buffer, "release"], async (p) => {
    await until(w, 1);
    assert.equal(ownerIdent(Atomics.load(w, 0)), p.pid);
    const waiter = lockAsync(w, 0, T);
    Atomics.store(w, 2, 1);
    Atomics.notify(w, 2);
    assert.equal(await waiter, "taken");
    assert.equal(isMine(w, 0), true);
    await endsWell(p);
  });
});

Deno.test("owner word: a holder in another process terminated while holding it is taken over by the waiter here", async () => {
  const w = word();
  await withChild(lockThenSignal, [w.buffer, "hold"], async (p) => {
    await until(w, 1);
    const waiter = lockAsync(w, 0, T);
    p.terminate();
    assert.deepEqual(await waiter, { abandonedBy: p.pid });
    assert.equal(isMine(w, 0), true);
  });
});
