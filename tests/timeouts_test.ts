// Timeouts, the same in every wait of the module: a huge one (past what a
// timer holds) waits forever, a bad one is a named error showing the value.
import assert from "node:assert/strict";
import {
  Barrier,
  Condition,
  Event,
  Lock,
  Manager,
  Pipe,
  Pool,
  Process,
  Queue,
  Semaphore,
  Value,
} from "../mod.ts";
import { waitEvent } from "./fixtures/sync_targets.ts";
import { sleepFor } from "./fixtures/pool_tasks.ts";

const T = 20_000;
const HUGE = [Infinity, 2 ** 31, 1e300];

/** True when `p` is still pending after `ms` (it must be: its wait goes on). */
async function stillPending(p: Promise<unknown>, ms = 150): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = Symbol("pending");
  const r = await Promise.race([
    p.then(() => "settled", () => "settled"),
    new Promise((res) => timer = setTimeout(() => res(later), ms)),
  ]);
  clearTimeout(timer);
  return r === later;
}

Deno.test("a huge timeout waits forever: Process.join", async () => {
  for (const ms of HUGE) {
    const go = new Event();
    const p = new Process({
      target: waitEvent,
      args: [go, new Value("i", 0), false],
      module: new URL("./fixtures/sync_targets.ts", import.meta.url),
    });
    await p.start();
    const joined = p.join(ms);
    assert.ok(await stillPending(joined), `join(${ms}) returned early`);
    assert.equal(p.exitCode, null);
    go.set();
    await joined;
    assert.equal(p.exitCode, 0, `join(${ms})`);
  }
});

Deno.test("a huge timeout waits forever: Pool results", async () => {
  await using pool = new Pool({
    processes: 1,
    module: new URL("./fixtures/pool_tasks.ts", import.meta.url),
  });
  for (const ms of HUGE) {
    const r = pool.applyAsync(sleepFor, [300]);
    assert.equal(await r.get(ms), 300, `get(${ms})`);
    const w = pool.applyAsync(sleepFor, [300]);
    await w.wait(ms);
    assert.equal(w.ready(), true, `wait(${ms}) returned early`);
  }
});

Deno.test("a huge timeout waits forever: manager calls", async () => {
  await using m = await Manager.start();
  const q = await m.Queue();
  const ev = await m.Event();
  for (const ms of HUGE) {
    const got = q.get({ timeout: ms });
    assert.ok(await stillPending(got), `manager get(${ms}) returned early`);
    await q.put(ms);
    assert.equal(await got, ms);
    const waited = ev.wait(ms);
    assert.ok(await stillPending(waited), `manager wait(${ms}) returned early`);
    await ev.set();
    assert.equal(await waited, true);
    await ev.clear();
  }
});

Deno.test("a huge timeout waits forever: shared-memory waits", async () => {
  for (const ms of HUGE) {
    using q = new Queue<number>(1);
    const got = q.get({ timeout: ms });
    assert.ok(await stillPending(got), `Queue.get(${ms})`);
    q.putNowait(1);
    assert.equal(await got, 1);
    q.putNowait(2);
    const put = q.put(3, { timeout: ms });
    assert.ok(await stillPending(put), `Queue.put(${ms})`);
    assert.equal(await q.get(), 2);
    await put;

    const lock = new Lock();
    lock.acquireSync();
    const took = lock.acquire({ timeout: ms });
    assert.ok(await stillPending(took), `Lock.acquire(${ms})`);
    lock.release();
    assert.equal(await took, true);

    const sem = new Semaphore(0);
    const unit = sem.acquire({ timeout: ms });
    assert.ok(await stillPending(unit), `Semaphore.acquire(${ms})`);
    sem.release();
    assert.equal(await unit, true);

    const ev = new Event();
    const set = ev.wait(ms);
    assert.ok(await stillPending(set), `Event.wait(${ms})`);
    ev.set();
    assert.equal(await set, true);

    const cond = new Condition();
    const woken = (async () => {
      using _ = await cond.hold();
      return await cond.wait(ms);
    })();
    assert.ok(await stillPending(woken), `Condition.wait(${ms})`);
    {
      using _ = await cond.hold();
      cond.notify();
    }
    assert.equal(await woken, true);

    const barrier = new Barrier(2, { timeout: ms });
    const first = barrier.wait();
    assert.ok(await stillPending(first), `Barrier({ timeout: ${ms} })`);
    assert.deepEqual([await barrier.wait(T), await first].sort(), [0, 1]);

    const [a, b] = Pipe();
    const polled = b.poll(ms);
    assert.ok(await stillPending(polled), `poll(${ms})`);
    a.send("x");
    assert.equal(await polled, true);
    a.close();
    b.close();
  }
});

Deno.test('a timeout that is not a number is a TypeError showing it as it is: got "10"', async () => {
  const says = (what: RegExp) => (e: unknown) =>
    e instanceof TypeError && what.test(e.message) &&
    /got "10"/.test(e.message);
  const ten = "10" as unknown as number;
  const lock = new Lock();
  assert.throws(() => lock.acquireSync({ timeout: ten }), says(/timeout/));
  await assert.rejects(
    async () => await new Event().wait(ten),
    says(/timeout/),
  );
  using q = new Queue();
  await assert.rejects(q.get({ timeout: ten }), says(/get timeout/));
  const p = new Process({
    target: waitEvent,
    module: new URL("./fixtures/sync_targets.ts", import.meta.url),
  });
  await assert.rejects(p.join(ten), says(/join timeout/));
  assert.throws(() => new Barrier(2, { timeout: ten }), says(/timeout/));
  await using m = await Manager.start();
  const mq = await m.Queue();
  await assert.rejects(mq.get({ timeout: ten }), says(/timeout/));
  // Numbers still RangeErrors, shown as themselves.
  assert.throws(() => lock.acquireSync({ timeout: -1 }), /got -1$/);
  assert.throws(() => lock.acquireSync({ timeout: NaN }), RangeError);
});
