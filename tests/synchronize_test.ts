import assert from "node:assert/strict";
import {
  Barrier,
  BoundedSemaphore,
  BrokenBarrierError,
  Condition,
  Event,
  Lock,
  Process,
  ProcessError,
  RawValue,
  reduceSymbol,
  RLock,
  Semaphore,
  SharedArray,
  TargetNotExportedError,
  TimeoutError,
  Value,
} from "../mod.ts";
import {
  acquireAndEnd,
  actionRunsHere,
  busyHolder,
  busyThenAcquire,
  consume,
  consumeSync,
  holdThenEnd,
  increment,
  inspectShared,
  onRelease,
  passBarrier,
  waitEvent,
  waitOnCondition,
} from "./fixtures/sync_targets.ts";
import { runDeno, runTask } from "./_run_task.ts";
import { bounded } from "./_bounded.ts";
import {
  allocateIdent,
  attachTable,
  markDead,
  tableBuffer,
} from "../lib/shm/_proctable.ts";

const T = 20_000; // bound of every wait in this file
const module = new URL("./fixtures/sync_targets.ts", import.meta.url);

// deno-lint-ignore no-explicit-any
type Target = (...a: any[]) => unknown;

async function start(target: Target, args: unknown[]): Promise<Process> {
  const p = new Process({ target, args, module });
  await p.start();
  return p;
}

async function joinAll(...ps: Process[]): Promise<void> {
  for (const p of ps) {
    await p.join(T);
    assert.equal(p.exitCode, 0, `${p.name} ended with ${p.exitCode}`);
  }
}

/** Runs `fn` with console.warn captured; returns what was warned. */
async function captureWarn(fn: () => Promise<void>): Promise<string[]> {
  const warned: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => void warned.push(a.join(" "));
  try {
    await fn();
  } finally {
    console.warn = orig;
  }
  return warned;
}

Deno.test("Lock: acquire, non-blocking try, timeout, release, errors", async () => {
  const lock = new Lock();
  assert.equal(await lock.acquire(), true);
  assert.equal(lock.acquireSync({ blocking: false }), false);
  assert.equal(await lock.acquire({ blocking: false }), false);
  assert.equal(await lock.acquire({ timeout: 20 }), false);
  assert.equal(lock.acquireSync({ timeout: 20 }), false);
  lock.release();
  assert.throws(() => lock.release(), ProcessError);
  assert.equal(lock.acquireSync(), true);
  lock.release();
  assert.throws(() => lock.acquireSync({ timeout: -1 }), RangeError);
  await assert.rejects(
    async () => await lock.acquire({ timeout: NaN }),
    RangeError,
  );
  assert.equal(lock.abandoned, 0);
});

Deno.test("Lock: an async waiter wakes when the holder releases", async () => {
  const lock = new Lock();
  lock.acquireSync();
  let got = false;
  const waiter = lock.acquire({ timeout: T }).then((r) => got = r);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(got, false);
  lock.release(); // any holder may release a Lock, as in Python
  await waiter;
  assert.equal(got, true);
  lock.release();
});

Deno.test("Lock: hold()/holdSync() guards release at the end of the scope", async () => {
  const lock = new Lock();
  {
    using _ = await lock.hold();
    assert.equal(lock.acquireSync({ blocking: false }), false);
  }
  {
    using _ = lock.holdSync();
    await assert.rejects(lock.hold({ timeout: 10 }), TimeoutError);
    assert.throws(() => lock.holdSync({ timeout: 0 }), TimeoutError);
  }
  assert.equal(lock.acquireSync({ blocking: false }), true);
  lock.release();
});

Deno.test("RLock: re-entrant for its process, owned by it", async () => {
  const rlock = new RLock();
  assert.equal(rlock.isMine(), false);
  assert.throws(() => rlock.release(), ProcessError);
  await rlock.acquire();
  assert.equal(rlock.acquireSync({ blocking: false }), true);
  {
    using _ = rlock.holdSync();
    assert.equal(rlock.isMine(), true);
  }
  rlock.release();
  assert.equal(rlock.isMine(), true);
  rlock.release();
  assert.equal(rlock.isMine(), false);
  assert.throws(() => rlock.release(), ProcessError);
});

