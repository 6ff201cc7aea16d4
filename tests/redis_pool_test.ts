// RedisPool with worker programs (worker.ts), on a real redis-server.
import assert from "node:assert/strict";
import { ProcessError, TargetNotExportedError, TimeoutError } from "../mod.ts";
import {
  ModuleNotAllowedError,
  PoisonTaskError,
  RedisConnectionError,
  RedisPool,
} from "../redis.ts";
import {
  add,
  exitMyChild,
  fails,
  killMyWorker,
  markThenWait,
  returnsFunction,
  slowSquare,
  square,
} from "./fixtures/redis_tasks.ts";
import { freePort, startRedis, startWorker } from "./_redis_server.ts";
import { runProgram } from "./_run_task.ts";
import { bounded } from "./_bounded.ts";
import { Link } from "../lib/redis/_client.ts";

const TASKS = new URL("./fixtures/redis_tasks.ts", import.meta.url);
const WORKER = new URL("../worker.ts", import.meta.url);

function notExported(x: number): number {
  return x;
}

async function lines(file: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(file)).split("\n").filter((l) => l);
  } catch {
    return [];
  }
}

/** Asserts the lengths of pool `name`'s dead-letter and task streams. */
async function assertStreams(url: string, name: string, dead: number) {
  const l = await Link.open(url, 5_000);
  try {
    assert.equal(await l.redis.xlen(`mp:pool:${name}:dead`), dead);
    assert.equal(await l.redis.xlen(`mp:pool:${name}:tasks`), 0);
  } finally {
    l.close();
  }
}

