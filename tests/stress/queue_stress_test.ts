// Queues under many processes: MPMC with putSync into a small maxsize, items
// big enough to stream. MP_STRESS=1 (deno task stress) runs them larger.
import assert from "node:assert/strict";
import { Queue } from "../../mod.ts";
import { scaled, start } from "./_stress.ts";
import { getItems, putSyncItems } from "./_targets.ts";

/** Bound of one put or get in a child: a stall fails the test, never hangs it. */
const OP_MS = 10_000;
const T = 120_000;

Deno.test("stress: putSync producers into Queue({ maxsize: 16 }) with 256 KiB items never stall", async () => {
  const producers = scaled(3, 4);
  const perProducer = scaled(200, 2_000);
  const consumers = 2;
  const size = 256 * 1024;
  using q = new Queue<Uint8Array | null>({ maxsize: 16 });
  using out = new Queue<Int32Array>();
  const cs = [];
  for (let c = 0; c < consumers; c++) {
    cs.push(await start(getItems, [q, out, OP_MS]));
  }
  const ps = [];
  for (let p = 0; p < producers; p++) {
    ps.push(await start(putSyncItems, [q, p, perProducer, size, OP_MS]));
  }
  for (const p of ps) {
    await p.join(T);
    assert.equal(
      p.exitCode,
      0,
      `${p.name} (a producer) ended with ${p.exitCode}: its putSync stalled`,
    );
  }
  for (let c = 0; c < consumers; c++) await q.put(null, { timeout: OP_MS });
  const next = new Array(producers).fill(0);
  for (let c = 0; c < consumers; c++) {
    const got = await out.get({ timeout: T });
    const last = new Array(producers).fill(-1);
    for (let k = 0; k < got.length; k += 2) {
      const [p, i] = [got[k], got[k + 1]];
      assert(i > last[p], `producer ${p}'s item ${i} after ${last[p]}`);
      last[p] = i;
      next[p]++;
    }
  }
  for (const p of cs) {
    await p.join(T);
    assert.equal(
      p.exitCode,
      0,
      `${p.name} (a consumer) ended with ${p.exitCode}`,
    );
  }
  assert.deepEqual(next, new Array(producers).fill(perProducer));
});
