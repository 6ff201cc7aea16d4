// The ring's byte counters wrap (int32): a producer or consumer side that
// last looked GiBs of other processes' traffic ago must not trust what it saw.
import assert from "node:assert/strict";
import { Empty, Process, Queue } from "../mod.ts";
import { churn, churnThenFill } from "./fixtures/queue_targets.ts";
const module = new URL("./fixtures/queue_targets.ts", import.meta.url);

Deno.test("a consumer idle while 3 GiB went through the queue gets Empty, not an old item", async () => {
  using q = new Queue<unknown>();
  q.putNowait("first");
  assert.equal(q.getNowait(), "first"); // this process last saw TAIL here
  const p = new Process({
    module,
    target: churn,
    args: [q, 15_000, 200 * 1024],
  });
  await p.start();
  await p.join(120_000);
  assert.equal(p.exitCode, 0);
  assert.equal(q.qsize(), 0);
  assert.throws(() => q.getNowait(), Empty);
});

Deno.test("a producer idle while 4 GiB went through the queue does not overwrite unread items", async () => {
  using q = new Queue<unknown>();
  using out = new Queue<unknown>();
  q.putNowait("first"); // this process's producer side last looked at HEAD here
  assert.equal(q.getNowait(), "first");
  const p = new Process({ module, target: churnThenFill, args: [q, out] });
  await p.start();
  await p.join(120_000);
  assert.equal(p.exitCode, 0);
  const k = await out.get({ timeout: 10_000 }) as number;
  q.putNowait("x".repeat(3000)); // does not fit: must wait in this process
  for (let i = 0; i < k; i++) {
    const v = await q.get({ timeout: 10_000 }) as [number, string];
    assert.equal(v[0], i, `item ${i}`);
    assert.equal(v[1], "f".repeat(1000), `item ${i}'s string`);
  }
  assert.equal(await q.get({ timeout: 10_000 }), "x".repeat(3000));
});
