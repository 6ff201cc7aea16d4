import { runDeno, runProgram } from "./_run_task.ts";
import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import {
  AsyncResult,
  Pool,
  ProcessError,
  TargetNotExportedError,
  TimeoutError,
  Value,
} from "../mod.ts";
import {
  add,
  addToValue,
  badInit,
  countCalls,
  crash,
  describe,
  exitOnThree,
  failOnThree,
  half,
  init,
  initState,
  isRamp,
  keepReversed,
  notExported,
  returnFunction,
  sleepFor,
  slowDouble,
  square,
  throwString,
  whoami,
} from "./fixtures/pool_tasks.ts";

import { numberOrLater, numberOrText } from "./fixtures/pool_smi.ts";
import { bump, libraryLoaded } from "./fixtures/lazy_library.ts";

// The task functions live in fixtures/pool_tasks.ts: name it.
const module = new URL("./fixtures/pool_tasks.ts", import.meta.url);

/** `p`, or a rejection after T ms: no test may hang. */
async function collect<X>(it: AsyncIterable<X>): Promise<X[]> {
  const out: X[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

Deno.test("close() then join() settles with nothing else holding the event loop", async () => {
  // No bounded() on purpose: its timer would hold the loop and hide a wait
  // that does not (Deno then fails the test: "event loop has already resolved").
  const pool = new Pool({ processes: 2 });
  pool.close();
  await pool.join();
});

Deno.test("map, apply, starmap give the results in order", async () => {
  await using pool = new Pool({ processes: 2, module });
  assert.equal(pool.processes, 2);
  assert.deepEqual(
    await bounded(pool.map(square, range(100))),
    range(100).map((x) => x * x),
  );
  assert.deepEqual(
    await bounded(pool.map(square, range(100), 7)),
    range(100).map((x) => x * x),
  );
  assert.deepEqual(await bounded(pool.map(square, [])), []);
  assert.equal(await bounded(pool.apply(add, [2, 3])), 5);
  assert.deepEqual(
    await bounded(pool.starmap(add, [[1, 2], [3, 4], [5, 6]])),
    [3, 7, 11],
  );
  // Async task functions are awaited in the worker.
  assert.deepEqual(
    await bounded(pool.map(slowDouble, [1, 2, 3], 1)),
    [2, 4, 6],
  );
});

Deno.test("values of every kind travel: numbers exactly, objects, strings", async () => {
  await using pool = new Pool({ processes: 2, module });
  const odd = [-0.5, 1e-300, 2 ** 53, NaN, Infinity, -Infinity, 0.1];
  const got = await bounded(pool.map(half, odd, 2));
  assert.deepEqual(got, odd.map((x) => x + 0.5));
  assert.ok(Object.is(await bounded(pool.apply(half, [-0.5])), 0));
  assert.deepEqual(
    await bounded(pool.map(describe, [1, 2, 3])),
    [1, 2, 3].map((n) => ({ n, s: `#${n}`, a: [n, -n] })),
  );
  // Chunks larger than a ring record travel in shared memory of their own:
  // numbers both ways,
  const big = range(200_000);
  const squares = await bounded(pool.map(square, big, 100_000));
  assert.equal(squares.length, big.length);
  assert.equal(squares[199_999], 199_999 ** 2);
  assert.equal(squares[12_345], 12_345 ** 2);
  // other values both ways.
  const pairs = range(100_000).map((i) => [i, 0.25] as [number, number]);
  const sums = await bounded(pool.starmap(add, pairs, 100_000));
  assert.equal(sums.length, 100_000);
  assert.equal(sums[99_999], 99_999.25);
  const described = await bounded(pool.map(describe, range(60_000), 60_000));
  assert.equal(described.length, 60_000);
  assert.deepEqual(described[59_999], {
    n: 59_999,
    s: "#59999",
    a: [59_999, -59_999],
  });
});

Deno.test("big payloads both ways, many in flight: the shared buffers they travel in are reused, never while read", async () => {
  // Every payload here is over a ring record (512 KiB): each goes in a
  // SharedArrayBuffer that the reading side hands back for a later one.
  await using pool = new Pool({ processes: 2, module });
  const sizes = [70_000, 131_072, 65_600, 100_003]; // float64s: 525 KB-1 MiB
  const ramp = (i: number) =>
    Float64Array.from(
      { length: sizes[i % sizes.length] },
      (_, k) => i * 1e6 + k,
    );
  const pending: Promise<[boolean, Float64Array]>[] = [];
  for (let i = 0; i < 24; i++) {
    if (i >= 6) await bounded(pending[i - 6]);
    pending.push(pool.apply(keepReversed, [ramp(i)]));
  }
  const got = await bounded(Promise.all(pending));
  // Checked once all are in: a result that shared a reused buffer would
  // have changed since.
  got.forEach(([intact, back], i) => {
    assert.equal(intact, true, `task ${i}: what the worker kept changed`);
    const want = ramp(i).reverse();
    assert.equal(back.length, want.length, `result ${i}'s length`);
    assert.ok(back.every((x, k) => x === want[k]), `result ${i} is its own`);
  });
  // Numeric map chunks over a record, both ways, several rounds.
  const maps = [];
  for (let r = 0; r < 4; r++) {
    maps.push(
      await bounded(
        pool.map(half, range(200_000 + r).map((k) => k + r), 70_000),
      ),
    );
  }
  maps.forEach((m, r) => {
    assert.equal(m.length, 200_000 + r);
    assert.ok(isRamp(m) && m[0] === r + 0.5, `map ${r}'s results`);
  });
});

Deno.test("map: integer items travel exactly, -0 and those past int32 too", async () => {
  // Items that are all int32 go as int32 (small integers for the task); one
  // -0, fraction or larger integer sends its record as float64.
  await using pool = new Pool({ processes: 2, module });
  const edge = [2 ** 31 - 1, -(2 ** 31), 0, 7, -7];
  const n = (xs: number[]) => xs.map((x) => ({ n: x, s: `#${x}`, a: [x, -x] }));
  assert.deepEqual(await bounded(pool.map(describe, edge)), n(edge));
  for (const odd of [-0, 2 ** 31, -(2 ** 31) - 1, 1.5, 2 ** 53]) {
    const items = [...edge, odd];
    assert.deepEqual(await bounded(pool.map(describe, items, 1)), n(items));
    assert.deepEqual(await bounded(pool.map(describe, items)), n(items));
  }
  const big = [...range(70_000), -0];
  const got = await bounded(pool.map(describe, big, 70_001));
  assert.ok(Object.is(got[70_000].n, -0));
  assert.equal(got[69_999].n, 69_999);
});

Deno.test("a pool worker loads the library's shared classes only when a task brings one", async () => {
  const lazy = new URL("./fixtures/lazy_library.ts", import.meta.url);
  await using pool = new Pool({ processes: 1, module: lazy });
  // Not up front: importing them all took ~20 ms of a worker's start.
  assert.equal(await pool.apply(libraryLoaded), false);
  const v = new Value("i", 41);
  assert.equal(await pool.apply(bump, [v]), 42);
  assert.equal(v.value, 42);
  assert.equal(await pool.apply(libraryLoaded), true);
});

Deno.test("map: integer items reach the task as small integers, not doubles", async () => {
  const r = await runProgram(
    new URL("./fixtures/pool_smi.ts", import.meta.url),
    ["--v8-flags=--allow-natives-syntax"],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    map: [true, true, true],
    chunk1: [true, true],
    big: true,
    apply: true,
  });
});

Deno.test("map over numbers: results that turn out not numbers, or promises, partway through a chunk", async () => {
  await using pool = new Pool({
    processes: 2,
    module: new URL("./fixtures/pool_smi.ts", import.meta.url),
  });
  const items = [0, 1, 2, 3, 4, 5, -0, 1.5];
  assert.deepEqual(
    await bounded(pool.map(numberOrText, items, 8)),
    items.map(numberOrText),
  );
  assert.deepEqual(
    await bounded(pool.map(numberOrLater, items, 8)),
    items.map((x) => x * 2),
  );
});

Deno.test("items may be generators and async iterables", async () => {
  await using pool = new Pool({ processes: 2, module });
  function* gen() {
    for (let i = 0; i < 20; i++) yield i;
  }
  async function* agen() {
    for (let i = 0; i < 20; i++) {
      await null;
      yield i;
    }
  }
  const want = range(20).map((x) => x * x);
  assert.deepEqual(await bounded(pool.map(square, gen())), want);
  assert.deepEqual(await bounded(pool.map(square, agen(), 3)), want);
  assert.deepEqual(await bounded(collect(pool.imap(square, agen()))), want);
  assert.deepEqual(
    await bounded(collect(pool.imap(square, new Set(range(20)), 4))),
    want,
  );
});

Deno.test("imap yields in order; imapUnordered yields every result", async () => {
  await using pool = new Pool({ processes: 2, module });
  const want = range(50).map((x) => x * 2);
  assert.deepEqual(
    await bounded(collect(pool.imap(slowDouble, range(50)))),
    want,
  );
  const unordered = await bounded(
    collect(pool.imapUnordered(slowDouble, range(50), 3)),
  );
  assert.deepEqual(unordered.toSorted((a, b) => a - b), want);
});

Deno.test("imap reads an endless generator lazily and closes it on break", async () => {
  await using pool = new Pool({ processes: 2, module });
  let pulled = 0;
  let closed = false;
  function* naturals() {
    try {
      for (let i = 0;; i++) {
        pulled++;
        yield i;
      }
    } finally {
      closed = true;
    }
  }
  const got: number[] = [];
  await bounded((async () => {
    for await (const x of pool.imap(square, naturals())) {
      got.push(x);
      if (got.length === 1000) break;
    }
  })());
  assert.deepEqual(got, range(1000).map((x) => x * x));
  assert.ok(closed, "break closes the source");
  // Read ahead only as far as the workers and the consumer keep up.
  assert.ok(pulled < 20_000, `pulled ${pulled} items for 1000 results`);
  // The pool goes on.
  assert.equal(await bounded(pool.apply(square, [9])), 81);
});

Deno.test("imap with chunksize over an unending async source, with back-pressure", async () => {
  await using pool = new Pool({ processes: 2, module });
  let pulled = 0;
  async function* ticks() {
    for (let i = 0;; i++) {
      pulled++;
      await null;
      yield i;
    }
  }
  const it = pool.imapUnordered(square, ticks(), 5);
  const seen = new Set<number>();
  await bounded((async () => {
    for await (const x of it) {
      seen.add(x);
      if (seen.size === 200) break;
    }
  })());
  assert.equal(seen.size, 200);
  const first = pulled;
  // After break nothing more is read.
  await bounded(pool.apply(square, [1]));
  assert.equal(pulled, first);
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});

Deno.test("a task that throws rejects with the child's error; the pool goes on", async () => {
  await using pool = new Pool({ processes: 2, module });
  const e = await bounded(pool.apply(failOnThree, [3])).then(
    () => assert.fail("should reject"),
    (e) => e as TypeError & { code: string; stack: string },
  );
  assert.ok(e instanceof TypeError);
  assert.equal(e.name, "TypeError");
  assert.equal(e.message, "three is not allowed (got 3)");
  assert.equal(e.code, "E_THREE");
  assert.match(e.stack, /failOnThree/);
  assert.match(e.stack, /pool_tasks\.ts/);
  await assert.rejects(
    bounded(pool.map(failOnThree, range(10), 2)),
    (err: Error) => err instanceof TypeError && /three/.test(err.message),
  );
  await assert.rejects(
    bounded(pool.apply(throwString)),
    (err: unknown) => err === "plain string",
  );
  assert.deepEqual(await bounded(pool.map(failOnThree, [1, 2])), [1, 2]);
});

Deno.test("imap: an error comes in its place, then the rest (as Python's)", async () => {
  await using pool = new Pool({ processes: 2, module });
  // next() by hand: [0, 1, 2, raise, 4, 5], as Python's `next(it)`.
  const byHand = pool.imap(failOnThree, range(6));
  const seen: unknown[] = [];
  for (let i = 0; i < 7; i++) {
    try {
      const r = await bounded(byHand.next());
      seen.push(r.done ? "done" : r.value);
    } catch (e) {
      seen.push((e as { code?: string }).code);
    }
  }
  assert.deepEqual(seen, [0, 1, 2, "E_THREE", 4, 5, "done"]);
  // imapUnordered: the error once, and every other result.
  const un = pool.imapUnordered(failOnThree, range(6));
  const got: number[] = [];
  let errors = 0;
  for (let i = 0; i < 6; i++) {
    try {
      got.push((await bounded(un.next())).value as number);
    } catch (e) {
      assert.ok(e instanceof TypeError);
      errors++;
    }
  }
  assert.equal(errors, 1);
  assert.deepEqual(got.sort((a, b) => a - b), [0, 1, 2, 4, 5]);
  assert.deepEqual(await bounded(un.next()), { done: true, value: undefined });
  // `for await` ends at the throw (JS semantics); the iterator goes on.
  const it = pool.imap(failOnThree, range(5));
  const before: number[] = [];
  await assert.rejects(
    bounded((async () => {
      for await (const x of it) before.push(x);
    })()),
    TypeError,
  );
  assert.deepEqual(before, [0, 1, 2]);
  assert.deepEqual(await bounded(it.next()), { done: false, value: 4 });
  assert.deepEqual(await bounded(it.next()), { done: true, value: undefined });
  // A failed chunk raises once in place of its items.
  const chunked = pool.imap(failOnThree, range(6), 2);
  const items: unknown[] = [];
  for (let i = 0; i < 6; i++) {
    try {
      const r = await bounded(chunked.next());
      items.push(r.done ? "done" : r.value);
    } catch {
      items.push("raise");
    }
  }
  assert.deepEqual(items, [0, 1, "raise", 4, 5, "done"]);
  // An error thrown by the source comes after the results before it, and
  // ends the iteration (the source has nothing more).
  function* failing() {
    yield 1;
    yield 2;
    throw new RangeError("source broke");
  }
  const got2: number[] = [];
  const fromSource = pool.imap(square, failing());
  await assert.rejects(
    bounded((async () => {
      for await (const x of fromSource) got2.push(x);
    })()),
    /source broke/,
  );
  assert.deepEqual(got2, [1, 4]);
  assert.deepEqual(await bounded(fromSource.next()), {
    done: true,
    value: undefined,
  });
});

Deno.test("close() and join() after a for await ended at a task's error: join reads the rest, as Python's", async () => {
  const pool = new Pool({ processes: 2, module });
  const it = pool.imap(failOnThree, range(20_000));
  await assert.rejects(
    bounded((async () => {
      for await (const _ of it) { /* until the error */ }
    })()),
    TypeError,
  );
  pool.close();
  await bounded(pool.join(), 60_000, "join");
  // The results are still there for a reader.
  assert.deepEqual(await bounded(it.next()), { done: false, value: 4 });
});

Deno.test("imap next(timeoutMs) rejects with TimeoutError and keeps the item for the next call", async () => {
  await using pool = new Pool({ processes: 1, module });
  const it = pool.imap(sleepFor, [300, 0]);
  await assert.rejects(
    bounded(it.next(20)),
    (e: Error) => e instanceof TimeoutError && /20 ms/.test(e.message),
  );
  // The item that was not ready comes to the next call, then the rest.
  assert.deepEqual(await bounded(it.next(10_000)), { done: false, value: 300 });
  assert.deepEqual(await bounded(it.next(10_000)), { done: false, value: 0 });
  assert.deepEqual(await bounded(it.next(0)), { done: true, value: undefined });
  // A timed-out call does not take the place of a later one.
  const un = pool.imapUnordered(sleepFor, [200]);
  await assert.rejects(bounded(un.next(0)), TimeoutError);
  const waiting = un.next();
  await assert.rejects(bounded(un.next(5)), TimeoutError);
  assert.deepEqual(await bounded(waiting), { done: false, value: 200 });
  assert.throws(() => it.next(-1), RangeError);
  assert.throws(() => it.next(NaN), /next timeout/);
});

Deno.test("a worker that dies in a task is replaced; the task fails, the pool never hangs", async () => {
  await using pool = new Pool({ processes: 2, module });
  const before = new Set(await bounded(pool.map(whoami, range(8), 1)));
  await assert.rejects(
    bounded(pool.map(exitOnThree, range(6), 1)),
    (e: Error) =>
      e instanceof ProcessError && /died/.test(e.message) &&
      /exit code 7/.test(e.message),
  );
  // An uncaught error outside the task's own stack crashes the worker.
  await assert.rejects(
    bounded(pool.apply(crash)),
    (e: Error) => e instanceof ProcessError && /died/.test(e.message),
  );
  // Still two workers, and they work; at least one is new.
  const after = new Set(await bounded(pool.map(whoami, range(40), 1)));
  assert.equal(after.size <= 2, true);
  assert.ok([...after].some((name) => !before.has(name)));
  assert.deepEqual(await bounded(pool.map(square, [1, 2, 3])), [1, 4, 9]);
  // Tasks queued behind the fatal one run elsewhere: each gets its own outcome.
  const outcomes = await bounded(Promise.allSettled(
    range(6).map((x) => pool.apply(exitOnThree, [x])),
  ));
  assert.deepEqual(
    outcomes.map((o) => o.status),
    [
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
    ],
  );
});

Deno.test("AsyncResult: get with timeout, wait, ready, successful, callbacks", async () => {
  await using pool = new Pool({ processes: 1, module });
  const slow = pool.applyAsync(slowDouble, [21, 300]);
  assert.ok(slow instanceof AsyncResult);
  assert.equal(slow.ready(), false);
  assert.throws(() => slow.successful(), ProcessError);
  await assert.rejects(slow.get(1), TimeoutError);
  await slow.wait(1);
  // Infinity waits as undefined does (setTimeout fired at once for it).
  assert.equal(await bounded(slow.get(Infinity)), 42);
  assert.equal(await bounded(slow.get()), 42);
  assert.equal(slow.ready(), true);
  assert.equal(slow.successful(), true);

  const got: unknown[] = [];
  const ok = pool.mapAsync(square, [1, 2, 3], undefined, {
    callback: (r) => got.push(["ok", r]),
    errorCallback: (e) => got.push(["err", e]),
  });
  const bad = pool.applyAsync(failOnThree, [3], {
    callback: (r) => got.push(["ok", r]),
    errorCallback: (e) => got.push(["err", (e as Error).message]),
  });
  const star = pool.starmapAsync(add, [[1, 1], [2, 2]], 1, {
    callback: (r) => got.push(["star", r]),
  });
  await bounded(Promise.all([ok.wait(), bad.wait(), star.wait()]));
  assert.deepEqual(got, [
    ["ok", [1, 4, 9]],
    ["err", "three is not allowed (got 3)"],
    ["star", [2, 4]],
  ]);
  assert.equal(bad.successful(), false);
  await assert.rejects(bad.get(), TypeError);
});

Deno.test("default chunksize is Python's; maxtasksperchild replaces workers", async () => {
  // 10 items on 1 worker: chunks of ceil(10 / 4) = 3, so 4 tasks, and with
  // maxtasksperchild 1 each task runs in a worker of its own.
  await using pool = new Pool({ processes: 1, module, maxtasksperchild: 1 });
  const names = await bounded(pool.map(whoami, range(10)));
  assert.equal(names.length, 10);
  assert.equal(new Set(names).size, 4);
  assert.deepEqual(
    names.map((n) => n === names[0]),
    [true, true, true, false, false, false, false, false, false, false],
  );
  // Each worker counts its own calls: never more than 2 tasks of 1 item.
  await using pool2 = new Pool({ processes: 2, module, maxtasksperchild: 2 });
  const counts = await bounded(pool2.map(countCalls, range(12), 1));
  assert.ok(counts.every(([, n]) => n <= 2), JSON.stringify(counts));
  assert.ok(new Set(counts.map(([name]) => name)).size >= 6);
});

Deno.test("initializer runs once in every worker, replacements too", async () => {
  await using pool = new Pool({
    processes: 2,
    module,
    initializer: init,
    initargs: ["x", 1],
    maxtasksperchild: 2,
  });
  const states = await bounded(pool.map(initState, range(10), 1));
  assert.ok(states.every((s) => JSON.stringify(s.init) === '["x",1]'));
  assert.ok(new Set(states.map((s) => s.name)).size >= 5);
});

Deno.test("a failing or unexported initializer breaks the pool with its error", async () => {
  {
    await using pool = new Pool({ processes: 2, module, initializer: badInit });
    await assert.rejects(
      bounded(pool.apply(square, [2])),
      (e: Error) =>
        e instanceof RangeError && /initializer refused/.test(e.message),
    );
    assert.throws(() => pool.applyAsync(square, [2]), RangeError);
  }
  {
    await using pool = new Pool({
      processes: 1,
      module,
      initializer: notExported,
    });
    await assert.rejects(
      bounded(pool.apply(square, [2])),
      TargetNotExportedError,
    );
  }
});

Deno.test("close lets queued work finish, then join returns; submitting after close throws", async () => {
  const pool = new Pool({ processes: 2, module });
  await assert.rejects(pool.join(), ProcessError); // join before close
  const results = range(6).map((x) => pool.applyAsync(slowDouble, [x, 20]));
  const it = pool.imap(square, range(5));
  pool.close();
  assert.throws(() => pool.applyAsync(square, [1]), ProcessError);
  await assert.rejects(pool.map(square, [1]), /closed/);
  assert.throws(() => pool.imap(square, [1]), ProcessError);
  assert.deepEqual(await bounded(collect(it)), [0, 1, 4, 9, 16]);
  await bounded(pool.join());
  assert.deepEqual(
    await Promise.all(results.map((r) => r.get())),
    range(6).map((x) => x * 2),
  );
  pool.close(); // again: harmless
  await pool[Symbol.asyncDispose]();
});

Deno.test("terminate fails unfinished results; submitting after terminate throws", async () => {
  const pool = new Pool({ processes: 2, module });
  assert.equal(await bounded(pool.apply(square, [3])), 9);
  const slow = pool.applyAsync(sleepFor, [10_000]);
  const it = pool.imap(sleepFor, [10_000, 10_000]);
  pool.terminate();
  await assert.rejects(bounded(slow.get()), /terminated/);
  await assert.rejects(bounded(it.next()), /terminated/);
  assert.throws(() => pool.applyAsync(square, [1]), /terminated/);
  await assert.rejects(pool.map(square, [1]), /terminated/);
  await bounded(pool.join());
  pool.terminate(); // again: harmless
});

Deno.test("a task function imported from another module: the error names that module and the `module` option", async () => {
  await using pool = new Pool({ processes: 1 }); // no `module`
  const there = module.href;
  await assert.rejects(
    bounded(pool.apply(square, [2])),
    (e: Error) =>
      e instanceof TargetNotExportedError &&
      e.message.startsWith(
        `'square' is not exported from ${
          new URL(import.meta.url).href
        }, which passed it: it is imported there from ${there}.`,
      ) &&
      e.message.includes(`\`module: "${there}"\``),
  );
});

Deno.test("a pool whose task module has a top-level await runs its tasks", async () => {
  const tla = new URL("./fixtures/tla_targets.ts", import.meta.url);
  const { square: sq } = await import(tla.href);
  await using pool = new Pool({ processes: 1, module: tla });
  assert.deepEqual(await bounded(pool.map(sq, [1, 2, 3])), [1, 4, 9]);
});

Deno.test("bad input fails fast with named errors", async () => {
  for (const processes of [0, -1, 1.5, NaN, "2"]) {
    assert.throws(
      () => new Pool({ processes: processes as number, module }),
      (e: Error) => e instanceof RangeError && /processes/.test(e.message),
    );
  }
  assert.throws(
    () => new Pool({ module, maxtasksperchild: 0 }),
    RangeError,
  );
  assert.throws(
    () => new Pool({ module, initargs: 3 as unknown as unknown[] }),
    TypeError,
  );
  await using pool = new Pool({ processes: 1, module });
  assert.throws(() => pool.mapAsync(square, [1], 0), RangeError);
  assert.throws(() => pool.imap(square, [1], 1.5), RangeError);
  assert.throws(
    () => pool.mapAsync(square, 5 as unknown as number[]),
    TypeError,
  );
  assert.throws(
    () => pool.applyAsync("square" as unknown as () => void),
    TypeError,
  );
  // Not exported: rejected before any work starts.
  await assert.rejects(
    bounded(pool.map(notExported, [1, 2])),
    (e: Error) =>
      e instanceof TargetNotExportedError && /'hidden'/.test(e.message),
  );
  await assert.rejects(
    bounded(pool.apply((x: number) => x, [1])),
    (e: Error) =>
      e instanceof TargetNotExportedError &&
      /^an anonymous or inline function cannot be a child's target/.test(
        e.message,
      ),
  );
  // A burst before the first lookup ended, and a call after it failed.
  const burst = [1, 2, 3].map((x) => pool.apply(notExported, [x]));
  for (const p of burst) {
    await assert.rejects(bounded(p), TargetNotExportedError);
  }
  await assert.rejects(
    bounded(pool.apply(notExported, [4])),
    TargetNotExportedError,
  );
  assert.equal(await bounded(pool.apply(square, [5])), 25);
  // Items that cannot be sent: that task fails, naming the item.
  await assert.rejects(
    bounded(pool.map(square, [1, (() => 2) as unknown as number, 3])),
    (e: Error) => e instanceof TypeError && /items\[1\]/.test(e.message),
  );
  await assert.rejects(
    bounded(pool.apply(add, [1, Symbol("s") as unknown as number])),
    (e: Error) => e instanceof TypeError && /args\[1\]/.test(e.message),
  );
  const got: number[] = [];
  await assert.rejects(
    bounded((async () => {
      const items = [1, 2, 3, 4, (() => 5) as unknown as number, 6];
      for await (const x of pool.imap(square, items, 2)) got.push(x);
    })()),
    (e: Error) => e instanceof TypeError && /items\[4\]/.test(e.message),
  );
  assert.deepEqual(got, [1, 4, 9, 16]);
  await assert.rejects(
    bounded(pool.apply(returnFunction)),
    (e: Error) => e instanceof TypeError && /function/.test(e.message),
  );
  // A URL would come through postMessage as `{}`: refused, naming it.
  await assert.rejects(
    bounded(pool.apply(add, [1, new URL("http://x/") as unknown as number])),
    (e: Error) =>
      e instanceof TypeError && /args\[1\] is a URL/.test(e.message),
  );
  // The pool is fine after all that.
  assert.equal(await bounded(pool.apply(add, [1, 1])), 2);
});