Deno.test("Semaphore and BoundedSemaphore count; over-release and bad values throw", async () => {
  const sem = new Semaphore(2);
  assert.equal(await sem.acquire(), true);
  assert.equal(sem.acquireSync(), true);
  assert.equal(sem.getValue(), 0);
  assert.equal(sem.acquireSync({ blocking: false }), false);
  assert.equal(await sem.acquire({ timeout: 20 }), false);
  const waiter = sem.acquire({ timeout: T });
  sem.release();
  assert.equal(await waiter, true);
  sem.release();
  sem.release();
  sem.release(); // a plain Semaphore may go past its start value
  assert.equal(sem.getValue(), 3);
  {
    using _ = sem.holdSync();
    assert.equal(sem.getValue(), 2);
  }
  assert.equal(sem.getValue(), 3);

  const bounded = new BoundedSemaphore(1);
  assert.throws(() => bounded.release(), ProcessError);
  bounded.acquireSync();
  bounded.release();
  assert.throws(() => bounded.release(), ProcessError);
  assert.equal(bounded.getValue(), 1);

  assert.throws(() => new Semaphore(-1), RangeError);
  assert.throws(() => new Semaphore(1.5), RangeError);
});

Deno.test("Event: set, clear, wait with timeout, sync twin", async () => {
  const ev = new Event();
  assert.equal(ev.isSet(), false);
  assert.equal(await ev.wait(10), false);
  assert.equal(ev.waitSync(0), false);
  setTimeout(() => ev.set(), 5);
  assert.equal(await ev.wait(T), true);
  assert.equal(ev.waitSync(), true);
  ev.clear();
  assert.equal(ev.isSet(), false);
  assert.throws(() => ev.waitSync(-5), RangeError);
});

