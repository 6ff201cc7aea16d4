// What cannot go into a child's arguments is refused as a queue refuses it,
// naming where it sits and why; clear errors for a huge SharedArray and no
// stack trace from a terminated child.
import assert from "node:assert/strict";
import { Pipe, Process, Queue, SharedArray } from "../mod.ts";
import { noop } from "./fixtures/targets.ts";
import { runProgram } from "./_run_task.ts";

const module = new URL("./fixtures/targets.ts", import.meta.url);

/** Starts `args` in a child: the error start() threw, or undefined (the child is joined). */
async function startError(args: unknown[]): Promise<Error | undefined> {
  const p = new Process({ module, target: noop, args: args as [] });
  try {
    await p.start();
  } catch (e) {
    return e as Error;
  }
  await p.join(20_000);
  return undefined;
}

Deno.test("a URL or Headers in Process args (nested too) is refused with DataCloneError, as a Queue and a Pipe refuse it (it arrived as {})", async () => {
  const cases: [unknown[], RegExp][] = [
    [[new URL("http://a/")], /^Process '.*': args\[0\] is a URL: .*url\.href/],
    [[{ u: new URL("http://a/") }], /args\[0\]\.u is a URL/],
    [
      [1, [new Headers({ a: "b" })]],
      /args\[1\]\[0\] is a Headers: .*new Headers\(entries\)/,
    ],
    [
      [new Map([["k", new URLSearchParams("a=1")]])],
      /args\[0\]\.get\(k\) is a URLSearchParams/,
    ],
  ];
  using q = new Queue();
  const [a, b] = Pipe();
  try {
    for (const [args, message] of cases) {
      const e = await startError(args);
      assert.ok(e, `started with ${Deno.inspect(args)}`);
      assert.equal(e.name, "DataCloneError");
      assert.match(e.message, message);
      // The same refusal on a queue and a pipe.
      assert.throws(() => q.putNowait(args), { name: "DataCloneError" });
      assert.throws(() => a.send(args), { name: "DataCloneError" });
    }
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("a Proxy in Process args says where it is and why, not '#<Object> could not be cloned'", async () => {
  const e = await startError([1, { data: new Proxy({ x: 1 }, {}) }]);
  assert.ok(e);
  assert.equal(e.name, "DataCloneError");
  assert.match(
    e.message,
    /args\[1\]\.data is a Proxy: structured clone cannot copy a Proxy.*plain copy/,
  );
  // Its Pipe ends in the same args were not lost: still usable here.
  const [a, b] = Pipe();
  const e2 = await startError([a, new Proxy([], {})]);
  assert.match(e2!.message, /args\[1\] is a Proxy/);
  a.send(5);
  assert.equal(await b.recv(), 5);
  a.close();
  b.close();
});

Deno.test("a SharedArray too big to allocate says which size and why", () => {
  assert.throws(
    () => new SharedArray("i", 2 ** 40),
    (e: Error) =>
      e instanceof RangeError &&
      /1099511627776 'i' elements \(4 TiB\)/.test(e.message) &&
      /fewer elements/.test(e.message),
  );
  assert.throws(
    () => new SharedArray("d", 2 ** 53),
    /more than a SharedArrayBuffer can hold/,
  );
});

Deno.test("a terminated child that ran on prints no stack trace", async () => {
  const out = await runProgram(
    new URL("./fixtures/terminate_busy.ts", import.meta.url),
  );
  assert.equal(out.stdout, "exit -15\n");
  assert.equal(out.stderr, "", "nothing printed");
  assert.equal(out.code, 0);
});