Deno.test("shared objects in args stay shared", async () => {
  await using pool = new Pool({ processes: 2, module });
  const v = new Value("i", 0);
  const r = await bounded(
    pool.starmap(
      addToValue,
      range(10).map(() => [v, 1] as [Value<"i">, number]),
    ),
  );
  assert.equal(v.value, 10);
  assert.deepEqual(r.toSorted((a, b) => a - b), range(10).map((x) => x + 1));
});

function runExample(task: string, ...args: string[]) {
  return runDeno(["task", "-q", task, ...args]);
}

Deno.test("example:pool prints seed 002's lines, two jobs at a time", async () => {
  const r = await runExample("example:pool", "--scale", "0.02");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  const seconds: Record<string, number> = { A: 5, B: 2, C: 1, D: 3 };
  const want = Object.entries(seconds).flatMap(([job, s]) => [
    ` Process ${job} waiting ${s} seconds`,
    ` Process ${job} Finished.`,
  ]);
  assert.deepEqual(lines.toSorted(), want.toSorted());
  // Each job says it waits before it says it finished, and the two workers
  // never run more than two jobs at once.
  let running = 0;
  for (const line of lines) {
    const [, job, what] = line.match(/^ Process (\w) (waiting|Finished)/)!;
    if (what === "waiting") {
      assert.ok(
        !lines.slice(0, lines.indexOf(line)).some((l) =>
          l.includes(`${job} Finished`)
        ),
      );
      running++;
      assert.ok(running <= 2, `more than two jobs at once:\n${r.stdout}`);
    } else {
      assert.ok(
        lines.indexOf(line) >
          lines.indexOf(` Process ${job} waiting ${seconds[job]} seconds`),
      );
      running--;
    }
  }
});

