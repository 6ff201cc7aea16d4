// RedisQueue and RedisJoinableQueue on a real redis-server (started per test).
import assert from "node:assert/strict";
import {
  AuthenticationError,
  Empty,
  Full,
  ProcessError,
  TimeoutError,
} from "../mod.ts";
import {
  RedisConnectionError,
  RedisJoinableQueue,
  RedisQueue,
} from "../redis.ts";
import { freePort, startRedis } from "./_redis_server.ts";
import { runProgram } from "./_run_task.ts";
import { bounded } from "./_bounded.ts";

const PROGRAMS = new URL("./fixtures/redis_queue_programs.ts", import.meta.url);

Deno.test("RedisQueue: put, get, nowait forms, sizes, Empty and Full", async () => {
  await using redis = await startRedis();
  await using q = new RedisQueue<unknown>({
    url: redis.url,
    name: "basic",
    maxsize: 2,
  });
  assert.equal(await q.empty(), true);
  const value = { n: 1, m: new Map([[1, "a"]]), d: new Date(5), b: 10n };
  await q.put(value);
  await q.putNowait([1, 2, 3]);
  assert.equal(await q.qsize(), 2);
  assert.equal(await q.full(), true);
  await assert.rejects(q.putNowait(3), Full);
  await assert.rejects(q.put(3, { timeout: 30 }), Full);
  assert.deepEqual(await q.get(), value);
  assert.deepEqual(await q.getNowait(), [1, 2, 3]);
  await assert.rejects(q.getNowait(), Empty);
  const t0 = performance.now();
  await assert.rejects(q.get({ timeout: 100 }), Empty);
  assert.ok(performance.now() - t0 >= 90);
  // A value the codec cannot carry: a named error, nothing sent.
  await assert.rejects(
    q.put({ f: () => 1 } as unknown),
    (e: Error) => e.name === "DataCloneError" && /item\.f/.test(e.message),
  );
  assert.equal(await q.qsize(), 0);
  // It prints what it is without asking Redis (and never its URL's password).
  assert.equal(
    Deno.inspect(q),
    'RedisQueue { name: "basic", maxsize: 2, closed: false }',
  );
  const j = new RedisJoinableQueue({ url: redis.url, name: "printed" });
  assert.equal(
    String(j),
    'RedisJoinableQueue { name: "printed", maxsize: 0, closed: false }',
  );
  j.close();
  q.close();
  assert.equal(
    String(q),
    'RedisQueue { name: "basic", maxsize: 2, closed: true }',
  );
  await assert.rejects(q.get(), ProcessError);
});

Deno.test("RedisQueue: a get waiting for an item gets the one put later", async () => {
  await using redis = await startRedis();
  await using a = new RedisQueue<string>({ url: redis.url, name: "wait" });
  await using b = new RedisQueue<string>({ url: redis.url, name: "wait" });
  const got = a.get({ timeout: 10_000 });
  const quick = a.get({ timeout: 50 }).catch((e) => e);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(await quick instanceof Empty, "a short get behind a long one");
  await b.put("later");
  assert.equal(await bounded(got), "later");
});

Deno.test("RedisQueue across programs: 2 producers, 2 consumers, nothing lost or duplicated", async () => {
  await using redis = await startRedis();
  const consumers = [1, 2].map(() =>
    runProgram(PROGRAMS, [], ["consume", redis.url, "mpmc"])
  );
  const producers = ["p1", "p2"].map((p) =>
    runProgram(PROGRAMS, [], ["produce", redis.url, "mpmc", p, "150"])
  );
  for (const p of await Promise.all(producers)) {
    assert.equal(p.code, 0, p.stderr);
  }
  await using q = new RedisQueue<string>({ url: redis.url, name: "mpmc" });
  await q.put("stop");
  await q.put("stop");
  const got: string[] = [];
  for (const c of await Promise.all(consumers)) {
    assert.equal(c.code, 0, c.stderr);
    got.push(...JSON.parse(c.stdout) as string[]);
  }
  const want = ["p1", "p2"].flatMap((p) =>
    Array.from({ length: 150 }, (_, i) => `${p}:${i}`)
  );
  assert.deepEqual([...got].sort(), [...want].sort());
  assert.equal(new Set(got).size, got.length);
});

