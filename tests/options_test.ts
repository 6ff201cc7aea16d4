// A misspelt option used to be ignored: new Pool({ procs: 2 }) ran with the
// default, new Process({ targt: f }) started and ran nothing.
import assert from "node:assert/strict";
import {
  Barrier,
  Condition,
  JoinableQueue,
  Manager,
  Pipe,
  Pool,
  Process,
  Queue,
  SharedArray,
  SimpleQueue,
  Value,
} from "../mod.ts";
import { bounded } from "./_bounded.ts";

function unknownKey(key: string, near: string | undefined, what: string) {
  return (e: unknown) =>
    e instanceof TypeError &&
    e.message.includes(`unknown ${what} ${JSON.stringify(key)}`) &&
    (near === undefined || e.message.includes(`(did you mean ${near}?)`)) &&
    e.message.includes("the options are ");
}

export function work(): void {}

Deno.test("options: an unknown key is a TypeError naming it, the closest valid one and the valid ones", () => {
  assert.throws(
    () => new Pool({ procs: 2 } as never),
    unknownKey("procs", "processes", "Pool option"),
  );
  assert.throws(
    () => new Process({ targt: work } as never),
    unknownKey("targt", "target", "Process option"),
  );
  assert.throws(
    () => new Process({ target: work, arg: [1] } as never),
    unknownKey("arg", "args", "Process option"),
  );
  for (const Q of [Queue, SimpleQueue, JoinableQueue]) {
    assert.throws(
      () => new Q({ maxSize: 2 } as never),
      unknownKey("maxSize", "maxsize", `${Q.name} option`),
      Q.name,
    );
  }
  using q = new Queue();
  assert.throws(
    () => q.getSync({ blocking: false } as never),
    unknownKey("blocking", "block", "getSync option"),
  );
  assert.throws(
    () => new Barrier(2, { timout: 10 } as never),
    unknownKey("timout", "timeout", "Barrier option"),
  );
  assert.throws(
    () => new Value("d", 0, { lok: false } as never),
    unknownKey("lok", "lock", "Value option"),
  );
  assert.throws(
    () => new SharedArray("d", 2, { lok: false } as never),
    unknownKey("lok", "lock", "SharedArray option"),
  );
});

Deno.test("options: Manager.start and Manager.connect refuse unknown keys before they start or connect", async () => {
  await assert.rejects(
    Manager.start({ adress: { port: 0 } } as never),
    unknownKey("adress", "address", "Manager.start option"),
  );
  await assert.rejects(
    Manager.connect({
      address: { hostname: "127.0.0.1", port: 1 },
      authkey: "a-secret-of-16-bytes+",
      timeout: 100,
    } as never),
    unknownKey("timeout", "timeoutMs", "Manager.connect option"),
  );
});

Deno.test("options: new Process(f) says to pass { target: f }; Pipe(options) says Pipe(false)", () => {
  assert.throws(
    () => new Process(work as never),
    (e) =>
      e instanceof TypeError && /got a function/.test(e.message) &&
      /new Process\(\{ target: work \}\)/.test(e.message),
  );
  assert.throws(
    () => Pipe({ duplex: false } as never),
    (e) =>
      e instanceof TypeError && /duplex must be true or false, got an Object/
        .test(e.message) &&
      /Pipe\(false\)/.test(e.message),
  );
});

Deno.test("options: a Process name that is not a string, and Condition.waitFor without a predicate, are TypeErrors naming the fix", async () => {
  assert.throws(
    () => new Process({ target: work, name: 5 as never }),
    /Process option name must be a string, got 5; write name: "worker-1"/,
  );
  const c = new Condition();
  await c.acquire();
  try {
    await assert.rejects(
      c.waitFor(5 as never),
      /waitFor\(\) takes a predicate function first, got 5; write waitFor\(\(\) => ready, timeoutMs\)/,
    );
    assert.throws(
      () => c.waitForSync("x" as never),
      /waitForSync\(\) takes a predicate/,
    );
  } finally {
    c.release();
  }
});

Deno.test("options: a manager Lock proxy refuses a misspelt acquire option while the lock is held, never a wait", async () => {
  await using m = await Manager.start();
  const lock = await m.Lock();
  assert.equal(await lock.acquire(), true);
  const got = await bounded(
    lock.acquire({ block: false } as never).then(() => "acquired", (e) => e),
    5_000,
    "acquire({ block: false })",
  );
  assert.ok(
    got instanceof TypeError &&
      /unknown acquire\(\) option "block" \(did you mean blocking\?\)/.test(
        got.message,
      ),
    String(got),
  );
  await assert.rejects(lock.acquire(false as never), /got false/);
  await lock.release();
});
