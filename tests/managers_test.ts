import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import {
  BaseProxy,
  type DictProxy,
  Empty,
  EOFError,
  Full,
  type ListProxy,
  Manager,
  Pipe,
  Process,
  ProcessError,
  TimeoutError,
} from "../mod.ts";
import {
  appendItem,
  bounce,
  fillDict,
  forwardToGrandchild,
  increment,
  ownManager,
  producer,
  putLater,
  takeLockAndDie,
  waitThenSet,
} from "./fixtures/manager_targets.ts";

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

Deno.test("a lock held by a process that died is released", async () => {
  await using m = await Manager.start();
  const lock = await m.Lock();
  const taken = await m.Event();
  const p = new Process({
    target: takeLockAndDie,
    args: [lock, taken],
    module,
  });
  await p.start();
  assert.equal(await taken.wait(T), true);
  await p.join(T);
  assert.equal(p.exitCode, 3);
  assert.equal(await lock.acquire({ timeout: T }), true);
  await lock.release();
});

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