/** Runs `f` with the path of a file (in a temporary directory) where tasks note their runs. */
async function withRunsFile(f: (file: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await f(`${dir}/runs`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function until(what: string, f: () => Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (!await f()) {
    assert.ok(Date.now() < end, `${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("RedisPool: Pool's methods on a worker program", async () => {
  await using redis = await startRedis();
  await using _w = await startWorker(redis.url, "methods", { processes: 2 });
  await using pool = new RedisPool({
    url: redis.url,
    name: "methods",
    module: TASKS,
  });
  assert.equal(
    Deno.inspect(pool),
    'RedisPool { name: "methods", state: "RUN" }',
  );
  assert.equal(await pool.apply(square, [7]), 49);
  let called: number | undefined;
  const r = pool.applyAsync(add, [2, 3], { callback: (v) => called = v });
  assert.equal(await r.get(10_000), 5);
  assert.equal(called, 5);
  assert.ok(r.ready() && r.successful());
  const xs = Array.from({ length: 50 }, (_, i) => i);
  assert.deepEqual(await pool.map(square, xs), xs.map((x) => x * x));
  assert.deepEqual(await pool.map(square, xs, 7), xs.map((x) => x * x));
  assert.deepEqual(
    await pool.mapAsync(slowSquare, [1, 2, 3]).get(10_000),
    [1, 4, 9],
  );
  assert.deepEqual(await pool.starmap(add, [[1, 2], [3, 4]]), [3, 7]);
  assert.deepEqual(
    await pool.starmapAsync(add, [[5, 6]], 1).get(10_000),
    [11],
  );
  async function* gen() {
    for (let i = 0; i < 20; i++) yield i;
  }
  const ordered: number[] = [];
  for await (const v of pool.imap(slowSquare, gen(), 3)) ordered.push(v);
  assert.deepEqual(ordered, Array.from({ length: 20 }, (_, i) => i * i));
  const unordered: number[] = [];
  for await (const v of pool.imapUnordered(square, [3, 1, 2])) {
    unordered.push(v);
  }
  assert.deepEqual(unordered.sort(), [1, 4, 9]);
  assert.deepEqual(await pool.map(square, []), []);
  pool.close();
  await assert.rejects(pool.apply(square, [1]), ProcessError);
  await bounded(pool.join());
});

Deno.test("RedisPool: a pool left open, even with a task nobody waits for and no worker, does not keep its program alive", async () => {
  await using redis = await startRedis();
  await using _w = await startWorker(redis.url, "forget");
  const r = await runProgram(
    new URL("./fixtures/redis_queue_programs.ts", import.meta.url),
    [],
    ["forget-pool", redis.url, "forget"],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "9\n");
});

Deno.test("RedisPool: a task that throws is not retried; the caller gets its error", async () => {
  await using redis = await startRedis();
  await using _w = await startWorker(redis.url, "errors", {
    visibilityTimeout: 300,
  });
  await using pool = new RedisPool({
    url: redis.url,
    name: "errors",
    module: TASKS,
  });
  const e = await pool.apply(fails, ["boom"]).catch((e) => e);
  assert.ok(e instanceof RangeError, String(e));
  assert.equal(e.message, "boom");
  assert.match(String(e.stack), /redis_tasks\.ts/);
  // A result the codec cannot carry, a function not exported, an argument
  // the codec cannot carry: named errors, the pool goes on.
  const r = await pool.apply(returnsFunction).catch((e) => e) as Error;
  assert.equal(r.name, "DataCloneError");
  await assert.rejects(pool.apply(notExported, [1]), TargetNotExportedError);
  await assert.rejects(
    pool.apply(square, [(() => 1) as unknown as number]),
    (e: Error) => e.name === "DataCloneError",
  );
  assert.equal(await pool.apply(square, [3]), 9);
  // Nothing left behind to be run again.
  const l = await Link.open(redis.url, 5_000);
  try {
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(await l.redis.xlen("mp:pool:errors:tasks"), 0);
  } finally {
    l.close();
  }
});

Deno.test("RedisPool: a task whose module is outside --allow-module: ModuleNotAllowedError", async () => {
  await using redis = await startRedis();
  await using _w = await startWorker(redis.url, "allow", {
    allow: "https://example.com/tasks/",
  });
  await using pool = new RedisPool({
    url: redis.url,
    name: "allow",
    module: TASKS,
  });
  const e = await pool.apply(square, [2]).catch((e) => e);
  assert.ok(e instanceof ModuleNotAllowedError, String(e));
  assert.match(e.message, /redis_tasks\.ts/);
  assert.match(e.message, /--allow-module/);
});

Deno.test("RedisPool: no worker: get(timeout) is a TimeoutError; terminate leaves nothing in Redis", async () => {
  await using redis = await startRedis();
  const pool = new RedisPool({ url: redis.url, name: "none", module: TASKS });
  const r = pool.applyAsync(square, [2]);
  await assert.rejects(r.get(200), TimeoutError);
  pool.terminate();
  await assert.rejects(r.get(), ProcessError);
  await bounded(pool.join());
  const l = await Link.open(redis.url, 5_000);
  try {
    await until(
      "the task removed",
      async () => await l.redis.xlen("mp:pool:none:tasks") === 0,
    );
    assert.deepEqual(await l.redis.keys("mp:pool:none:results:*"), []);
    assert.deepEqual(await l.redis.keys("mp:pool:none:caller:*"), []);
  } finally {
    l.close();
  }
});

Deno.test("RedisPool: a worker SIGKILLed mid-task: the task runs again elsewhere, its result comes once", async () => {
  await using redis = await startRedis();
  await withRunsFile(async (file) => {
    const a = await startWorker(redis.url, "kill", { visibilityTimeout: 800 });
    await using pool = new RedisPool({
      url: redis.url,
      name: "kill",
      module: TASKS,
    });
    const r = pool.applyAsync(markThenWait, [file, "t1", 1_500]);
    await until("the first run", async () => (await lines(file)).length === 1);
    await a.kill();
    await using _b = await startWorker(redis.url, "kill", {
      visibilityTimeout: 800,
    });
    assert.equal(await r.get(30_000), "done t1");
    const runs = await lines(file);
    assert.equal(runs.length, 2, runs.join("\n"));
    assert.notEqual(runs[0], runs[1], "the second run was another program");
    assert.equal(await pool.apply(square, [4]), 16);
  });
});

Deno.test("RedisPool: a task that kills its worker every time goes to the dead letters: PoisonTaskError", async () => {
  await using redis = await startRedis();
  await withRunsFile(async (file) => {
    await using pool = new RedisPool({
      url: redis.url,
      name: "poison",
      module: TASKS,
      maxTries: 2,
    });
    const r = pool.applyAsync(killMyWorker, [file]);
    // Each worker dies running it; the next takes it over.
    for (let i = 0; i < 5 && !r.ready(); i++) {
      const w = await startWorker(redis.url, "poison", {
        visibilityTimeout: 500,
      });
      await Promise.race([w.ended, r.wait()]);
      await w.kill();
    }
    const e = await r.get(1).catch((e) => e);
    assert.ok(e instanceof PoisonTaskError, String(e));
    assert.equal(e.tries, 2);
    assert.equal((await lines(file)).length, 2);
    await assertStreams(redis.url, "poison", 1);
  });
});

Deno.test("RedisPool: a task that ends its child: the worker lives on; only the task running counts a try, not the others its child had read", async () => {
  await using redis = await startRedis();
  await withRunsFile(async (file) => {
    await using pool = new RedisPool({
      url: redis.url,
      name: "child",
      module: TASKS,
      maxTries: 2,
    });
    // Queued before the worker starts, so that its child reads them in
    // growing batches: the crash comes with unstarted tasks in hand.
    const before = Array.from(
      { length: 40 },
      (_, i) => pool.applyAsync(square, [i]),
    );
    const r = pool.applyAsync(exitMyChild, [file]);
    const r2 = pool.applyAsync(exitMyChild, [file]);
    const after = Array.from(
      { length: 40 },
      (_, i) => pool.applyAsync(square, [i]),
    );
    await using w = await startWorker(redis.url, "child", { processes: 2 });
    for (const [i, a] of [...before, ...after].entries()) {
      assert.equal(await a.get(30_000), (i % 40) ** 2);
    }
    for (const x of [r, r2]) {
      const e = await x.get(30_000).catch((e) => e);
      assert.ok(e instanceof PoisonTaskError, String(e));
      assert.equal(e.tries, 2);
    }
    // Each ran twice: the first one's crashes did not count against the second.
    assert.equal((await lines(file)).length, 4);
    assert.equal(await pool.apply(square, [5]), 25, "the worker lives on");
    assert.match(w.stderr(), /ended its process \(try 1 of 2\)/);
    await assertStreams(redis.url, "child", 2);
  });
});

Deno.test("RedisPool: tasks submitted survive Redis SIGKILLed and restarted (AOF)", async () => {
  await using redis = await startRedis();
  await using pool = new RedisPool({
    url: redis.url,
    name: "aof",
    module: TASKS,
  });
  const r = pool.mapAsync(square, [1, 2, 3, 4], 1);
  const l = await Link.open(redis.url, 5_000);
  try {
    await until(
      "the tasks in Redis",
      async () => await l.redis.xlen("mp:pool:aof:tasks") === 4,
    );
  } finally {
    l.close();
  }
  await redis.kill();
  await redis.restart();
  await using _w = await startWorker(redis.url, "aof");
  assert.deepEqual(await r.get(30_000), [1, 4, 9, 16]);
});

Deno.test("RedisPool and worker.ts: unreachable, wrong password, missing flags: named errors in bound", async () => {
  await using redis = await startRedis({ password: "pw" });
  const wrong = `redis://:nope@127.0.0.1:${redis.port}`;
  const refused = `redis://127.0.0.1:${freePort()}`;
  for (
    const [url, name] of [[wrong, "AuthenticationError"], [
      refused,
      "RedisConnectionError",
    ]]
  ) {
    await using pool = new RedisPool({
      url,
      name: "x",
      module: TASKS,
      connectTimeout: 2_000,
    });
    const e = await bounded(pool.apply(square, [1]).catch((e) => e), 10_000);
    assert.equal(e.name, name, String(e));
    const w = await runProgram(WORKER, [], [
      "--url",
      url,
      "--pool",
      "x",
      "--allow-module",
      "file:///",
      "--connect-timeout",
      "2000",
    ]);
    assert.equal(w.code, 1);
    assert.match(w.stderr, new RegExp(name));
    assert.ok(!w.stderr.includes("nope"), "the password is hidden");
  }
  assert.ok(
    new RedisConnectionError("x") instanceof Error,
  );
  const w = await runProgram(WORKER, [], ["--url", redis.url, "--pool", "x"]);
  assert.equal(w.code, 2);
  assert.match(w.stderr, /--allow-module is required/);
});
