import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { bounded } from "./_bounded.ts";
import { REF_KEY } from "../lib/manager/_wire.ts";
import { runProgram } from "./_run_task.ts";
import {
  type AutoProxy,
  BaseProxy,
  BrokenBarrierError,
  ClassNotExportedError,
  type ConditionProxy,
  type DictProxy,
  Empty,
  EOFError,
  type EventProxy,
  Full,
  type ListProxy,
  type LockProxy,
  Manager,
  Pipe,
  Pool,
  Process,
  ProcessError,
  Queue,
  TimeoutError,
} from "../mod.ts";
import {
  announceReady,
  appendFromQueue,
  appendItem,
  appendWhenSet,
  awaitReady,
  barrierParty,
  bounce,
  bumpAndNotify,
  fillDict,
  forwardToGrandchild,
  holdConditionAndDie,
  increment,
  ownManager,
  producer,
  putLater,
  sendBackAndEnd,
  squareArray,
  takeLockAndDie,
  waitBarrierAndDie,
  waitThenSet,
} from "./fixtures/manager_targets.ts";
import {
  bumpCounter,
  Counter,
  CounterError,
  LoudCounter,
  makeMaths,
  Maths,
  notAClass,
} from "./fixtures/manager_classes.ts";

const module = new URL("./fixtures/manager_targets.ts", import.meta.url);
const T = 20_000;

/** Rejects after `ms`, so no test can hang. */
async function run(target: (...a: never[]) => unknown, args: unknown[]) {
  const p = new Process({ target, args, module } as never);
  await p.start();
  await p.join(T);
  assert.equal(p.exitCode, 0, "child ended cleanly");
}

Deno.test("list proxy: Python's list methods, negative indices, by-value search", async () => {
  await using m = await Manager.start();
  const l = await m.list<unknown>([1, 2, 3]);
  assert.ok(l instanceof BaseProxy);
  assert.equal(l.kind, "list");
  await l.append(4);
  await l.extend([5, 6]);
  assert.equal(await l.get(-1), 6);
  await l.set(0, "one");
  assert.equal(await l.pop(), 6);
  assert.equal(await l.pop(0), "one");
  await l.insert(0, ["Sam", 10]);
  assert.equal(await l.index(["Sam", 10]), 0);
  assert.equal(await l.count(["Sam", 10]), 1);
  assert.equal(await l.includes(["Sam", 10]), true);
  await l.remove(["Sam", 10]);
  assert.deepEqual(await l.toArray(), [2, 3, 4, 5]);
  assert.deepEqual(await l.slice(1, -1), [3, 4]);
  assert.equal(await l.len(), 4);
  const seen: unknown[] = [];
  for await (const x of l) seen.push(x);
  assert.deepEqual(seen, [2, 3, 4, 5]);
  await assert.rejects(l.get(10), RangeError);
  await assert.rejects(l.remove("absent"), /not in list/);
  await l.clear();
  await assert.rejects(l.pop(), /pop from empty list/);
});

Deno.test("dict, Namespace, Value proxies", async () => {
  await using m = await Manager.start();
  const d = await m.dict<unknown, unknown>({ a: 1 });
  await d.set("b", 2);
  await d.set(["x", 1], "tuple key");
  assert.equal(await d.get(["x", 1]), "tuple key");
  assert.equal(await d.get("zzz"), undefined);
  assert.equal(await d.get("zzz", "dflt"), "dflt");
  assert.equal(await d.has("a"), true);
  assert.equal(await d.delete("a"), true);
  assert.equal(await d.delete("a"), false);
  await d.update({ c: 3 });
  await d.update([["d", 4]]);
  assert.deepEqual(await d.keys(), ["b", ["x", 1], "c", "d"]);
  assert.equal(await d.len(), 4);
  assert.equal(await d.pop("d"), 4);
  await assert.rejects(d.pop("d"), RangeError);
  assert.equal(await d.pop("d", 0), 0);
  assert.equal(await d.setdefault("e", 5), 5);
  assert.deepEqual(await d.toObject(), {
    b: 2,
    "x,1": "tuple key",
    c: 3,
    e: 5,
  });

  const ns = await m.Namespace({ x: 1 });
  await ns.set("y", [1, 2]);
  assert.equal(await ns.get("x"), 1);
  assert.deepEqual(await ns.get("y"), [1, 2]);
  assert.deepEqual(await ns.toObject(), { x: 1, y: [1, 2] });

  const v = await m.Value("i", 7);
  await v.set(8);
  assert.equal(await v.get(), 8);
  assert.equal(await v.typecode(), "i");
  assert.throws(() => m.Value("z", 0), /unknown typecode "z".*b B h H i/);
});

Deno.test("queue, lock, event proxies: waits, timeouts, Empty/Full", async () => {
  await using m = await Manager.start();
  const q = await m.Queue<number>({ maxsize: 2 });
  await q.put(1);
  await q.putNowait(2);
  assert.equal(await q.full(), true);
  await assert.rejects(q.putNowait(3), Full);
  await assert.rejects(q.put(3, { timeout: 10 }), Full);
  assert.equal(await q.qsize(), 2);
  assert.equal(await q.get(), 1);
  assert.equal(await q.getNowait(), 2);
  await assert.rejects(q.getNowait(), Empty);
  await assert.rejects(q.get({ timeout: 10 }), Empty);
  await assert.rejects(q.get({ block: false }), Empty);
  // A blocked get is served by a later put.
  const pending = q.get();
  await q.put(42);
  assert.equal(await bounded(pending), 42);
  await q.taskDone();
  await q.taskDone();
  await q.taskDone();
  await bounded(q.join());
  await assert.rejects(q.taskDone(), ProcessError);

  const lock = await m.Lock();
  assert.equal(await lock.acquire(), true);
  assert.equal(await lock.acquire({ blocking: false }), false);
  assert.equal(await lock.acquire({ timeout: 10 }), false);
  await lock.release();
  await assert.rejects(lock.release(), ProcessError);
  {
    await using _ = await lock.hold();
    assert.equal(await lock.locked(), true);
    await assert.rejects(lock.hold({ timeout: 5 }), TimeoutError);
    await assert.rejects(lock.hold({ blocking: false }), /is taken/);
  }
  assert.equal(await lock.locked(), false);

  const sem = await m.BoundedSemaphore(1);
  assert.equal(await sem.acquire(), true);
  assert.equal(await sem.acquire({ blocking: false }), false);
  await sem.release();
  await assert.rejects(sem.release(), ProcessError);

  const ev = await m.Event();
  assert.equal(await ev.isSet(), false);
  assert.equal(await ev.wait(10), false);
  const waiting = ev.wait();
  await ev.set();
  assert.equal(await bounded(waiting), true);
  await ev.clear();
  assert.equal(await ev.isSet(), false);
});

Deno.test("proxies cross into children inside args (nested too) and work there", async () => {
  await using m = await Manager.start();
  const records = await m.list<unknown>([["Sam", 10]]);
  await run(appendItem, [records, ["Jeff", 8]]);
  assert.deepEqual(await records.toArray(), [["Sam", 10], ["Jeff", 8]]);

  const shared = {
    d: await m.dict<string, number>(),
    v: await m.Value("i", 0),
  };
  await run(fillDict, [shared, 50]);
  assert.equal(await shared.d.len(), 50);
  assert.equal(await shared.d.get("k49"), 49);
  assert.equal(await shared.v.get(), 50);

  // A child hands its proxy on to its own child.
  await run(forwardToGrandchild, [records]);
  assert.equal(await records.get(-1), "grandchild");
});