Deno.test("Redis queues left open do not keep a program alive", async () => {
  await using redis = await startRedis();
  const r = await runProgram(PROGRAMS, [], ["forget", redis.url, "forget"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "1 2\n");
});

Deno.test("RedisJoinableQueue: taskDone, join, and Empty/Full as the local queue", async () => {
  await using redis = await startRedis();
  await using q = new RedisJoinableQueue<number>({
    url: redis.url,
    name: "jq",
    maxsize: 2,
  });
  await q.put(1);
  await q.put(2);
  await assert.rejects(q.putNowait(3), Full);
  assert.equal(await q.get(), 1);
  // One waiting, one held: room for one more.
  assert.equal(await q.qsize(), 1);
  await q.putNowait(3);
  await assert.rejects(q.join(50), TimeoutError);
  await q.taskDone();
  assert.equal(await q.get(), 2);
  assert.equal(await q.get(), 3);
  await assert.rejects(q.getNowait(), Empty);
  await q.taskDone();
  await q.taskDone();
  await assert.rejects(q.taskDone(), ProcessError);
  await bounded(q.join(5_000));
});

Deno.test("RedisJoinableQueue: an item whose consumer was killed before taskDone comes back; a live one's does not", async () => {
  await using redis = await startRedis();
  await using q = new RedisJoinableQueue<string>({
    url: redis.url,
    name: "vis",
    visibilityTimeout: 500,
  });
  await q.put("precious");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      PROGRAMS.pathname,
      "take-and-hang",
      redis.url,
      "vis",
      "500",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await bounded(reader.read(), 30_000, "the consumer's item");
  assert.equal(first.value?.trim(), "precious");
  // Alive and heartbeating: the item stays with it past the timeout.
  await new Promise((r) => setTimeout(r, 1_500));
  await assert.rejects(q.getNowait(), Empty);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  assert.equal(await bounded(q.get({ timeout: 10_000 })), "precious");
  await q.taskDone();
  await bounded(q.join(5_000));
});

Deno.test("Redis queues: Redis SIGKILLed and restarted with AOF loses nothing acknowledged", async () => {
  await using redis = await startRedis();
  {
    await using q = new RedisQueue<number>({ url: redis.url, name: "aof" });
    await using jq = new RedisJoinableQueue<number>({
      url: redis.url,
      name: "jaof",
      visibilityTimeout: 300,
    });
    for (let i = 0; i < 200; i++) await q.put(i);
    await jq.put(1);
    await jq.put(2);
    assert.equal(await jq.get(), 1); // held, not done: must survive too
  }
  await redis.kill();
  await redis.restart();
  await using q = new RedisQueue<number>({ url: redis.url, name: "aof" });
  assert.equal(await q.qsize(), 200);
  for (let i = 0; i < 200; i++) assert.equal(await q.getNowait(), i);
  await using jq = new RedisJoinableQueue<number>({
    url: redis.url,
    name: "jaof",
    visibilityTimeout: 300,
  });
  const got = [
    await jq.get({ timeout: 5_000 }),
    await jq.get({ timeout: 5_000 }),
  ];
  assert.deepEqual(got.sort(), [1, 2]);
});

Deno.test("Redis queues: a handle survives a Redis restart between calls", async () => {
  await using redis = await startRedis();
  await using q = new RedisQueue<number>({ url: redis.url, name: "re" });
  await q.put(1);
  await redis.kill();
  const put = q.put(2); // waits for the reconnect
  await redis.restart();
  await bounded(
    put.catch((e) => {
      throw new Error(`the put across a restart failed: ${e}`, { cause: e });
    }),
    20_000,
    "a put across a restart",
  );
  const items = [await q.getNowait(), await q.getNowait()];
  assert.deepEqual(items, [1, 2]);
  await assert.rejects(q.getNowait(), Empty, "nothing duplicated");
});

Deno.test("Redis queues: a wrong password, no password, a refused port, a silent port: named errors in bound", async () => {
  await using redis = await startRedis({ password: "s3cret" });
  const base = `127.0.0.1:${redis.port}`;
  for (
    const [url, cls] of [
      [`redis://:wrong@${base}`, AuthenticationError],
      [`redis://${base}`, AuthenticationError],
      [`redis://127.0.0.1:${freePort()}`, RedisConnectionError],
    ] as const
  ) {
    await using q = new RedisQueue({ url, name: "x", connectTimeout: 2_000 });
    const e = await bounded(q.put(1).catch((e) => e), 5_000, url);
    assert.ok(e instanceof cls, `${url}: ${e}`);
    assert.ok(!String(e.message).includes("wrong"), "the password is hidden");
  }
  // Accepts the connection, never answers.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) conns.push(c);
  })();
  await using q = new RedisJoinableQueue({
    url: `redis://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`,
    name: "x",
    connectTimeout: 500,
  });
  const e = await bounded(q.get().catch((e) => e), 5_000, "silent port");
  assert.ok(e instanceof RedisConnectionError, String(e));
  assert.match(e.message, /500 ms/);
  silent.close();
  await accepting.catch(() => {});
  for (const c of conns) c.close();
  await using ok = new RedisQueue({
    url: `redis://:s3cret@${base}`,
    name: "x",
  });
  await ok.put(1);
  assert.equal(await ok.get(), 1);
  // A database the server does not have: refused by name (ioredis alone
  // went on in database 0); one it has is used.
  await using far = new RedisQueue({
    url: `redis://:s3cret@${base}/99`,
    name: "x",
  });
  const db = await bounded(far.put(1).catch((e) => e), 5_000, "db 99");
  assert.ok(db instanceof RedisConnectionError, String(db));
  assert.match(db.message, /has no database 99/);
  await using query = new RedisQueue({
    url: `redis://:s3cret@${base}?db=99`,
    name: "x",
  });
  const dbq = await bounded(query.put(1).catch((e) => e), 5_000, "?db=99");
  assert.ok(dbq instanceof RedisConnectionError, String(dbq));
  assert.match(dbq.message, /has no database 99/);
  await using three = new RedisQueue({
    url: `redis://:s3cret@${base}/3`,
    name: "x",
  });
  await three.put(3);
  assert.equal(await ok.qsize(), 0, "not in database 0");
  assert.equal(await three.get(), 3);
});

Deno.test("Redis queues: bad options name the value and the fix", () => {
  assert.throws(
    () => new RedisQueue({ url: "http://x", name: "q" }),
    /must start with redis:\/\//,
  );
  assert.throws(
    () => new RedisQueue({ url: "redis://x:6379/abc", name: "q" }),
    /names the database "abc"; a Redis database is a number/,
  );
  assert.throws(
    () => new RedisQueue({ url: "redis://x:6379?db=two", name: "q" }),
    /names the database "two"; a Redis database is a number/,
  );
  assert.throws(
    () => new RedisQueue({ url: "redis://x", name: "" }),
    /name must be a non-empty string/,
  );
  assert.throws(
    () => new RedisQueue({ url: "redis://x", name: "q", maxsize: -1 }),
    /maxsize must be a non-negative integer/,
  );
  assert.throws(
    () =>
      new RedisJoinableQueue({
        url: "redis://x",
        name: "q",
        visibilityTimeout: 0,
      }),
    /visibilityTimeout must be a positive integer/,
  );
});
