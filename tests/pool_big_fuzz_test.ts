// Random big and small payloads both ways through two pools (one recycling
// its workers), sync and async tasks, checked at the end.
import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import { Pool } from "../mod.ts";
import { fuzzTask, isRampOf, neg, ramp } from "./fixtures/big_tasks.ts";
const module = new URL("./fixtures/big_tasks.ts", import.meta.url);

let seed = Number(Deno.env.get("SEED") ?? 1);
const rnd = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const pickN = () => {
  const r = rnd();
  if (r < 0.3) return Math.floor(rnd() * 1000);
  if (r < 0.6) return 65_500 + Math.floor(rnd() * 100);
  if (r < 0.9) return 65_536 + Math.floor(rnd() * 200_000);
  return 1_000_000 + Math.floor(rnd() * 100_000);
};

Deno.test("fuzz: two pools, random sizes both ways, sync/async, verified at the end", async () => {
  await using p1 = new Pool({ processes: 2, module });
  await using p2 = new Pool({ processes: 1, module, maxtasksperchild: 3 });
  const checks: Promise<void>[] = [];
  const results: [unknown, number, number][] = [];
  for (let i = 0; i < 150; i++) {
    const pool = rnd() < 0.7 ? p1 : p2;
    const n = pickN(), m = pickN(), s = i + 1;
    const ms = rnd() < 0.3 ? Math.floor(rnd() * 5) : 0;
    const a = rnd() < 0.5 ? ramp(n, s) : Array.from(ramp(n, s));
    const p = pool.apply(fuzzTask, [a, n, s, m, ms]).then((r) => {
      results.push([r, m, s]);
    });
    checks.push(p);
    if (rnd() < 0.1) {
      const k = 60_000 + Math.floor(rnd() * 200_000);
      const items = Array.from(ramp(k, s));
      checks.push(
        pool.map(neg, items, Math.max(1, Math.floor(rnd() * k))).then((out) => {
          for (let j = 0; j < k; j++) {
            if (out[j] !== -(s * 1e7 + j)) throw new Error(`map ${i} at ${j}`);
          }
        }),
      );
    }
    if (checks.length > 12) await bounded(checks.shift()!, 60_000);
  }
  await bounded(Promise.all(checks), 120_000);
  for (
    const [[ok, out], m, s] of results as [
      [boolean, ArrayLike<number>],
      number,
      number,
    ][]
  ) {
    assert.ok(ok, `payload of ${s}`);
    assert.ok(isRampOf(out, m, s + 0.5), `result of ${s} (m=${m})`);
  }
});