Deno.test("a lock proxy serializes increments from several children", async () => {
  await using m = await Manager.start();
  const v = await m.Value("i", 0);
  const lock = await m.Lock();
  const procs = [0, 1, 2].map(() =>
    new Process({ target: increment, args: [v, lock, 30], module })
  );
  for (const p of procs) await p.start();
  for (const p of procs) {
    await p.join(T);
    assert.equal(p.exitCode, 0);
  }
  assert.equal(await v.get(), 90);
});

Deno.test("a queue proxy carries items from children; an event wakes a child", async () => {
  await using m = await Manager.start();
  const q = await m.Queue<number>();
  const procs = [0, 1].map(() =>
    new Process({ target: producer, args: [q, 25], module })
  );
  for (const p of procs) await p.start();
  const got: number[] = [];
  for (let i = 0; i < 50; i++) got.push(await bounded(q.get()));
  for (const p of procs) await p.join(T);
  assert.equal(got.length, 50);
  assert.deepEqual(got.filter((x) => x === 0).length, 2);

  const ev = await m.Event();
  const out = await m.list();
  const p = new Process({ target: waitThenSet, args: [ev, out], module });
  await p.start();
  await ev.set();
  await p.join(T);
  assert.deepEqual(await out.toArray(), ["seen"]);
});

Deno.test("a call that waits in the server does not hold up the other calls of its process", async () => {
  await using m = await Manager.start();
  const lock = await m.Lock();
  const d = await m.dict<string, number>();
  assert.equal(await lock.acquire(), true);
  // Waits in the server (this process holds the lock) ...
  const waiting = lock.acquire({ timeout: T });
  // ... while the rest of this process goes on calling, and releases it.
  await bounded((async () => {
    for (let i = 0; i < 100; i++) await d.set("k", i);
    assert.equal(await d.get("k"), 99);
    await lock.release();
  })());
  assert.equal(await bounded(waiting), true);
  assert.equal(await lock.locked(), true);
  await lock.release();
});

Deno.test("a lock held by a process that died is released", async () => {
  await using m = await Manager.start();
  await assertReleasedOnDeath(m, await m.Lock(), takeLockAndDie);
});

/**
 * Runs `target(lock, taken)` in a child that takes `lock`, sets `taken` and
 * dies (exit code 3); then `lock` must be free again.
 */
async function assertReleasedOnDeath<L extends LockProxy | ConditionProxy>(
  m: Manager,
  lock: L,
  target: (lock: L, taken: EventProxy) => unknown,
): Promise<void> {
  const taken = await m.Event();
  const p = new Process({ target, args: [lock, taken], module });
  await p.start();
  assert.equal(await taken.wait(T), true);
  await p.join(T);
  assert.equal(p.exitCode, 3);
  assert.equal(await lock.acquire({ timeout: T }), true);
  await lock.release();
}

Deno.test("nested proxies: a dict holds a list proxy", async () => {
  await using m = await Manager.start();
  const d = await m.dict<string, ListProxy>();
  const l = await m.list([1]);
  await d.set("inner", l);
  const back = await d.get("inner");
  assert.ok(back);
  await back.append(2);
  assert.deepEqual(await l.toArray(), [1, 2]);
  await using other = await Manager.start();
  const foreign = await other.list();
  await assert.rejects(
    d.set("x", foreign as never),
    /only be stored in the manager/,
  );
});

Deno.test("bad input: a method the proxy type lacks, bad arguments", async () => {
  await using m = await Manager.start();
  const l = await m.list();
  await assert.rejects(
    l.callMethod("nonesuch"),
    (e: Error) =>
      e instanceof TypeError &&
      /list proxy has no method 'nonesuch'/.test(e.message) &&
      /append/.test(e.message),
  );
  await assert.rejects(l.callMethod("constructor"), TypeError);
  await assert.rejects(l.callMethod("__proto__"), TypeError);
  await assert.rejects(l.get(1.5 as number), /must be an integer/);
  const q = await m.Queue();
  await assert.rejects(q.get({ timeout: -1 }), RangeError);
  // The server still serves.
  await l.append(1);
  assert.equal(await l.len(), 1);
  await assert.rejects(m.Queue({ maxsize: "x" as never }), TypeError);
  // Errors name the bad value as it is, and the method.
  await assert.rejects(m.Queue("x" as never), /maxsize .* got "x"; e\.g\./);
  await assert.rejects(m.Queue(NaN), /maxsize .* got NaN/);
  await assert.rejects(
    (async () => await m.list(5 as never))(),
    /^TypeError: manager\.list\(items\): items must be iterable .* got number/,
  );
  await assert.rejects(
    (async () => await l.extend(5 as never))(),
    /ListProxy\.extend\(items\): items must be iterable .* got number/,
  );
  // Out of range: stored as SharedArray stores it (documented), not refused.
  const arr = await m.Array("i", 2);
  await arr.set(0, 2 ** 40);
  await arr.set(1, 3.7);
  assert.deepEqual(await arr.toArray(), [0, 3]);
  using ends = Pipe();
  await assert.rejects(
    (async () => await l.append({ conn: ends[0] }))(),
    /a Connection cannot be stored in a manager/,
  );
  await assert.rejects(l.append(() => 1), /cannot be sent to the manager/);
  assert.throws(() => m.register("", l), TypeError);
  await assert.rejects(
    Manager.start({ address: { hostname: "127.0.0.1", port: 0 } }),
    /needs an authkey/,
  );
});

Deno.test("after shutdown: proxy calls and factories fail with EOFError at once", async () => {
  const m = await Manager.start();
  const d = await m.dict<string, number>();
  await d.set("a", 1);
  const blocked = assert.rejects(bounded((await m.Queue()).get()), EOFError);
  await m.shutdown();
  await blocked;
  await assert.rejects(bounded(d.get("a")), EOFError);
  await assert.rejects(bounded(d.set("a", 2)), /shut down/);
  await assert.rejects(m.dict(), EOFError);
  await m.shutdown(); // twice is fine
});

Deno.test("a dead server: a proxy whose manager's process ended rejects, never hangs", async () => {
  using ends = Pipe();
  const [mine, theirs] = ends;
  const p = new Process({ target: ownManager, args: [theirs], module });
  await p.start();
  const d = await bounded(mine.recv()) as DictProxy<string, number>;
  assert.equal(await bounded(d.get("a")), 1);
  mine.send("end");
  await p.join(T);
  assert.equal(p.exitCode, 0);
  await assert.rejects(bounded(d.get("a")), EOFError);
  await assert.rejects(bounded(d.get("a")), /has ended|closed this channel/);
});

async function runExample(file: string): Promise<string> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(`../examples/${file}`, import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killer = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cmd.kill("SIGKILL");
      reject(new Error(`example ${file} did not finish in ${T} ms`));
    }, T);
  });
  try {
    const out = await Promise.race([cmd.output(), killer]);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("example:manager prints seed 001's records output", async () => {
  const expected = "New record added!\n\n" +
    [["Sam", 10], ["Adam", 9], ["Kevin", 9], ["Jeff", 8]]
      .map(([n, s]) => ` Name: ${n}\n Score: ${s}\n\n`).join("");
  assert.equal(await runExample("manager.ts"), expected);
});

Deno.test("example:remote-manager: the served queue prints the other program's work", async () => {
  assert.equal(
    await runExample("remote_manager.ts"),
    "Serving a queue named 'jobs' (authkey required)\n" +
      "Got work: resize photo-1.png\nGot work: resize photo-2.png\nDone\n",
  );
});

Deno.test("a blocking call made right after another call's reply is still served", async () => {
  await using m = await Manager.start();
  const q = await m.Queue<number>();
  for (let i = 0; i < 3; i++) {
    const p = new Process({ target: putLater, args: [q, i, 300], module });
    await p.start();
    // A fast call, then at once a blocking one that only the child can end.
    // (register() hands back the channel's own promise: the shortest path.)
    await m.register(`q${i}`, q);
    assert.equal(await bounded(q.get(), T, "get after register"), i);
    await p.join(T);
  }
});

Deno.test("calls made without awaiting are served in order; big and rich values", async () => {
  await using m = await Manager.start();
  const q = await m.Queue<number>();
  const puts: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) puts.push(q.put(i));
  await bounded(Promise.all(puts));
  const got: number[] = [];
  for (let i = 0; i < 200; i++) got.push(await q.getNowait());
  assert.deepEqual(got, [...Array(200).keys()]);

  // A reply bigger than the shared-memory lane comes by the port.
  const l = await m.list<string>();
  const big = "x".repeat(100_000);
  await l.append(big);
  await l.extend(Array.from({ length: 1000 }, (_, i) => `item ${i}`));
  const all = await l.toArray();
  assert.equal(all.length, 1001);
  assert.equal(all[0], big);
  assert.equal(await l.get(1000), "item 999");

  // Types beyond JSON survive both lanes.
  const d = await m.dict<string, unknown>();
  const rich = {
    n: 10n,
    date: new Date(5),
    map: new Map([[1, "a"]]),
    set: new Set([1]),
    bytes: new Uint8Array([1, 2, 3]),
    undef: undefined,
  };
  await d.set("rich", rich);
  assert.deepEqual(await d.get("rich"), rich);
});

