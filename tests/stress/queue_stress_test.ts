// Queues under many processes: MPMC with putSync into a small maxsize, items
// big enough to stream. MP_STRESS=1 (deno task stress) runs them larger.
import assert from "node:assert/strict";
import { Process, Queue } from "../../mod.ts";
import { scaled } from "./_scale.ts";
import { getItems, putSyncItems } from "./_targets.ts";

const module = new URL("./_targets.ts", import.meta.url);
/** Bound of one put or get in a child: a stall fails the test, never hangs it. */
const OP_MS = 10_000;
const T = 120_000;

async function start(
  // deno-lint-ignore no-explicit-any
  target: (...a: any[]) => unknown,
  args: unknown[],
): Promise<Process> {
  const p = new Process({ target, args, module });
  await p.start();
  return p;
}

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
