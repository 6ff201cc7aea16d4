// Dead parties in every primitive: processes terminated while they hold or
// wait on a Semaphore, Lock, Condition or Barrier never leave the others
// blocked, over-woken or holding twice. MP_STRESS=1 runs them larger.
import assert from "node:assert/strict";
import {
  Barrier,
  BrokenBarrierError,
  Condition,
  Lock,
  Semaphore,
} from "../../mod.ts";
import { scaled, start } from "./_stress.ts";
import { condWaiter, holdUnit, lockLoop, partyOnce } from "./_targets.ts";
import { bounded } from "../_bounded.ts";

const T = 60_000;

async function until(f: () => boolean, what: string): Promise<void> {
  const end = performance.now() + T;
  while (!f() && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(f(), what);
}

/** Runs `fn` with console.warn silenced (takeovers are announced there). */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return await fn();
  } finally {
    console.warn = warn;
  }
}

function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

Deno.test("stress: every unit of a Semaphore held by terminated processes comes back", async () => {
  const holders = scaled(8, 70);
  const sem = new Semaphore(holders + 30);
  const held = new Int32Array(new SharedArrayBuffer(4));
  const ps = [];
  for (let i = 0; i < holders; i++) ps.push(await start(holdUnit, [sem, held]));
  await until(() => Atomics.load(held, 0) === holders, "all hold a unit");
  for (const p of ps) p.terminate();
  for (const p of ps) await p.join(T);
  await quietly(async () => {
    for (let i = 0; i < holders + 30; i++) {
      assert.equal(await sem.acquire({ timeout: T }), true, `unit ${i}`);
    }
  });
  assert.equal(await sem.acquire({ timeout: 100 }), false, "one unit too many");
  assert.equal(sem.abandoned, holders);
});

Deno.test("stress: a Lock whose holders are terminated at random moments is never stuck", async () => {
  const procs = scaled(4, 8);
  const n = scaled(2_000, 20_000);
  const lock = new Lock();
  const count = new Int32Array(new SharedArrayBuffer(4));
  const r = rng(11);
  await quietly(async () => {
    const ps = [];
    for (let i = 0; i < procs; i++) {
      ps.push(await start(lockLoop, [lock, count, n]));
    }
    // Terminate half of them at random moments.
    for (let i = 0; i < procs / 2; i++) {
      await new Promise((res) => setTimeout(res, r() * 40));
      ps[i].terminate();
    }
    for (const p of ps) await p.join(T);
    for (const p of ps.slice(procs / 2)) {
      assert.equal(p.exitCode, 0, `${p.name} ended with ${p.exitCode}`);
    }
    assert.equal(await lock.acquire({ timeout: T }), true, "free at the end");
    lock.release();
  });
  const survivors = (procs - procs / 2) * n;
  assert.ok(count[0] >= survivors, `${count[0]} < ${survivors}`);
});

Deno.test("stress: Condition waiters terminated at random: each notify(1) wakes exactly one live waiter", async () => {
  const procs = scaled(4, 10);
  const rounds = scaled(20, 200);
  const cond = new Condition(new Lock());
  // [0]: waiting now, [1]: wake-ups.
  const w = new Int32Array(new SharedArrayBuffer(8));
  const r = rng(5);
  const ps = [];
  for (let i = 0; i < procs; i++) ps.push(await start(condWaiter, [cond, w]));
  await until(() => Atomics.load(w, 0) === procs, "all wait");
  const killed = ps.slice(0, procs / 2);
  for (const p of killed) p.terminate();
  for (const p of killed) await p.join(T);
  await quietly(async () => {
    {
      using _ = await cond.hold();
      cond.notifyAll(); // the dead take none: only the live wake, once each
    }
    await until(() => Atomics.load(w, 1) === procs / 2, "the live woke");
    for (let i = 0; i < rounds; i++) {
      const live = procs - procs / 2;
      await until(() => Atomics.load(w, 0) >= live, "the live wait again");
      const before = Atomics.load(w, 1);
      {
        using _ = await cond.hold();
        if (r() < 0.3) cond.notify(0); // nobody: nothing happens
        cond.notify(1);
      }
      await until(() => Atomics.load(w, 1) > before, `round ${i}: one woke`);
      // Give a wrong second wake-up room to show.
      if (i % 5 === 0) await new Promise((res) => setTimeout(res, 20));
      assert.equal(Atomics.load(w, 1), before + 1, `round ${i}: one, not more`);
    }
  });
  for (const p of ps) p.terminate();
  for (const p of ps) await p.join(T);
});

Deno.test("stress: a Barrier party terminated while waiting breaks the round for every other party; after reset the rounds go on", async () => {
  const parties = scaled(3, 6);
  const rounds = scaled(2, 10);
  const barrier = new Barrier(parties + 1); // + this process
  const r = rng(3);
  for (let round = 0; round < rounds; round++) {
    const out = new Int32Array(new SharedArrayBuffer(4 * parties)).fill(-2);
    const ps = [];
    for (let i = 0; i < parties; i++) {
      ps.push(await start(partyOnce, [barrier, out, i]));
    }
    await until(() => barrier.nWaiting === parties, "all wait");
    const victim = Math.floor(r() * parties);
    ps[victim].terminate();
    await quietly(() =>
      assert.rejects(bounded(barrier.wait(T)), BrokenBarrierError)
    );
    for (const p of ps) await p.join(T);
    for (let i = 0; i < parties; i++) {
      if (i !== victim) assert.equal(out[i], -1, `round ${round}: party ${i}`);
    }
    await barrier.reset();
    // A round with every party alive goes through.
    const ok = new Int32Array(new SharedArrayBuffer(4 * parties)).fill(-2);
    const qs = [];
    for (let i = 0; i < parties; i++) {
      qs.push(await start(partyOnce, [barrier, ok, i]));
    }
    const mine = await bounded(barrier.wait(T));
    for (const q of qs) await q.join(T);
    assert.deepEqual(
      [mine, ...ok].sort((a, b) => a - b),
      Array.from({ length: parties + 1 }, (_, i) => i),
    );
  }
});