Deno.test("example:pool-methods prints the pool methods' results", async () => {
  const r = await runExample("example:pool-methods");
  assert.equal(r.code, 0, r.stderr);
  const cubes = "[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]";
  assert.deepEqual(r.stdout.trimEnd().split("\n"), [
    `map: ${cubes}`,
    `map, chunksize 3: ${cubes}`,
    `apply: ${cubes}`,
    `mapAsync callback: ${cubes}`,
    "applyAsync callback: 64",
    "closed and joined",
    cubes,
  ]);
});

Deno.test("example:pool rejects a bad --scale with a clear error", async () => {
  const r = await runExample("example:pool", "--scale", "zero");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--scale must be a positive number/);
});

function runFixture(file: string, ...args: string[]) {
  return runProgram(new URL(file, import.meta.url), [
    "--unstable-worker-options",
  ], args);
}

Deno.test("an idle pool left open does not keep the program alive (as Python's)", async () => {
  const r = await runFixture("./fixtures/pool_idle.ts");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split("\n"), [
    "[ 1, 4, 9 ]",
    "main done",
  ]);
});

Deno.test("a pool nobody can reach, with a task running, does not keep the program alive (as Python's)", async () => {
  // The task runs for an hour: the run's bound (RUN_TIMEOUT_MS) fails the test if it holds.
  const r = await runFixture("./fixtures/pool_unreachable.ts");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "main done");
});

Deno.test("a wait on a pool's result (get, wait, imap) holds the program until the result is there", async () => {
  const r = await runFixture("./fixtures/pool_unreachable.ts", "--wait");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split("\n"), [
    "waited for 300",
    "ready true",
    "imap 100",
    "imap 50",
    "main done",
  ]);
});

Deno.test("permissions: workers run with the given permissions", async () => {
  const r = await runFixture("./fixtures/pool_idle.ts", "--permissions");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split("\n"), [
    "[ 1, 4, 9 ]",
    "NotCapable",
    "main done",
  ]);
});
