// Every public object prints what it is (Python's reprs), in console.log,
// Deno.inspect and String(), without waiting on anything.
import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  JoinableQueue,
  Lock,
  Manager,
  Pipe,
  Pool,
  Process,
  Queue,
  RawValue,
  RLock,
  Semaphore,
  SharedArray,
  SimpleQueue,
  Value,
} from "../mod.ts";
import { QueueHandler } from "../queue_handler.ts";
import { noop } from "./fixtures/targets.ts";
import { square } from "./fixtures/pool_tasks.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

/** `String(x)` and `Deno.inspect(x)` agree, and are `want`. */
function prints(x: unknown, want: string | RegExp): void {
  const inspected = Deno.inspect(x);
  assert.equal(String(x), inspected);
  if (typeof want === "string") assert.equal(inspected, want);
  else assert.match(inspected, want);
}

Deno.test("locks, semaphores, events, conditions and barriers print their state", () => {
  const lock = new Lock();
  prints(lock, "Lock { locked: false }");
  lock.acquireSync();
  prints(lock, "Lock { locked: true }");
  lock.release();
  const rlock = new RLock();
  prints(rlock, "RLock { locked: false }");
  {
    using _a = rlock.holdSync();
    using _b = rlock.holdSync();
    prints(rlock, "RLock { locked: true, mine: true, count: 2 }");
  }
  prints(new Semaphore(2), "Semaphore { value: 2 }");
  const bounded = new BoundedSemaphore(3);
  bounded.acquireSync();
  prints(bounded, "BoundedSemaphore { value: 2, maxvalue: 3 }");
  const ev = new Event();
  prints(ev, "Event { set: false }");
  ev.set();
  prints(ev, "Event { set: true }");
  prints(
    new Condition(new Lock()),
    "Condition { lock: Lock { locked: false }, waiting: 0 }",
  );
  prints(
    new Condition(),
    "Condition { lock: RLock { locked: false }, waiting: 0 }",
  );
  prints(new Barrier(3), "Barrier { parties: 3, waiting: 0, broken: false }");
  // In a structure, console.log shows them the same way.
  assert.equal(
    Deno.inspect({ lock: new Lock() }),
    "{ lock: Lock { locked: false } }",
  );
});

Deno.test("queues print their size and bound; shared values theirs", async () => {
  using q = new Queue<number>();
  for (let i = 0; i < 3; i++) await q.put(i);
  prints(q, "Queue { size: 3, maxsize: 0 }");
  using bq = new Queue({ maxsize: 5 });
  prints(bq, "Queue { size: 0, maxsize: 5 }");
  using sq = new SimpleQueue();
  prints(sq, "SimpleQueue { size: 0 }");
  using jq = new JoinableQueue();
  await jq.put("x");
  prints(jq, "JoinableQueue { size: 1, maxsize: 0 }");
  const closed = new Queue();
  closed.close();
  prints(closed, "Queue { size: 0, maxsize: 0, closed: true }");
  prints(new Value("i", 3), "Value('i', 3)");
  prints(new RawValue("q", 2n), "RawValue('q', 2n)");
  // A SharedArray is a typed array: Deno prints its elements already.
  assert.equal(
    Deno.inspect(new SharedArray("i", [1, 2])),
    "SharedArray(2) [Int32Array] [ 1, 2 ]",
  );
  const handler = new QueueHandler({ quiet: true });
  handler.initQueue("jobs");
  prints(handler, 'QueueHandler { queues: ["jobs"] }');
});

Deno.test("connections print which ways they go and whether they are closed", () => {
  const [a, b] = Pipe();
  prints(a, "Connection { readable: true, writable: true, closed: false }");
  const [r, w] = Pipe(false);
  prints(r, "Connection { readable: true, writable: false, closed: false }");
  prints(w, "Connection { readable: false, writable: true, closed: false }");
  for (const c of [a, b, r, w]) c.close();
  prints(a, "Connection { readable: true, writable: true, closed: true }");
});

Deno.test("a process prints its name, pid, liveness and exit code", async () => {
  const p = new Process({
    target: noop,
    module: new URL("targets.ts", FIXTURES),
  });
  prints(
    p,
    /^Process \{ name: "Process-\d+", pid: null, alive: false, exitCode: null \}$/,
  );
  await bounded(p.start());
  assert.match(String(p), new RegExp(`pid: ${p.pid}, `));
  await bounded(p.join());
  prints(
    p,
    /^Process \{ name: "Process-\d+", pid: \d+, alive: false, exitCode: 0 \}$/,
  );
  p.close();
  prints(p, /^Process \{ name: "Process-\d+", pid: \d+, closed: true \}$/);
  const d = new Process({
    target: noop,
    module: new URL("targets.ts", FIXTURES),
    daemon: true,
    name: "bg",
  });
  prints(
    d,
    'Process { name: "bg", pid: null, alive: false, exitCode: null, daemon: true }',
  );
});

Deno.test("a pool prints its state and size; its results and iterators theirs", async () => {
  const pool = new Pool({
    processes: 2,
    module: new URL("pool_tasks.ts", FIXTURES),
  });
  prints(pool, 'Pool { state: "RUN", processes: 2 }');
  const r = pool.applyAsync(square, [3]);
  prints(r, "AsyncResult { ready: false }");
  await bounded(r.wait());
  prints(r, "AsyncResult { ready: true, successful: true }");
  const it = pool.imapUnordered(square, [1]);
  prints(it, "IMapIterator { ordered: false }");
  await bounded(it.return());
  pool.close();
  prints(pool, 'Pool { state: "CLOSE", processes: 2 }');
  pool.terminate();
  prints(pool, 'Pool { state: "TERMINATE", processes: 2 }');
  await bounded(pool.join());
});

Deno.test("a manager prints where it serves, without asking its server", async () => {
  const m = await bounded(Manager.start());
  try {
    prints(m, /^Manager \{ pid: \d+, closed: false \}$/);
  } finally {
    await bounded(m.shutdown());
  }
  prints(m, /^Manager \{ pid: \d+, closed: true \}$/);
});