Deno.test("proxies in Sets, as Map keys and in class instances are references; data named like one stays data", async () => {
  await using m = await Manager.start();
  const d = await m.dict<string, unknown>();
  const l = await m.list([1]);
  await d.set("set", new Set([l, 2]));
  const set = await d.get("set") as Set<unknown>;
  const [member, two] = [...set];
  assert.ok(member instanceof BaseProxy, "a Set member");
  assert.equal(member.id, l.id);
  assert.equal(two, 2);
  await d.set("map", new Map<unknown, unknown>([[l, "value"], ["k", l]]));
  const map = await d.get("map") as Map<unknown, unknown>;
  const [key, k] = [...map.keys()];
  assert.ok(key instanceof BaseProxy, "a Map key");
  assert.equal(await (key as ListProxy).len(), 1);
  assert.equal(map.get(key), "value");
  assert.equal(k, "k");
  assert.equal(map.get("k"), key, "one stored reference, one proxy");
  class Holder {
    constructor(readonly list: ListProxy, readonly n: number) {}
  }
  // A class instance travels as a plain object of its fields (as structured
  // clone and the module's codec carry it), its proxies as references.
  await d.set("instance", new Holder(l, 7));
  const instance = await d.get("instance") as { list: ListProxy; n: number };
  assert.equal(Object.getPrototypeOf(instance), Object.prototype);
  assert.equal(instance.n, 7);
  assert.deepEqual(await instance.list.toArray(), [1]);
  assert.equal(await refsOf(m, l.id), 7, "l, 3 stored, 3 received");

  // Data with a field named like the reference key is data, both ways.
  const fake = { [REF_KEY]: [l.id, "list"] };
  const nested = { [REF_KEY]: { [REF_KEY]: [l.id, "list"] }, list: l };
  await d.set("fake", fake);
  await d.set("nested", nested);
  assert.deepEqual(await d.get("fake"), fake);
  const back = await d.get("nested") as typeof nested;
  assert.deepEqual(back[REF_KEY], nested[REF_KEY]);
  assert.equal(back.list.id, l.id);
  assert.equal(await refsOf(m, l.id), 9, "nested's stored one, back.list");
  const keys = await m.dict<string, unknown>();
  await keys.set(REF_KEY, [l.id, "list"]);
  assert.deepEqual(await keys.toObject(), { [REF_KEY]: [l.id, "list"] });
  const ns = await m.Namespace({ [REF_KEY]: [l.id, "list"], a: 1 });
  assert.deepEqual(await ns.toObject(), { [REF_KEY]: [l.id, "list"], a: 1 });
  assert.deepEqual(await ns.get(REF_KEY), [l.id, "list"]);
  const d2 = await m.dict({ [REF_KEY]: 5 });
  assert.deepEqual(await d2.items(), [[REF_KEY, 5]]);
  const l2 = await m.list([fake]);
  assert.equal(await l2.index({ [REF_KEY]: [l.id, "list"] }), 0);
  assert.equal(await l2.includes({ [REF_KEY]: [l.id, "other"] }), false);
  assert.equal(await refsOf(m, l.id), 9);
});

Deno.test("the module's Queue refuses a proxy, saying where it can go; a Pool task carries one", async () => {
  await using m = await Manager.start();
  const l = await m.list<string>();
  using q = new Queue();
  assert.throws(
    () => q.putSync([l]),
    (e: Error) =>
      e.name === "DataCloneError" &&
      e.message.startsWith("item[0] is a ListProxy: a manager proxy") &&
      /Process args or through a Pipe, or put it on a manager Queue/.test(
        e.message,
      ) && !/shared memory/.test(e.message),
  );
  await using pool = new Pool({ processes: 1, module });
  await bounded(pool.apply(appendItem, [l, "from a pool task"]));
  assert.deepEqual(await l.toArray(), ["from a pool task"]);
});

Deno.test("cyclic and shared values go through manager calls, with proxies inside too", async () => {
  await using m = await Manager.start();
  const d = await m.dict<string, unknown>();
  type Node = { name: string; self?: Node; list?: ListProxy; both?: unknown[] };
  const plain: Node = { name: "plain" };
  plain.self = plain;
  await d.set("plain", plain);
  const back = await d.get("plain") as Node;
  assert.equal(back.self, back);
  const l = await m.list<Node>([plain]); // a factory's arguments too
  assert.equal((await l.get(0)).self?.name, "plain");

  // A proxy inside a cycle, the way back met before the proxy.
  const inner = await m.list([1]);
  const withProxy: Node = { name: "with proxy" };
  withProxy.self = withProxy;
  withProxy.both = [withProxy, inner];
  withProxy.list = inner;
  await d.set("withProxy", withProxy);
  const got = await d.get("withProxy") as Node;
  assert.equal(got.self, got);
  assert.equal(got.both![0], got);
  assert.equal(got.both![1], got.list, "one stored reference, one proxy");
  assert.deepEqual(await got.list!.toArray(), [1]);
  const map = new Map<string, unknown>([["list", inner]]);
  map.set("me", map);
  await d.set("map", map);
  const gotMap = await d.get("map") as Map<string, unknown>;
  assert.equal(gotMap.get("me"), gotMap);
  assert.equal(await (gotMap.get("list") as ListProxy).len(), 1);
  // Big ones (walked with a set of the objects met from the start).
  const big: unknown[] = [];
  for (let i = 0; i < 1000; i++) big.push({ i, list: i % 100 ? null : inner });
  big.push(big);
  await d.set("big", big);
  const gotBig = await d.get("big") as { i: number; list: ListProxy }[];
  assert.equal(gotBig.length, 1001);
  assert.equal(gotBig[1000], gotBig);
  assert.equal(gotBig[900].list, gotBig[0].list, "one proxy for one reference");
  assert.equal(await gotBig[900].list.len(), 1);
  await inner.dispose();
  await got.list!.dispose();
  await (gotMap.get("list") as ListProxy).dispose();
  await gotBig[0].list.dispose();
  assert.equal(await refsOf(m, inner.id), 3, "the three stored references");
});

Deno.test("several children call the same dict at once, each its own fast lane", async () => {
  await using m = await Manager.start();
  const shared = {
    d: await m.dict<string, number>(),
    v: await m.Value("i", 0),
  };
  const procs = [0, 1, 2].map(() =>
    new Process({ target: fillDict, args: [shared, 200], module })
  );
  for (const p of procs) await p.start();
  // This process calls meanwhile too.
  for (let i = 0; i < 200; i++) await shared.d.set(`main${i}`, i);
  for (const p of procs) {
    await p.join(T);
    assert.equal(p.exitCode, 0);
  }
  assert.equal(await shared.d.len(), 400);
  assert.equal(await shared.v.get(), 200);
});

