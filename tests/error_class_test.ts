// A user's error class, exported from a module, arrives as that class from
// a pool task and from a child that failed to start.
import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import { Pool, Process } from "../mod.ts";
import { type WireError, withRebuiltError } from "../lib/wire/_error.ts";
import { failWith, initFails, MyErr } from "./fixtures/error_classes.ts";
import { Picky, takesPicky } from "./fixtures/error_start.ts";

const module = new URL("./fixtures/error_classes.ts", import.meta.url);

Deno.test("a pool task's error arrives as the user's exported class, with its fields, cause and stack", async () => {
  await using pool = new Pool({ processes: 1, module });
  const e = await bounded(pool.apply(failWith, [2]).then(() => null, (e) => e));
  assert.ok(e instanceof MyErr, `got ${e?.constructor?.name}`);
  assert.equal(e.name, "MyErr");
  assert.equal(e.message, "two is bad");
  assert.equal(e.code, 42);
  assert.equal(e.describe(), "MyErr#42: two is bad");
  assert.match(e.stack!, /failWith/); // the child's stack
  assert.match(e.stack!, /error_classes\.ts/);
  const cause = e.cause as MyErr;
  assert.ok(cause instanceof MyErr);
  assert.equal(cause.code, 1);
  assert.equal(cause.cause, "a string cause");
  assert.ok(!Object.keys(e).includes("cause")); // as Error's own: not enumerable
  // The same through map and imap.
  await assert.rejects(bounded(pool.map(failWith, [1, 2, 3])), MyErr);
  const it = pool.imap(failWith, [1, 2, 3]);
  assert.equal((await bounded(it.next())).value, 1);
  await assert.rejects(bounded(it.next()), MyErr);
  assert.equal((await bounded(it.next())).value, 3);
});

Deno.test("a pool initializer's error breaks the pool with the user's class", async () => {
  await using pool = new Pool({ processes: 1, module, initializer: initFails });
  const e = await bounded(pool.apply(failWith, [1]).then(() => null, (e) => e));
  assert.ok(e instanceof MyErr, `got ${e?.constructor?.name}: ${e}`);
  assert.equal(e.code, 5);
});

Deno.test("a class not exported arrives as its nearest exported base class, else as today (an Error of that name)", async () => {
  await using pool = new Pool({ processes: 1, module });
  const hidden = await bounded(
    pool.apply(failWith, [2, "hidden"]).then(() => null, (e) => e),
  );
  assert.ok(hidden instanceof MyErr);
  assert.equal(hidden.name, "HiddenErr");
  assert.equal(hidden.code, 7);
  const lonely = await bounded(
    pool.apply(failWith, [2, "lonely"]).then(() => null, (e) => e),
  );
  assert.equal(Object.getPrototypeOf(lonely), Error.prototype);
  assert.equal(lonely.name, "LonelyErr");
  assert.equal(lonely.message, "lonely two");
});

Deno.test("a child that fails to start with the user's error rejects start() and join() with that class", async () => {
  const p = new Process({
    target: takesPicky,
    args: [new Picky()],
    module: new URL("./fixtures/error_start.ts", import.meta.url),
  });
  const e = await bounded(p.start().then(() => null, (e) => e));
  assert.ok(e instanceof MyErr, `got ${e?.constructor?.name}: ${e}`);
  assert.equal(e.code, 9);
  assert.match(e.message, /cannot be rebuilt/);
  await assert.rejects(bounded(p.join()), MyErr);
  assert.equal(p.exitCode, 1);
});

const SLOW = "data:application/javascript," +
  encodeURIComponent(
    "await new Promise((r) => setTimeout(r, 1000)); export class GoneErr extends Error {}",
  );

Deno.test("a class whose module cannot be imported here comes as today, and never hangs", async () => {
  const wire = (module: string): WireError => ({
    isError: true,
    name: "GoneErr",
    message: "from a module this process cannot load",
    stack: "GoneErr: from a module this process cannot load\n    at child",
    props: { code: 3 },
    cls: { module, name: "GoneErr" },
  });
  const rebuilt = (w: WireError, ms?: number) =>
    new Promise<Error>((r) =>
      withRebuiltError(w, (e) => r(e as Error), undefined, ms)
    );
  for (
    const w of [
      wire(new URL("./fixtures/no_such_module.ts", import.meta.url).href),
      // A module that loads slower than the bound: given up on.
      wire(SLOW),
    ]
  ) {
    const e = await bounded(rebuilt(w, 200));
    assert.equal(Object.getPrototypeOf(e), Error.prototype);
    assert.equal(e.name, "GoneErr");
    assert.equal((e as Error & { code: number }).code, 3);
    assert.match(e.stack!, /at child/);
  }
  await bounded(import(SLOW)); // let it finish: nothing left running
  // An export that is not an error class: as today too.
  const notAClass = wire(
    new URL("./fixtures/error_classes.ts", import.meta.url).href,
  );
  notAClass.cls!.name = "failWith";
  assert.equal(
    Object.getPrototypeOf(await bounded(rebuilt(notAClass))),
    Error.prototype,
  );
});
