// The pool's public surface as a user meets it: BasePool used as a type,
// what a pool refuses (being sent anywhere, callbacks that are not
// functions) and what mod.ts does not export.
import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import {
  BasePool,
  Pipe,
  Pool,
  Process,
  Queue,
  type ResultCallbacks,
} from "../mod.ts";
import { add, square, whoami } from "./fixtures/pool_tasks.ts";

const module = new URL("./fixtures/pool_tasks.ts", import.meta.url);

Deno.test("the child's library loader is not public API: mod.ts exports neither loadRebuilders nor needsRebuilders", async () => {
  const api: Record<string, unknown> = await import("../mod.ts");
  assert.ok(!("loadRebuilders" in api), "loadRebuilders is exported");
  assert.ok(!("needsRebuilders" in api), "needsRebuilders is exported");
  assert.equal(typeof api.registerRebuilder, "function");
});

Deno.test("a class of one's own extending BasePool is told to extend Pool, not 'Cannot read properties of undefined'", async () => {
  class Mine extends BasePool {}
  const mine = new Mine();
  const says = (e: unknown) =>
    e instanceof TypeError && /BasePool/.test(e.message) &&
    /extend Pool/.test(e.message);
  assert.throws(() => mine.processes, says);
  await assert.rejects(mine.map(square, [1]), says);
  assert.throws(() => mine.close(), says);
  await assert.rejects(mine[Symbol.asyncDispose](), says);
});

Deno.test("a Pool sent to another process (Process args, a task's args, a Pipe, a Queue) is refused, not sent as an empty {}", async () => {
  await using pool = new Pool({ processes: 1, module });
  const refused = (e: unknown) =>
    e instanceof TypeError && /a Pool cannot be sent/.test(e.message);
  const p = new Process({ target: whoami, module, args: [{ pool }] });
  assert.throws(() => p.start(), refused);
  await assert.rejects(pool.apply(whoami, [pool]), refused);
  const [a, b] = Pipe();
  assert.throws(() => a.send([pool]), refused);
  a.close();
  b.close();
  using q = new Queue();
  assert.throws(() => q.putSync(pool), refused);
  // The pool itself is unharmed.
  assert.equal(await bounded(pool.apply(square, [4])), 16);
});

Deno.test("AsyncResult callbacks that are not functions, or misspelt, are refused at submission, not an uncaught TypeError when the result comes", async () => {
  await using pool = new Pool({ processes: 1, module });
  const callbacks = [
    { callback: 5 },
    { errorCallback: "log" },
    { error_callback: () => {} },
    "callback",
  ] as unknown as ResultCallbacks<number>[];
  for (const cbs of callbacks) {
    assert.throws(() => pool.applyAsync(square, [2], cbs), TypeError);
    assert.throws(
      () => pool.mapAsync(square, [2], 1, cbs as never),
      TypeError,
    );
    assert.throws(
      () => pool.starmapAsync(add, [[1, 2]], 1, cbs as never),
      TypeError,
    );
  }
  assert.throws(
    () => pool.applyAsync(square, [2], { error_callback: () => {} } as never),
    /did you mean errorCallback\?/,
  );
  // The pool still works, and nothing was left pending.
  assert.equal(await bounded(pool.apply(square, [3])), 9);
});

Deno.test("starmap with an item that is not an array of arguments rejects naming it, not with V8's spread error from the worker", async () => {
  await using pool = new Pool({ processes: 1, module });
  await bounded(
    assert.rejects(
      pool.starmap(add, [[1, 2], 3 as unknown as [number, number]]),
      (e: unknown) =>
        e instanceof TypeError &&
        /argsList\[1\] is 3, not an array/.test(e.message),
    ),
  );
  // The pool goes on.
  assert.deepEqual(await bounded(pool.starmap(add, [[1, 2], [3, 4]])), [3, 7]);
});