Deno.test("proxies coming back into a process reuse its channel and keep working", async () => {
  await using m = await Manager.start();
  const l = await m.list<number>();
  using ends = Pipe();
  const [mine, theirs] = ends;
  const p = new Process({ target: bounce, args: [theirs, 20], module });
  await p.start();
  mine.send(l);
  for (let i = 0; i < 20; i++) {
    const back = await bounded(mine.recv()) as ListProxy<number>;
    assert.equal(await back.get(i), i);
  }
  mine.send("done");
  await p.join(T);
  assert.equal(p.exitCode, 0);
  assert.equal(await l.len(), 20);
});

Deno.test("Condition proxy: hold, wait with timeout, notify(n), notifyAll, waitFor", async () => {
  await using m = await Manager.start();
  const cond = await m.Condition();
  assert.equal(cond.kind, "Condition");
  // Waiting or notifying without the lock.
  await assert.rejects(
    cond.wait(10),
    (e: Error) =>
      e instanceof ProcessError && /without holding its lock/.test(e.message),
  );
  await assert.rejects(cond.notify(), ProcessError);
  await assert.rejects(cond.notifyAll(), ProcessError);
  {
    await using _ = await cond.hold();
    assert.equal(await cond.wait(10), false, "nobody notifies: times out");
    assert.equal(await cond.wait(0), false);
    await assert.rejects(cond.notify(-1), RangeError);
    await assert.rejects(cond.notify(1.5), RangeError);
    await assert.rejects(cond.wait(-1), RangeError);
    // The default lock is an RLock: it nests, and wait keeps the depth.
    assert.equal(await cond.acquire({ blocking: false }), true);
    assert.equal(await cond.wait(5), false);
    await cond.release();
  }
  await assert.rejects(cond.release(), ProcessError);

  // notify(2) wakes two of three waiters, in the order they came.
  const waits: Promise<boolean>[] = [];
  for (let i = 0; i < 3; i++) {
    assert.equal(await cond.acquire(), true);
    waits.push(cond.wait(T).finally(() => cond.release()));
  }
  let third = false;
  waits[2].then(() => third = true);
  await cond.acquire();
  await cond.notify(2);
  await cond.release();
  assert.deepEqual(await bounded(Promise.all(waits.slice(0, 2))), [
    true,
    true,
  ]);
  // Had the third been woken, it would have taken the lock before us.
  await cond.acquire();
  assert.equal(third, false, "notify(2) woke only two");
  await cond.notifyAll();
  await cond.release();
  assert.equal(await bounded(waits[2]), true);

  // waitFor: checks first, then after each wake-up; the predicate's value.
  const state = await m.Namespace({ n: 0 });
  await using _ = await cond.hold();
  assert.equal(await cond.waitFor(() => "at once"), "at once");
  assert.equal(await cond.waitFor(() => state.get("n"), 20), 0);
  // A child bumps n three times, each under the lock (which it can only
  // take while we wait), each with a notifyAll.
  const bumper = new Process({
    target: bumpAndNotify,
    args: [cond, state, 3],
    module,
  });
  await bumper.start();
  assert.equal(
    await bounded(cond.waitFor(async () => await state.get("n") === 3, T)),
    true,
  );
  await bumper.join(T);
  assert.equal(bumper.exitCode, 0);
  await cond.release();
  await cond.acquire();
  await assert.rejects(cond.waitFor("x" as never), /must be a function/);
  await assert.rejects(cond.waitFor(() => 1, -5), RangeError);
});

Deno.test("Condition: tasks of one process share an RLock's ownership; over a Lock they wait apart (as documented)", async () => {
  await using m = await Manager.start();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const inside = async (cond: ConditionProxy, log: string[], name: string) => {
    await using _ = await cond.hold({ timeout: T });
    log.push(`${name} in`);
    await sleep(20);
    log.push(`${name} out`);
  };
  const shared: string[] = [];
  const rlocked = await m.Condition();
  await bounded(Promise.all([
    inside(rlocked, shared, "a"),
    inside(rlocked, shared, "b"),
  ]));
  assert.deepEqual(shared, ["a in", "b in", "a out", "b out"], "re-entered");

  const cond = await m.Condition(await m.Lock());
  const apart: string[] = [];
  await bounded(Promise.all([
    inside(cond, apart, "a"),
    inside(cond, apart, "b"),
  ]));
  assert.deepEqual(apart, ["a in", "a out", "b in", "b out"], "one at a time");
  // Two tasks wait on it, a third notifies them: all as across processes.
  const items = await m.list<number>();
  let checks = 0;
  const consumer = async (n: number) => {
    await using _ = await cond.hold({ timeout: T });
    return await cond.waitFor(async () => {
      checks++;
      return await items.len() >= n;
    }, T);
  };
  const waits = [consumer(1), consumer(2)];
  // Each checked once, holding the lock: this hold waits for both to park.
  await eventually(
    () => Promise.resolve(checks >= 2),
    "both consumers checked",
  );
  {
    await using _ = await cond.hold({ timeout: T });
    await items.append(1);
    await items.append(2);
    await cond.notifyAll();
  }
  assert.deepEqual(await bounded(Promise.all(waits)), [true, true]);
});

Deno.test("Condition over a manager Lock shares it; bad locks are refused", async () => {
  await using m = await Manager.start();
  const lock = await m.Lock();
  const cond = await m.Condition(lock);
  assert.equal(await cond.acquire(), true);
  assert.equal(await lock.locked(), true);
  const waiting = cond.wait(T);
  // wait released the lock: it can be taken meanwhile.
  assert.equal(await lock.acquire({ timeout: T }), true);
  await cond.notify();
  await lock.release();
  assert.equal(await bounded(waiting), true);
  assert.equal(await lock.locked(), true, "wait holds the lock again");
  await cond.release();
  assert.equal(await lock.locked(), false);

  assert.throws(() => m.Condition(m as never), /manager Lock or RLock/);
  assert.throws(
    () => m.Condition(m.Semaphore as never),
    /manager Lock or RLock proxy/,
  );
  const sem = await m.Semaphore(2);
  assert.throws(() => m.Condition(sem), /got a Semaphore proxy/);
  await using other = await Manager.start();
  const foreign = await other.Lock();
  assert.throws(() => m.Condition(foreign), /another manager/);
  // An RLock works too.
  const rcond = await m.Condition(await m.RLock());
  await using _ = await rcond.hold();
  assert.equal(await rcond.wait(1), false);
});

Deno.test("Condition across children: waitFor in one, notifyAll from another; a dead holder releases it", async () => {
  await using m = await Manager.start();
  const cond = await m.Condition();
  const state = await m.Namespace({ ready: false });
  const out = await m.list();
  const waiters = [0, 1].map(() =>
    new Process({ target: awaitReady, args: [cond, state, out], module })
  );
  for (const p of waiters) await p.start();
  const notifier = new Process({
    target: announceReady,
    args: [cond, state],
    module,
  });
  await notifier.start();
  for (const p of [...waiters, notifier]) {
    await p.join(T);
    assert.equal(p.exitCode, 0);
  }
  assert.deepEqual(await out.toArray(), ["ready", "ready"]);

  await assertReleasedOnDeath(m, cond, holdConditionAndDie);
});

