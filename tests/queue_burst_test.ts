// Queue bursts put faster than they are taken, across processes: items of
// mixed sizes around the spill buffer's and the ring's limits, several
// producers and consumers, putSync/getSync mixes, producers that end right
// after a burst, a JoinableQueue: nothing lost, doubled or reordered per
// producer.
import assert from "node:assert/strict";
import { JoinableQueue, Process, Queue } from "../mod.ts";
import {
  burst,
  burstAsync,
  check,
  consume,
  item,
  jconsume,
} from "./fixtures/burst_queue.ts";

const module = new URL("./fixtures/burst_queue.ts", import.meta.url);
const T = 60_000;

async function run(
  cap: number | undefined,
  producers: number,
  consumers: number,
  n: number,
  mode: number,
  joinable = false,
) {
  using q = joinable
    ? new JoinableQueue<unknown>(cap ? { capacityBytes: cap } : {})
    : new Queue<unknown>(cap ? { capacityBytes: cap } : {});
  using out = new Queue<unknown>();
  const ps: Process[] = [];
  for (let p = 0; p < producers; p++) {
    const pr = mode === 2
      ? new Process({ module, target: burstAsync, args: [q, p, n] })
      : new Process({ module, target: burst, args: [q, p, n, mode] });
    await pr.start();
    ps.push(pr);
  }
  // let producers get ahead of consumers
  await new Promise((r) => setTimeout(r, 200));
  const cs: Process[] = [];
  for (let c = 0; c < consumers; c++) {
    const pr = joinable
      ? new Process({
        module,
        target: jconsume,
        args: [q as JoinableQueue<unknown>, out],
      })
      : new Process({ module, target: consume, args: [q, out, c % 2 === 1] });
    await pr.start();
    cs.push(pr);
  }
  for (const p of ps) {
    await p.join(T);
    assert.equal(p.exitCode, 0, "producer exit");
  }
  for (let c = 0; c < consumers; c++) await q.put(null);
  const seen: number[][] = Array.from({ length: producers }, () => []);
  let bad = 0;
  for (let c = 0; c < consumers; c++) {
    const rows = await q2get(out);
    // per consumer: order per producer must be increasing
    const last = new Array(producers).fill(-1);
    for (let k = 0; k < rows.length; k += 3) {
      const [p, i, ok] = [rows[k], rows[k + 1], rows[k + 2]];
      if (!ok) bad++;
      assert.ok(
        i > last[p],
        `consumer ${c}: producer ${p} item ${i} after ${last[p]}`,
      );
      last[p] = i;
      seen[p].push(i);
    }
  }
  for (const c of cs) await c.join(T);
  assert.equal(bad, 0, "corrupt items");
  for (let p = 0; p < producers; p++) {
    const s = seen[p].sort((a, b) => a - b);
    assert.equal(s.length, n, `producer ${p}: ${s.length} of ${n}`);
    for (let i = 0; i < n; i++) {
      assert.equal(s[i], i, `producer ${p} missing/dup at ${i}`);
    }
  }
  if (joinable) await (q as JoinableQueue<unknown>).join();
}
async function q2get(out: Queue<unknown>): Promise<Int32Array> {
  return await out.get({ timeout: T }) as Int32Array;
}

for (const cap of [4096, 8192, undefined]) {
  Deno.test(`burst then end, cap ${cap}: 2 producers 2 consumers`, () =>
    run(cap, 2, 2, 3000, 0));
  Deno.test(`putSync mix, cap ${cap}: 2 producers 1 consumer`, () =>
    run(cap, 2, 1, 2000, 1));
  Deno.test(`async put mix, cap ${cap}: 1 producer 2 consumers`, () =>
    run(cap, 1, 2, 2000, 2));
}
Deno.test("joinable burst, cap 4096", () => run(4096, 2, 2, 2000, 0, true));
Deno.test("joinable burst, default", () => run(undefined, 2, 2, 3000, 0, true));

Deno.test("in-process: burst of mixed items past a small ring, gets interleaved", async () => {
  for (const cap of [4096, 8192, 65536]) {
    using q = new Queue<unknown>({ capacityBytes: cap });
    let got = 0;
    const N = 8000;
    for (let i = 0; i < N; i++) {
      q.putNowait(item(0, i));
      if (i % 777 === 776) {
        for (let k = 0; k < 200; k++) {
          const v = q.getNowait();
          const [p, j, ok] = check(v);
          assert.ok(
            ok && p === 0 && j === got,
            `cap ${cap} got ${j} want ${got}`,
          );
          got++;
        }
      }
    }
    while (got < N) {
      const [, j, ok] = check(await q.get({ timeout: T }));
      assert.ok(ok && j === got, `cap ${cap} tail got ${j} want ${got}`);
      got++;
    }
    assert.ok(q.empty());
  }
});
