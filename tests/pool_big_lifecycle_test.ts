// Big payloads while workers come and go: maxtasksperchild 1, a worker that
// exits mid-flight, terminate() mid-flight.
import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import { Pool, ProcessError } from "../mod.ts";
import { checkNeg, exitIf, make, neg, ramp } from "./fixtures/big_tasks.ts";

const module = new URL("./fixtures/big_tasks.ts", import.meta.url);
function negOk(r: Float64Array, n: number, s: number) {
  if (r.length !== n) return false;
  for (let k = 0; k < n; k++) if (r[k] !== -(s * 1e7 + k)) return false;
  return true;
}

Deno.test("maxtasksperchild 1 with big payloads both ways", async () => {
  await using pool = new Pool({ processes: 2, module, maxtasksperchild: 1 });
  const ps = [];
  for (let i = 0; i < 16; i++) {
    const n = [65_600, 131_072, 1 << 20, 70_000][i % 4];
    ps.push(
      pool.apply(checkNeg, [ramp(n, i), n, i]).then(([ok, r]) => {
        assert.ok(ok, `payload ${i}`);
        assert.ok(negOk(r, n, i), `result ${i}`);
      }),
    );
  }
  await bounded(Promise.all(ps), 120_000);
  const m = await bounded(
    pool.map(neg, Array.from(ramp(300_000, 1)), 70_000),
    60_000,
  );
  assert.equal(m.length, 300_000);
  for (let k = 0; k < m.length; k++) {
    if (m[k] !== -(1e7 + k)) throw new Error(`map ${k}`);
  }
});

Deno.test("a worker that exits while big payloads are in flight", async () => {
  await using pool = new Pool({ processes: 2, module });
  const ps = [];
  for (let i = 0; i < 20; i++) {
    const n = [65_600, 131_072, 1 << 20][i % 3];
    ps.push(
      pool.apply(exitIf, [ramp(n, i), i % 7 === 3]).then(
        (v) => ["ok", v],
        (e) => ["err", e],
      ),
    );
  }
  const got = await bounded(Promise.all(ps), 60_000);
  got.forEach(([k, v], i) => {
    const n = [65_600, 131_072, 1 << 20][i % 3];
    if (i % 7 === 3) {
      assert.ok(
        k === "err" && v instanceof ProcessError,
        `task ${i}: ${k} ${v}`,
      );
    } else assert.deepEqual([k, v], ["ok", n], `task ${i}`);
  });
  // pool still fine afterwards
  const [ok, r] = await bounded(
    pool.apply(checkNeg, [ramp(131_072, 5), 131_072, 5]),
  );
  assert.ok(ok && negOk(r, 131_072, 5));
});

Deno.test("terminate mid-flight with big payloads", async () => {
  for (let round = 0; round < 3; round++) {
    const pool = new Pool({ processes: 2, module });
    const ps = [];
    for (let i = 0; i < 12; i++) {
      ps.push(pool.apply(make, [1 << 20, i]).catch(() => "x"));
      ps.push(
        pool.apply(checkNeg, [ramp(131_072, i), 131_072, i]).catch(() => "x"),
      );
    }
    await new Promise((r) => setTimeout(r, 30 * round));
    pool.terminate();
    await bounded(pool.join());
    await bounded(Promise.all(ps));
  }
});