Deno.test("Barrier proxy: arrival indices, across children, nWaiting, parties", async () => {
  await using m = await Manager.start();
  const b = await m.Barrier(3);
  assert.equal(await b.parties(), 3);
  assert.equal(await b.nWaiting(), 0);
  assert.equal(await b.broken(), false);
  const out = await m.list<number>();
  const procs = [0, 1].map(() =>
    new Process({ target: barrierParty, args: [b, out], module })
  );
  for (const p of procs) await p.start();
  const mine = await bounded(b.wait(T));
  for (const p of procs) {
    await p.join(T);
    assert.equal(p.exitCode, 0);
  }
  assert.deepEqual([mine, ...await out.toArray()].sort(), [0, 1, 2]);
  // It is reusable, and the last to arrive gets parties - 1.
  const first = b.wait(T);
  const second = b.wait(T);
  assert.equal(await b.nWaiting(), 2);
  assert.equal(await b.wait(T), 2);
  assert.deepEqual(await bounded(Promise.all([first, second])), [0, 1]);
  // One party: no wait at all.
  const solo = await m.Barrier(1);
  assert.equal(await solo.wait(), 0);
});

Deno.test("Barrier proxy broken by abort, by a timeout, by reset; bad input", async () => {
  await using m = await Manager.start();
  const b = await m.Barrier(2);
  const pending = assert.rejects(
    bounded(b.wait(T)),
    (e: Error) => e instanceof BrokenBarrierError && /aborted/.test(e.message),
  );
  assert.equal(await b.nWaiting(), 1);
  await b.abort();
  await pending;
  assert.equal(await b.broken(), true);
  await assert.rejects(b.wait(T), BrokenBarrierError);
  await b.reset();
  assert.equal(await b.broken(), false);

  // A wait whose timeout runs out breaks the barrier for everyone.
  const b3 = await m.Barrier(3);
  const other = assert.rejects(bounded(b3.wait(T)), BrokenBarrierError);
  await assert.rejects(b3.wait(5), /timed out after 5 ms/);
  await other;
  assert.equal(await b3.broken(), true);
  // The barrier's default timeout.
  const timed = await m.Barrier(2, { timeout: 5 });
  await assert.rejects(timed.wait(), BrokenBarrierError);
  assert.equal(await timed.broken(), true);

  // reset() while a wait is parked: it rejects, the barrier stays usable.
  const parked = assert.rejects(bounded(b.wait(T)), /was reset/);
  assert.equal(await b.nWaiting(), 1);
  await b.reset();
  await parked;
  assert.equal(await b.broken(), false);
  const pair = await bounded(Promise.all([b.wait(T), b.wait(T)]));
  assert.deepEqual(pair, [0, 1]);

  await assert.rejects(m.Barrier(0), /positive integer, got 0/);
  await assert.rejects(m.Barrier(1.5), RangeError);
  await assert.rejects(m.Barrier(2, { timeout: -1 }), RangeError);
  assert.throws(
    () => m.Barrier(2, { action: () => {} } as never),
    /takes no action/,
  );
  await assert.rejects(b.wait(-1), RangeError);
});