Deno.test("Condition: notify wakes one waiter, notifyAll the rest, misuse throws", async () => {
  const cond = new Condition(new Lock());
  await assert.rejects(cond.wait(10), ProcessError);
  assert.throws(() => cond.notify(), ProcessError);
  let waiting = 0;
  let woken = 0;
  const waiters = [0, 1, 2].map(async () => {
    using _ = await cond.hold();
    waiting++;
    if (await cond.wait(T)) woken++;
  });
  // Once we hold the lock and all three counted themselves, all three wait.
  while (true) {
    using _ = await cond.hold();
    if (waiting === 3) {
      cond.notify();
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  while (woken === 0) await new Promise((r) => setTimeout(r, 2));
  await new Promise((r) => setTimeout(r, 30)); // room for a wrong second wake-up
  assert.equal(woken, 1);
  {
    using _ = await cond.hold();
    cond.notifyAll();
  }
  await Promise.all(waiters);
  assert.equal(woken, 3);
  {
    using _ = await cond.hold();
    assert.equal(await cond.wait(10), false); // nobody notifies: times out
    assert.equal(cond.waitSync(0), false);
    assert.equal(await cond.waitFor(() => 0, 10), 0);
    assert.equal(await cond.waitFor(() => "now"), "now");
    cond.notify(); // nobody waits: a no-op
  }
  assert.throws(() => new Condition({} as Lock), TypeError);
});

Deno.test("Condition over the default RLock keeps the recursion level across wait", async () => {
  const cond = new Condition();
  assert.ok(cond.lock instanceof RLock);
  const rlock = cond.lock as RLock;
  await rlock.acquire();
  await rlock.acquire();
  setTimeout(async () => {
    using _ = await cond.hold();
    cond.notify();
  }, 5);
  assert.equal(await cond.wait(T), true);
  rlock.release();
  assert.equal(rlock.isMine(), true); // still held once
  rlock.release();
  assert.equal(rlock.isMine(), false);
});

Deno.test("Barrier: indexes, action once, timeout breaks it, abort and reset", async () => {
  let runs = 0;
  const local = new Barrier(2, { action: () => void runs++ });
  const idx = await Promise.all([local.wait(T), local.wait(T)]);
  assert.deepEqual(idx.sort(), [0, 1]);
  assert.equal(runs, 1);
  assert.equal(local.parties, 2);
  assert.equal(local.nWaiting, 0);

  const lone = new Barrier(2);
  await assert.rejects(lone.wait(10), BrokenBarrierError);
  assert.equal(lone.broken, true);
  await assert.rejects(lone.wait(T), BrokenBarrierError);
  await lone.reset();
  assert.equal(lone.broken, false);
  const pending = lone.wait(T);
  while (lone.nWaiting !== 1) await new Promise((r) => setTimeout(r, 2));
  await lone.abort();
  await assert.rejects(pending, BrokenBarrierError);
  lone.resetSync();
  const again = await Promise.all([lone.wait(T), lone.wait(T)]);
  assert.deepEqual(again.sort(), [0, 1]);
  assert.throws(() => new Barrier(0), RangeError);
  // An action that cannot be found by name cannot cross into a child.
  const anonymous = new Barrier(1, { action: [() => {}][0] });
  assert.equal(await anonymous.wait(), 0);
  const out = new SharedArray("i", 2);
  const args = [anonymous, out, 0, false] as const;
  const p = new Process({ target: passBarrier, args: [...args], module });
  await assert.rejects(async () => await p.start(), TargetNotExportedError);
});

Deno.test("shared objects cross into a child as the same objects", async () => {
  const lock = new Lock();
  const rlock = new RLock();
  const out = new RawValue("i", 0);
  lock.acquireSync();
  rlock.acquireSync();
  const p = await start(inspectShared, [lock, lock, rlock, out]);
  await joinAll(p);
  assert.equal(out.value, 1 | 2 | 4);
  lock.release();
  rlock.release();
});

Deno.test("Lock: two processes incrementing under the lock never lose an update", async () => {
  for (const mode of ["async", "sync"]) {
    const v = new Value("i", 0, { lock: new Lock() });
    const a = await start(increment, [v, 5_000, mode]);
    const b = await start(increment, [v, 5_000, mode]);
    await joinAll(a, b);
    assert.equal(v.value, 10_000, mode);
  }
  const v = new Value("i", 0); // its default RLock
  const a = await start(increment, [v, 5_000, "sync"]);
  const b = await start(increment, [v, 5_000, "async"]);
  await joinAll(a, b);
  assert.equal(v.value, 10_000);
});

Deno.test("a Lock, RLock or Semaphore whose holder ended goes to the next waiter", async () => {
  const cases: [string, () => Lock | RLock | Semaphore, string][] = [
    ["Lock terminated", () => new Lock(), "async"],
    ["RLock terminated", () => new RLock(), "sync"],
    ["Semaphore terminated", () => new Semaphore(1), "async"],
    ["BoundedSemaphore terminated", () => new BoundedSemaphore(1), "sync"],
    ["Lock crashed", () => new Lock(), "throw"],
    ["RLock exit()", () => new RLock(), "exit"],
  ];
  for (const [label, make, how] of cases) {
    const lock = make();
    const held = new Event();
    const warned = await captureWarn(async () => {
      const p = await start(holdThenEnd, [lock, held, how]);
      assert.equal(await held.wait(T), true, label);
      if (how === "sync") {
        // A blocking acquire after the holder ended takes it over at once.
        p.terminate();
        await p.join(T);
        assert.equal(lock.acquireSync({ timeout: T }), true, label);
        return;
      }
      // A waiter blocked before the holder ends gets the lock after.
      const waiter = lock.acquire({ timeout: T });
      if (how === "async") p.terminate();
      await p.join(T);
      assert.equal(await waiter, true, label);
    });
    assert.equal(lock.abandoned, 1, label);
    assert.equal(warned.length, 1, label);
    assert.match(warned[0], /half-written/);
    lock.release();
    // Usable as usual afterwards.
    assert.equal(lock.acquireSync({ timeout: T }), true, label);
    lock.release();
  }
});

Deno.test("Event wakes waiters in other processes", async () => {
  const ev = new Event();
  const arrived = new Value("i", 0);
  const a = await start(waitEvent, [ev, arrived, false]);
  const b = await start(waitEvent, [ev, arrived, true]);
  ev.set();
  await joinAll(a, b);
  assert.equal(arrived.value, 2);
});

Deno.test("Condition: producer here, consumers in other processes", async () => {
  const cond = new Condition();
  const items = new Value("i", 0, { lock: false });
  const taken = new Value("i", 0, { lock: false });
  const a = await start(consume, [cond, items, taken, 50]);
  const b = await start(consumeSync, [cond, items, taken, 50]);
  for (let i = 0; i < 100; i++) {
    using _ = await cond.hold();
    items.value += 1;
    cond.notify();
  }
  await joinAll(a, b);
  assert.equal(taken.value, 100);
  assert.equal(items.value, 0);
});

Deno.test("Barrier across processes: distinct indexes, the action runs once", async () => {
  const barrier = new Barrier(3, { action: onRelease, module });
  const out = new SharedArray("i", 4);
  const a = await start(passBarrier, [barrier, out, 0, false]);
  const b = await start(passBarrier, [barrier, out, 2, true]);
  const before = actionRunsHere();
  const mine = await barrier.wait(T);
  await joinAll(a, b);
  assert.deepEqual([mine, out[0], out[2]].sort(), [0, 1, 2]);
  // onRelease counts in the process that ran it: here or in one child.
  assert.equal(actionRunsHere() - before + out[1] + out[3], 1);
});

/** The "Value at end" and "Array at end" lines of each run of example:race. */
function raceEnds(out: string): { value: number; array: number[] }[] {
  const values = [...out.matchAll(/^Value at end: (\d+)$/gm)].map((m) => +m[1]);
  const arrays = [...out.matchAll(/^Array at end: \[(.*)\]$/gm)].map((m) =>
    m[1].split(", ").map(Number)
  );
  assert.equal(values.length, 3, out);
  assert.equal(arrays.length, 3, out);
  return values.map((value, i) => ({ value, array: arrays[i] }));
}

Deno.test("example:race: without the lock at most 200, with it exactly 200", async () => {
  const out = await runTask("example:race");
  assert.match(out, /^Value at beginning: 0$/m);
  assert.match(out, /^Array at beginning: \[0, 100, 200\]$/m);
  assert.match(out, /using _ = await lock\.hold\(\)/);
  assert.match(out, /end main\n$/);
  const [race, acquire, using] = raceEnds(out);
  assert.ok(race.value <= 200, out);
  for (const x of [acquire, using]) {
    assert.equal(x.value, 200);
    assert.deepEqual(x.array, [200, 300, 400]);
  }
  // Many iterations without sleeping: still exact with the lock.
  const fast = raceEnds(
    await runTask("example:race", "--iterations", "20000", "--no-sleep"),
  );
  assert.ok(fast[0].value <= 40_000);
  assert.equal(fast[1].value, 40_000);
  assert.equal(fast[2].value, 40_000);
  assert.deepEqual(fast[2].array, [40_000, 40_100, 40_200]);
});

Deno.test("example:lock: one process at a time; a dead holder does not block", async () => {
  const r = await runDeno(["task", "-q", "example:lock"]);
  assert.equal(r.code, 0, r.stderr);
  // The takeover is announced on stderr, once.
  assert.match(
    r.stderr,
    /^multiprocessing: a Lock was taken over from the process with pid \d+, which ended while holding it/,
  );
  const lines = r.stdout.trimEnd().split("\n");
  const critical = lines.slice(0, 12);
  const names = new Set<string>();
  for (let i = 0; i < critical.length; i += 2) {
    const m = critical[i].match(
      /^(Process-\d+) claimed the lock( \(using\))?$/,
    );
    assert.ok(m, critical[i]);
    assert.equal(critical[i + 1], `${m[1]} releases the lock${m[2] ?? ""}`);
    names.add(m[1]);
  }
  assert.equal(names.size, 6);
  assert.match(lines[12], /^Process-\d+ claimed the lock and keeps it$/);
  assert.match(
    lines[13],
    /^Process-\d+ was terminated while holding the lock$/,
  );
  assert.equal(lines[14], "main claimed the lock anyway; lock.abandoned = 1");
});

Deno.test("a terminated holder still running does not release the lock of the process that took it over", async () => {
  const lock = new Lock();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const p = await start(busyHolder, [lock, flag]);
  for (let i = 0; i < 4_000 && Atomics.load(flag, 0) !== 1; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(Atomics.load(flag, 0), 1, "the child took the lock");
  const warned = await captureWarn(async () => {
    p.terminate(); // marks it ended; it runs on, busy
    assert.equal(await lock.acquire({ timeout: T }), true); // taken over
  });
  assert.equal(lock.abandoned, 1);
  assert.equal(warned.length, 1);
  Atomics.store(flag, 0, 2); // the child goes on to release()
  // Until its release() returned (it must not) or had time to.
  await until(() => Atomics.load(flag, 0) >= 3, "the child went on");
  for (let i = 0; i < 100 && Atomics.load(flag, 0) !== 4; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(lock.acquireSync({ blocking: false }), false, "still ours");
  assert.equal(Atomics.load(flag, 0), 3, "halted in release()");
  lock.release();
  await p.join(T);
  assert.equal(p.exitCode, -15);
});

/** Polls `f` every few ms until it is true (at most `T`); asserts it became true. */
async function until(f: () => boolean, what: string): Promise<void> {
  const end = performance.now() + T;
  while (!f() && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.ok(f(), what);
}

Deno.test("a terminated process still running is halted when it tries to take a lock", async () => {
  const lock = new Lock();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const p = await start(busyThenAcquire, [lock, flag]);
  await until(() => Atomics.load(flag, 0) === 1, "the child runs");
  p.terminate();
  Atomics.store(flag, 0, 2);
  await until(() => Atomics.load(flag, 0) >= 3, "the child went on");
  for (let i = 0; i < 100 && Atomics.load(flag, 0) !== 4; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(Atomics.load(flag, 0), 3, "halted in acquire()");
  assert.equal(lock.acquireSync({ blocking: false }), true, "never taken");
  assert.equal(lock.abandoned, 0);
  lock.release();
  await p.join(T);
});

Deno.test("Condition: a waiter that was terminated takes no notify, and notify(1) wakes one of the live ones", async () => {
  // Over a Lock: two waiters of one process share an RLock's ownership.
  {
    const cond = new Condition(new Lock());
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const p = await start(waitOnCondition, [cond, flag]);
    await until(() => Atomics.load(flag, 0) === 1, "the child waits");
    {
      using _ = await cond.hold(); // the child released it in wait()
    }
    p.terminate();
    await p.join(T);
    {
      using _ = await cond.hold();
      cond.notify(); // nobody alive waits: a no-op
    }
    let waiting = 0;
    let woken = 0;
    const waiters = [0, 1].map(async () => {
      using _ = await cond.hold();
      waiting++;
      if (await cond.wait(T)) woken++;
    });
    await until(() => waiting === 2, "both wait");
    {
      using _ = await cond.hold(); // both are in wait(): they released it
      cond.notify(1);
    }
    await until(() => woken > 0, "one wakes");
    await new Promise((r) => setTimeout(r, 50)); // room for a wrong second one
    assert.equal(woken, 1, "notify(1) woke one");
    {
      using _ = await cond.hold();
      cond.notifyAll();
    }
    await Promise.all(waiters);
    assert.equal(woken, 2);
  }
});

Deno.test("Barrier: a party whose process ended breaks the round for the others, whether they wait already or come after", async () => {
  for (const waitingFirst of [true, false]) {
    const barrier = new Barrier(3);
    const out = new SharedArray("i", 2);
    const first = waitingFirst ? barrier.wait() : undefined;
    const p = await start(passBarrier, [barrier, out, 0, false]);
    await until(() => barrier.nWaiting === (waitingFirst ? 2 : 1), "waits");
    p.terminate();
    await p.join(T);
    try {
      if (first) await assert.rejects(bounded(first), BrokenBarrierError);
      // No round goes through counting the dead party.
      const late = await bounded(
        Promise.allSettled([barrier.wait(), barrier.wait()]),
      );
      for (const r of late) {
        assert.ok(
          r.status === "rejected" && r.reason instanceof BrokenBarrierError,
        );
      }
      assert.equal(barrier.broken, true);
      await barrier.reset();
      // Three live parties with a timeout: they pass, as ever.
      const idx = await bounded(
        Promise.all([
          barrier.wait(1000),
          barrier.wait(1000),
          barrier.wait(1000),
        ]),
      );
      assert.deepEqual(idx.sort(), [0, 1, 2]);
    } finally {
      await barrier.abort(); // (before the fix: let what still waits go)
    }
  }
});

Deno.test("Barrier: an inline action breaks the barrier when a child cannot load it, then is refused when sent", async () => {
  const barrier = new Barrier(2, { action: () => {} }); // named "action", exported by no one
  const out = new SharedArray("i", 2);
  const p = await start(passBarrier, [barrier, out, 0, false]);
  try {
    await assert.rejects(bounded(barrier.wait()), BrokenBarrierError);
  } finally {
    await barrier.abort();
  }
  await p.join(T);
  assert.notEqual(p.exitCode, 0); // TargetNotExportedError in the child
  // Once the parent has looked the action up, the barrier is not sent.
  const end = performance.now() + T;
  let refused: unknown;
  while (refused === undefined && performance.now() < end) {
    try {
      barrier[reduceSymbol]();
      await new Promise((r) => setTimeout(r, 5));
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(refused instanceof TargetNotExportedError, String(refused));
  assert.match(String(refused), /'action' is not exported/);
  const again = new Process({
    target: passBarrier,
    args: [barrier, out, 0, false],
    module,
  });
  await assert.rejects(async () => await again.start(), TargetNotExportedError);
});

Deno.test("Semaphore: a unit released for a process that ended is not also given back from it: never two holders", async () => {
  for (const sem of [new Semaphore(1), new BoundedSemaphore(1)]) {
    const label = sem.constructor.name;
    const p = await start(acquireAndEnd, [sem]);
    await p.join(T);
    assert.equal(p.exitCode, 0, label);
    assert.equal(sem.getValue(), 0, label);
    sem.release(); // for the child, which ended holding it (Python allows this)
    assert.equal(await sem.acquire({ timeout: T }), true, label);
    // The one unit is held here: nobody else may take one, now or later.
    assert.equal(await sem.acquire({ timeout: 200 }), false, label);
    assert.equal(sem.acquireSync({ timeout: 50 }), false, label);
    assert.equal(sem.getValue(), 0, label);
    assert.equal(sem.abandoned, 0, label);
    sem.release();
    assert.equal(sem.getValue(), 1, label);
  }
});

/** Runs `fn` as the process `ident` would (its marks in shared words), then as main again. */
function asProcess(ident: number, fn: () => void): void {
  attachTable(tableBuffer(), ident);
  try {
    fn();
  } finally {
    attachTable(tableBuffer(), 0);
  }
}

Deno.test("Semaphore: every unit held by processes that ended comes back, however many held one", async () => {
  const sem = new Semaphore(100);
  const holders = Array.from({ length: 70 }, () => allocateIdent());
  for (const ident of holders) {
    asProcess(
      ident,
      () => assert.equal(sem.acquireSync({ blocking: false }), true),
    );
  }
  assert.equal(sem.getValue(), 30);
  for (const ident of holders) markDead(ident);
  const warned = await captureWarn(async () => {
    for (let i = 0; i < 100; i++) {
      assert.equal(await sem.acquire({ timeout: 1_000 }), true, `unit ${i}`);
    }
  });
  assert.equal(warned.length, 1);
  assert.equal(sem.getValue(), 0);
  assert.equal(sem.abandoned, 70);
});

// Python's positional acquire(False) / acquire(True, 0.1) and misspelt keys
// used to be read as "no options": a wait forever while the lock is held.
const PYTHON_STYLE: [unknown, RegExp][] = [
  [false, /got false.*acquire\(\{ blocking: false \}\)/],
  [true, /got true.*acquire\(\{ blocking: false \}\)/],
  [100, /got 100.*acquire\(\{ timeout: 100 \}\)/],
  [null, /got null/],
  ["100", /got "100"/],
  [
    { block: false },
    /unknown acquire option "block" \(did you mean blocking\?\)/,
  ],
  [{ blocking: "no" }, /blocking must be true or false, got "no"/],
  // Python: "can't specify a timeout for a non-blocking call".
  [{ blocking: false, timeout: 10 }, /a non-blocking try takes no timeout/],
];

Deno.test("Lock, RLock, Semaphore, BoundedSemaphore, Condition: Python-style acquire arguments are a TypeError naming the value and the TS form, never a wait", async () => {
  const make: [
    string,
    () => {
      acquire(o?: unknown): Promise<boolean>;
      acquireSync(o?: unknown): boolean;
      release(): void;
    },
  ][] = [
    ["Lock", () => new Lock()],
    ["RLock", () => new RLock()],
    ["Semaphore", () => new Semaphore(1)],
    ["BoundedSemaphore", () => new BoundedSemaphore(1)],
    ["Condition", () => new Condition()],
  ];
  for (const [name, build] of make) {
    // Sync twins, on a free lock (a bad argument must not take it).
    for (const [bad, message] of PYTHON_STYLE) {
      const lock = build();
      assert.throws(
        () => lock.acquireSync(bad),
        (e) => e instanceof TypeError && message.test(e.message),
        `${name}.acquireSync(${String(bad)})`,
      );
    }
    // Async, while another holds it: refused at once, not a wait.
    const lock = build();
    assert.equal(lock.acquireSync(), true);
    const pending: Promise<unknown>[] = [];
    try {
      for (const [bad, message] of PYTHON_STYLE) {
        const p = (async () => await lock.acquire(bad))();
        pending.push(p.catch(() => {}));
        const got = await bounded(
          p.then(() => "acquired", (e) => e),
          2_000,
          `${name}.acquire(${String(bad)})`,
        ).catch((e) => e);
        assert.ok(
          got instanceof TypeError && message.test(got.message),
          `${name}.acquire(${String(bad)}): ${got}`,
        );
      }
    } finally {
      lock.release();
      // A wrongly waiting acquire takes the lock now: let it go.
      for (const p of pending) await bounded(p);
    }
  }
});