Deno.test("Barrier: a party whose process ended no longer counts", async () => {
  await using m = await Manager.start();
  const b = await m.Barrier(2);
  const parked = await m.Event();
  const p = new Process({
    target: waitBarrierAndDie,
    args: [b, parked],
    module,
  });
  await p.start();
  assert.equal(await parked.wait(T), true);
  assert.equal(await b.nWaiting(), 1);
  await p.join(T);
  assert.equal(p.exitCode, 4);
  // The server notices the ended process (its channel's holder) soon.
  const start = Date.now();
  while (await b.nWaiting() !== 0) {
    assert.ok(Date.now() - start < T, "the dead party was never dropped");
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(
    await bounded(Promise.all([b.wait(T), b.wait(T)])),
    [0, 1],
  );
});

Deno.test("Array proxy: get/set/len/toArray/slice, typecodes, conversions, bad input", async () => {
  await using m = await Manager.start();
  const arr = await m.Array("i", [1, 2, 3, 4]);
  assert.equal(arr.kind, "Array");
  assert.equal(await arr.len(), 4);
  assert.equal(await arr.get(0), 1);
  assert.equal(await arr.get(-1), 4);
  await arr.set(1, 20);
  assert.deepEqual(await arr.toArray(), [1, 20, 3, 4]);
  assert.deepEqual(await arr.slice(1, -1), [20, 3]);
  assert.deepEqual(await arr.slice(), [1, 20, 3, 4]);
  assert.deepEqual(await arr.slice(-2), [3, 4]);
  assert.equal(await arr.typecode(), "i");
  // Stored as the typed array of the typecode stores it.
  await arr.set(0, 2 ** 31);
  assert.equal(await arr.get(0), -(2 ** 31));
  await arr.set(0, 7.9);
  assert.equal(await arr.get(0), 7);
  const bytes = await m.Array("B", 3);
  assert.deepEqual(await bytes.toArray(), [0, 0, 0]);
  await bytes.set(0, 257);
  assert.equal(await bytes.get(0), 1);
  const f = await m.Array("f", [0.1]);
  assert.equal(await f.get(0), Math.fround(0.1));
  const big = await m.Array<bigint>("q", [1n, 2]);
  assert.deepEqual(await big.toArray(), [1n, 2n]);
  await big.set(0, 5);
  assert.equal(await big.get(0), 5n);
  await assert.rejects(big.set(0, 1.5 as never), /integers/);
  const chars = await m.Array<string>("u", "abc");
  assert.deepEqual(await chars.toArray(), ["a", "b", "c"]);
  await chars.set(0, "z");
  await assert.rejects(chars.set(0, "zz"), /one-character strings/);
  assert.equal(await (await m.Array("d", new Set([1.5]))).get(0), 1.5);
  assert.equal(await (await m.Array("h", new Int16Array([9]))).get(0), 9);

  // Bad input, each named.
  await assert.rejects(arr.get(4), (e: Error) =>
    e instanceof RangeError &&
    /Array index 4 is out of range for an array of length 4/.test(e.message));
  await assert.rejects(arr.set(-5, 0), RangeError);
  await assert.rejects(arr.get(1.5), /must be an integer/);
  await assert.rejects(
    arr.set(0, "1" as never),
    (e: Error) =>
      e instanceof TypeError && /typecode 'i' holds numbers/.test(e.message),
  );
  assert.throws(() => m.Array("z", 3), /unknown Array typecode "z".*b B h/);
  assert.throws(() => m.Array("c", 3), /use 'B' for bytes/);
  await assert.rejects(m.Array("i", -1), /non-negative integer/);
  await assert.rejects(m.Array("i", 2.5), RangeError);
  await assert.rejects(m.Array("i", ["x"] as never), TypeError);
  await assert.rejects(m.Array("i", { n: 1 } as never), TypeError);
  assert.deepEqual(
    await (await m.Array("i", { length: 2, 0: 5, 1: 6 })).toArray(),
    [5, 6],
  );
  // Still serves.
  assert.equal(await arr.len(), 4);
});

Deno.test("Array proxy across a child", async () => {
  await using m = await Manager.start();
  const arr = await m.Array("d", 5);
  await run(squareArray, [arr]);
  assert.deepEqual(await arr.toArray(), [0, 1, 4, 9, 32]);
});

Deno.test("Condition, Barrier, Array after shutdown: EOFError, pending waits too", async () => {
  const m = await Manager.start();
  const cond = await m.Condition();
  const b = await m.Barrier(2);
  const arr = await m.Array("i", 1);
  await cond.acquire();
  const waiting = assert.rejects(bounded(cond.wait()), EOFError);
  const parked = assert.rejects(bounded(b.wait()), EOFError);
  assert.equal(await b.nWaiting(), 1);
  await m.shutdown();
  await waiting;
  await parked;
  await assert.rejects(bounded(arr.get(0)), EOFError);
  await assert.rejects(bounded(cond.notify()), EOFError);
  await assert.rejects(m.Condition(), EOFError);
  await assert.rejects(m.Barrier(2), EOFError);
  await assert.rejects(m.Array("i", 1), EOFError);
});

/** Polls `check` until it is true, or fails after T ms naming `what`. */
async function eventually(check: () => Promise<boolean>, what: string) {
  const start = Date.now();
  while (!await check()) {
    assert.ok(Date.now() - start < T, `${what}: not within ${T} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function refsOf(m: Manager, id: number): Promise<number | undefined> {
  return (await m.debugInfo()).find((o) => o.id === id)?.refs;
}

Deno.test("refcount: an object whose last proxy is disposed of is deleted; its proxy then refuses", async () => {
  await using m = await Manager.start();
  const l = await m.list([1]);
  const d = await m.dict();
  assert.deepEqual(await m.debugInfo(), [
    { id: l.id, kind: "list", refs: 1 },
    { id: d.id, kind: "dict", refs: 1 },
  ]);
  assert.equal(l.disposed, false);
  await l.dispose();
  assert.equal(l.disposed, true);
  assert.equal(await m.numberOfObjects(), 1);
  await l.dispose(); // twice: nothing
  await assert.rejects(
    l.len(),
    (e: Error) =>
      e instanceof ReferenceError &&
      new RegExp(`list proxy \\(object ${l.id}\\) was disposed of`).test(
        e.message,
      ),
  );
  await assert.rejects(d.set("x", l), /a proxy cannot be stored/);
  assert.throws(() => m.register("x", l), ReferenceError);
  assert.throws(
    () => new Process({ target: appendItem, args: [l, 1], module }).start(),
    /a proxy cannot be sent/,
  );

  // using / await using dispose at the end of the block.
  {
    using _q = await m.Queue();
    await using _e = await m.Event();
    assert.equal(await m.numberOfObjects(), 3);
  }
  assert.equal(await m.numberOfObjects(), 1);

  // Several proxies of one object in a process: it goes with the last.
  await m.register("d", d);
  const again = await m.get<DictProxy>("d");
  assert.equal(await refsOf(m, d.id), 3); // d, again, the name
  await d.dispose();
  await again.set("still", "here");
  assert.equal(await refsOf(m, d.id), 2);
  await again.dispose();
  assert.equal(await refsOf(m, d.id), 1, "the name keeps it");
});

Deno.test("refcount: a registered object outlives its creator's proxies; re-registering drops the old one", async () => {
  await using m = await Manager.start();
  const first = await m.dict({ v: 1 });
  const id = first.id;
  await m.register("config", first);
  await first.dispose();
  const got = await m.get<DictProxy<string, number>>("config");
  assert.equal(got.id, id);
  assert.equal(await got.get("v"), 1);
  await got.dispose();
  assert.equal(await refsOf(m, id), 1);
  const second = await m.dict({ v: 2 });
  await m.register("config", second);
  assert.equal(await refsOf(m, id), undefined, "the old object went");
  await second.dispose();
  assert.equal(
    await (await m.get<DictProxy<string, number>>("config")).get("v"),
    2,
  );
});

Deno.test("refcount: a proxy sent to a child keeps its object though the sender disposes of it at once", async () => {
  await using m = await Manager.start();
  const l = await m.list(["from parent"]);
  const id = l.id;
  const go = await m.Event();
  const out = await m.list();
  const p = new Process({ target: appendWhenSet, args: [l, go, out], module });
  await p.start();
  // Disposed before the child even took its reference: the lent one holds.
  await l.dispose();
  assert.notEqual(await refsOf(m, id), undefined);
  await go.set();
  await p.join(T);
  assert.equal(p.exitCode, 0);
  assert.deepEqual(await out.toArray(), [["from parent", "from child"]]);
  // The child ended: its reference went with it, and the list too.
  await eventually(
    async () => await refsOf(m, id) === undefined,
    "the ended child's reference was dropped",
  );
});

Deno.test("refcount: a proxy sent by a process that ended before it was received keeps its object", async () => {
  await using m = await Manager.start();
  const l = await m.list();
  const id = l.id;
  using ends = Pipe();
  const [a, b] = ends;
  const p = new Process({ target: sendBackAndEnd, args: [l, b], module });
  await p.start();
  await l.dispose(); // the child's is the only proxy left
  await p.join(T);
  assert.equal(p.exitCode, 0);
  // The child's reference (held by its channel) goes once the server sees
  // its process ended; the one lent for the proxy in the pipe stays.
  await eventually(
    async () => await refsOf(m, id) !== 2,
    "the ended child's channel was dropped",
  );
  assert.equal(
    await refsOf(m, id),
    1,
    "the lent reference outlived its lender",
  );
  const got = await bounded(a.recv()) as ListProxy;
  assert.deepEqual(await got.toArray(), ["from child"]);
  assert.equal(await refsOf(m, id), 1, "the receiver's (the lent one went)");
  await got.dispose();
  assert.equal(await refsOf(m, id), undefined);
});

Deno.test("refcount: a child that dies holding the only reference drops it", async () => {
  await using m = await Manager.start();
  const lock = await m.Lock();
  const taken = await m.Event();
  const id = lock.id;
  const p = new Process({
    target: takeLockAndDie,
    args: [lock, taken],
    module,
  });
  await p.start();
  assert.equal(await taken.wait(T), true);
  await lock.dispose();
  assert.equal(await refsOf(m, id), 1, "the child's reference");
  await p.join(T);
  assert.equal(p.exitCode, 3);
  await eventually(
    async () => await refsOf(m, id) === undefined,
    "the dead child's reference was dropped",
  );
});

Deno.test("refcount: proxies stored in other objects are counted while stored", async () => {
  await using m = await Manager.start();
  const d = await m.dict<string, ListProxy>();
  const l = await m.list([1]);
  const id = l.id;
  await d.set("inner", l);
  await l.dispose();
  assert.equal(await refsOf(m, id), 1, "the dict's stored reference");
  const back = (await d.get("inner"))!;
  assert.equal(back.id, id);
  await back.append(2);
  assert.equal(await refsOf(m, id), 2, "the dict's and back's");
  // By value: the stored reference is found by the object it names.
  const holder = await m.list<ListProxy>([back]);
  assert.equal(await holder.index(back), 0);
  assert.equal(await holder.count(back), 1);
  await holder.remove(back);
  assert.equal(await holder.len(), 0);
  // A factory's initial items hold references too.
  const ns = await m.Namespace({ list: back });
  await back.dispose();
  const viaNs = await ns.get<ListProxy<number>>("list");
  assert.deepEqual(await viaNs.toArray(), [1, 2]);
  // A proxy put on a queue crosses to a child through it.
  const q = await m.Queue<ListProxy>();
  await q.put(viaNs);
  await viaNs.dispose();
  await run(appendFromQueue, [q]);
  const last = (await d.get("inner"))!;
  assert.deepEqual(await last.toArray(), [1, 2, "via queue"]);
});

Deno.test("refcount: a call in progress holds its object; dispose() does not wait for it", async () => {
  await using m = await Manager.start();
  const q = await m.Queue<number>();
  await m.register("q", q);
  const other = await m.get<import("../mod.ts").QueueProxy<number>>("q");
  const got = q.get(); // parks: the queue is empty
  // Resolves while the get is still parked (it used to wait for it).
  await bounded(q.dispose(), 5_000, "dispose() of a proxy with a parked get");
  assert.equal(q.disposed, true);
  await assert.rejects(q.qsize(), ReferenceError);
  assert.equal(await refsOf(m, q.id), 3, "the parked call, other, the name");
  await other.put(5);
  assert.equal(await bounded(got), 5, "the parked call went on");
  assert.equal(await refsOf(m, q.id), 2);

  // Python's `del q` with a get abandoned by a timeout: the block is left.
  let abandoned: Promise<unknown> | undefined;
  let id = 0;
  const leave = async () => {
    await using q2 = await m.Queue<number>();
    id = q2.id;
    abandoned = q2.get();
    abandoned.catch(() => {}); // rejected with EOFError at shutdown
    const timeout = new Promise((r) => setTimeout(() => r("timeout"), 20));
    assert.equal(await Promise.race([abandoned, timeout]), "timeout");
  };
  await bounded(leave(), 5_000, "leaving an `await using` block");
  assert.equal(await refsOf(m, id), 1, "the parked get's");
});

Deno.test("refcount: objects of proxies garbage-collected (no dispose) are deleted (--expose-gc)", async () => {
  const out = await runProgram(
    new URL("./fixtures/manager_gc.ts", import.meta.url),
    ["--v8-flags=--expose-gc"],
  );
  assert.equal(out.code, 0, out.stderr);
  assert.equal(
    out.stdout,
    "before collection: dict:1 list:2 Queue:1 Maths:1 3\n" +
      "after collection: dict:1 list:1\n" +
      "after delete: dict:1\n",
  );
});

Deno.test("refcount: a proxy in a message that could not be sent lends nothing", async () => {
  await using m = await Manager.start();
  const l = await m.list([1]);
  assert.equal(await refsOf(m, l.id), 1);
  const [a, b] = Pipe();
  try {
    // The proxy is reduced (and its reference lent) before the function
    // inside the same message is found uncloneable.
    assert.throws(() => a.send([l, () => 1]), TypeError);
    await eventually(
      async () => await refsOf(m, l.id) === 1,
      "pipe: lend undone",
    );
    assert.throws(
      () =>
        new Process({ target: appendItem, args: [l, () => 1] as never, module })
          .start(),
      TypeError,
    );
    await eventually(
      async () => await refsOf(m, l.id) === 1,
      "start: lend undone",
    );
    // Reducing itself fails (a disposed proxy after a live one).
    const gone = await m.list();
    await gone.dispose();
    assert.throws(() => a.send([l, gone]), ReferenceError);
    await eventually(
      async () => await refsOf(m, l.id) === 1,
      "reduce: lend undone",
    );
    assert.deepEqual(await l.toArray(), [1]);
  } finally {
    a.close();
    b.close();
  }
});

// ------------------------------------------------ customized managers

/** An error of class `cls` whose message matches `re`. */
function named(cls: abstract new (...a: never[]) => Error, re: RegExp) {
  return (e: unknown) =>
    e instanceof cls && re.test((e as Error).message) ||
    assert.fail(`expected a ${cls.name} matching ${re}, got ${e}`);
}

const classes = new URL("./fixtures/manager_classes.ts", import.meta.url);
// Registered for every manager this file starts after it (as Python's
// BaseManager.register, before start()); the server imports the fixture.
Manager.register("Counter", Counter, { module: classes });
Manager.register("LoudCounter", LoudCounter, { module: classes });

Deno.test("create(Cls): a user's exported class lives in the server; its methods resolve there", async () => {
  await using m = await Manager.start();
  // Created where Maths is exported (the calling module).
  const maths = await bounded(makeMaths(m));
  assert.ok(maths instanceof BaseProxy);
  assert.equal(maths.kind, "Maths");
  assert.equal(await maths.add(4, 3), 7);
  assert.equal(await maths.mul(6, 7), 42);
  // @ts-expect-error: add takes numbers (the proxy's type is the class's)
  assert.equal(await maths.add(1, "x"), "1x");
  // Registered (with its module): create by class or by typeid.
  const c = await bounded(m.create(Counter, 5));
  assert.equal(c.kind, "Counter");
  assert.equal(await c.incr(2), 7);
  const byName = await bounded(m.create<Counter>("Counter", 100));
  assert.equal(await byName.incr(), 101);
  // Async methods are awaited in the server; a subclass has its base's methods.
  assert.equal(await c.later(5), 7);
  const loud = await bounded(m.create(LoudCounter, 1));
  assert.equal(await loud.incr(), 2);
  assert.equal(await loud.shout(), "COUNTER!");
  // What a method or constructor throws comes back as its class.
  await assert.rejects(
    () => c.fail(),
    named(RangeError, /counter at 7 refuses/),
  );
  await assert.rejects(
    () => m.create(Counter, "x" as never),
    named(RangeError, /Counter\(start\)/),
  );
  // callMethod reaches any public method by name.
  assert.equal(await c.callMethod("incr", 3), 10);
  assert.deepEqual(
    (await m.debugInfo()).map((o) => o.kind).sort(),
    ["Counter", "Counter", "LoudCounter", "Maths"],
  );
});

Deno.test("a local manager refuses a URL or Headers in a call or a result, as a queue does (structured clone would make it {})", async () => {
  await using m = await Manager.start();
  const d = await bounded(m.dict<string, unknown>());
  await assert.rejects(
    () => d.set("u", new URL("http://x/y")),
    named(TypeError, /args\[1\] is a URL/),
  );
  await assert.rejects(
    () => d.set("h", new Headers({ a: "b" })),
    named(TypeError, /args\[1\] is a Headers/),
  );
  assert.equal(await bounded(d.get("u")), undefined);
  const loud = await bounded(m.create(LoudCounter, 1));
  await assert.rejects(
    () => loud.link("http://x/"),
    named(TypeError, /the result cannot be sent to the proxy: result is a URL/),
  );
  assert.equal(await bounded(loud.incr()), 2); // the proxy goes on
});

Deno.test("create(Cls): a user's error class thrown in the server comes back as that class, with its fields", async () => {
  await using m = await Manager.start();
  const c = await bounded(m.create(Counter, 3));
  const e = await bounded(c.failMine().then(() => null, (x) => x));
  assert.ok(e instanceof CounterError, String(e));
  assert.equal(e.at, 3);
  assert.equal(e.describe(), "CounterError@3: counter at 3 refuses");
});

Deno.test("create(Cls): bad input fails by name, never hangs", async () => {
  await using m = await Manager.start();
  // Maths is imported here, not exported from this module.
  const err = await bounded(
    m.create(Maths).then(() => null, (e) => e),
  ) as ClassNotExportedError;
  assert.ok(err instanceof ClassNotExportedError, String(err));
  assert.equal(err.className, "Maths");
  assert.match(
    err.message,
    /class 'Maths' is not exported from .*managers_test\.ts/,
  );
  assert.match(
    err.message,
    /export \{ Maths \} from|Manager\.register\("Maths"/,
  );
  class Inline {
    m(): number {
      return 1;
    }
  }
  await assert.rejects(
    () => m.create(Inline),
    named(ClassNotExportedError, /class 'Inline' is not exported/),
  );
  assert.throws(
    () => m.create(class {}),
    named(ClassNotExportedError, /an anonymous class .*no usable name/),
  );
  // Not a class.
  assert.throws(
    () => m.create(notAClass as never),
    named(TypeError, /expected a class .* arrow function/),
  );
  assert.throws(() => m.create(42 as never), named(TypeError, /got number/));
  // A typeid nobody registered: the error lists what the server makes.
  await assert.rejects(
    () => m.create("Nope"),
    named(
      TypeError,
      /cannot create a 'Nope'.*Counter.*Manager\.register\("Nope", Class\)/,
    ),
  );
  // Methods the class does not have (a field, an accessor, a _name, a typo).
  const c = await bounded(m.create(Counter));
  const loose = c as unknown as Record<string, () => Promise<unknown>>;
  for (const name of ["value", "label", "_hidden", "incrr"]) {
    await assert.rejects(
      () => bounded(loose[name]()),
      (e: Error) =>
        e instanceof TypeError &&
        e.message.includes(
          `class Counter (served as 'Counter') has no method '${name}'`,
        ) &&
        e.message.includes("its methods are: incr, later, fail, reader"),
      name,
    );
  }
  // A result that cannot be sent (a function): an error for that call only.
  await assert.rejects(
    () => bounded(c.reader()),
    named(
      TypeError,
      /result cannot be sent to the proxy: result is a function/,
    ),
  );
  assert.equal(await c.incr(), 1);
  // await and JSON do not take the proxy for a thenable or call the server.
  assert.equal((c as unknown as { then?: unknown }).then, undefined);
  assert.equal(await Promise.resolve(c), c);
  // A built-in kind's name cannot be a typeid; the typeid must be a name.
  assert.throws(
    () => Manager.register("list", Counter),
    named(TypeError, /built-in kind/),
  );
  assert.throws(
    () => Manager.register("", Counter),
    named(TypeError, /typeid/),
  );
  assert.throws(
    () => Manager.register("Arrow", notAClass as never),
    named(TypeError, /expected a class/),
  );
  // After the server ended: EOFError, at once.
  await m.shutdown();
  await assert.rejects(() => bounded(c.incr()), EOFError);
  await assert.rejects(() => m.create(Counter), EOFError);
});

Deno.test("register(typeid, Cls) of a class not exported where it says: start() rejects naming it", async () => {
  class Hidden {}
  Manager.register("Hidden", Hidden);
  try {
    await assert.rejects(
      () => bounded(Manager.start()),
      named(
        ClassNotExportedError,
        /class 'Hidden' is not exported from .*managers_test\.ts/,
      ),
    );
  } finally {
    // Registering the typeid again replaces it: later starts can go on.
    Manager.register("Hidden", Maths, { module: classes });
  }
  await using m = await Manager.start();
  const h = await bounded(m.create<Maths>("Hidden"));
  assert.equal(await h.add(1, 1), 2);
});

Deno.test("Manager.register after start(): that manager's create(typeid) names the typeid and the fix; later managers serve it", async () => {
  await using m = await Manager.start();
  Manager.register("LateMaths", Maths, { module: classes });
  await assert.rejects(
    () => bounded(m.create<Maths>("LateMaths")),
    named(
      TypeError,
      /'LateMaths' was registered after this manager started.*Manager\.register\("LateMaths", \.\.\.\) before Manager\.start\(\)/,
    ),
  );
  await using later = await Manager.start();
  const h = await bounded(later.create<Maths>("LateMaths"));
  assert.equal(await h.add(2, 3), 5);
});

Deno.test("big values through a manager arrive whole: 8 MiB bytes set and got, 16 MiB from a class's method, a big array in a list", async () => {
  await using m = await Manager.start();
  const d = await m.dict<string, Uint8Array>();
  const big = new Uint8Array(8 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
  await bounded(d.set("big", big), 60_000);
  const back = await bounded(d.get("big"), 60_000);
  assert.ok(back instanceof Uint8Array);
  assert.ok(Buffer.from(back!).equals(Buffer.from(big)));
  const maths = await bounded(makeMaths(m));
  const made = await bounded(maths.bytes(16 << 20, 3), 60_000);
  assert.equal(made.length, 16 << 20);
  assert.equal(made[0], 3);
  assert.equal(made[made.length - 1], ((16 << 20) - 1 + 3) & 255);
  const l = await m.list<unknown>();
  const nums = Array.from(
    { length: 200_000 },
    (_, i) => i % 1000 === 0 ? `s${i}` : i / 2,
  );
  await bounded(l.append(nums), 60_000);
  assert.deepEqual(await bounded(l.get(0), 60_000), nums);
});

Deno.test("a custom proxy is counted as the others: children, stored in a list, dispose", async () => {
  await using m = await Manager.start();
  const c = await bounded(m.create(Counter, 0));
  assert.equal(await refsOf(m, c.id), 1);
  // Into two children in their args; each bumps it.
  const procs = [0, 1].map(() =>
    new Process({ target: bumpCounter, args: [c, 10], module: classes })
  );
  for (const p of procs) await p.start();
  for (const p of procs) {
    await p.join(T);
    assert.equal(p.exitCode, 0);
  }
  assert.equal(await c.incr(0), 20);
  await eventually(
    async () => await refsOf(m, c.id) === 1,
    "children's refs go",
  );
  // Stored in a list, it comes back as a proxy of the same object.
  const l = await m.list<AutoProxy<Counter>>();
  await l.append(c);
  const back = await l.get(0);
  assert.notEqual(back, c);
  assert.equal(back.id, c.id);
  assert.equal(back.kind, "Counter");
  assert.equal(await back.incr(), 21);
  // The proxies go; the copy stored in the list still holds it.
  await back.dispose();
  await c.dispose();
  assert.equal(await refsOf(m, c.id), 1);
  await assert.rejects(() => c.incr(), named(ReferenceError, /disposed of/));
});

Deno.test("proxies print what they are and where, without asking the server", async () => {
  const m = await Manager.start();
  const l = await m.list([1]);
  const d = await m.dict();
  const ns = await m.Namespace();
  const v = await m.Value("i", 1);
  const q = await m.Queue();
  const rl = await m.RLock();
  const ev = await m.Event();
  const arr = await m.Array("i", 2);
  const cond = await m.Condition();
  const bar = await m.Barrier(2);
  const c = await m.create(Counter);
  await m.shutdown(); // nothing below may need it
  assert.equal(Deno.inspect(l), `ListProxy { id: ${l.id}, server: "local" }`);
  assert.equal(String(l), `ListProxy { id: ${l.id}, server: "local" }`);
  assert.equal(`${d}`, `DictProxy { id: ${d.id}, server: "local" }`);
  assert.equal(
    Deno.inspect(rl),
    `LockProxy { kind: "RLock", id: ${rl.id}, server: "local" }`,
  );
  assert.equal(
    Deno.inspect(c),
    `AutoProxy { kind: "Counter", id: ${c.id}, server: "local" }`,
  );
  assert.equal(
    String(c),
    `AutoProxy { kind: "Counter", id: ${c.id}, server: "local" }`,
  );
  const names = [
    [ns, "NamespaceProxy"],
    [v, "ValueProxy"],
    [q, "QueueProxy"],
    [ev, "EventProxy"],
    [arr, "ArrayProxy"],
    [cond, "ConditionProxy"],
    [bar, "BarrierProxy"],
  ] as const;
  for (const [p, name] of names) {
    assert.equal(Deno.inspect(p), `${name} { id: ${p.id}, server: "local" }`);
  }
  // Inside other values too.
  assert.equal(
    Deno.inspect({ l }),
    `{ l: ListProxy { id: ${l.id}, server: "local" } }`,
  );
  await l.dispose();
  assert.equal(
    Deno.inspect(l),
    `ListProxy { id: ${l.id}, server: "local", disposed: true }`,
  );
});

Deno.test("Manager.register + start() in a module without an import.meta.main guard: the same ProcessError at once, not the server's start timeout", async () => {
  const out = await runProgram(
    new URL("./fixtures/manager_no_guard_register.ts", import.meta.url),
  );
  assert.equal(out.code, 0, out.stderr);
  assert.match(
    out.stdout,
    /^ProcessError .*was still importing its module.*import\.meta\.main/,
  );
  assert.doesNotMatch(out.stdout, /slow/);
});

Deno.test("create(Cls) from a module without an import.meta.main guard: a ProcessError, not a manager in every server", async () => {
  const out = await runProgram(
    new URL("./fixtures/manager_no_guard.ts", import.meta.url),
  );
  assert.equal(out.code, 0, out.stderr);
  assert.match(
    out.stdout,
    /^ProcessError .*started while a child process was still importing its module.*import\.meta\.main/,
  );
});
