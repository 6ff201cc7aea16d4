// Pool payloads over a ring record (~512 KiB), both ways: they travel in
// shared buffers the reading side hands back (lib/shm/_spares.ts). Sizes on
// both sides of the record limit and past the 32 MiB spare cap, many in
// flight, every value checked after later calls (a reused buffer must never
// show through a user's value).
import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import { Pool } from "../mod.ts";
import {
  asyncCheck,
  checkNeg,
  checkTuple,
  init,
  isRampOf,
  keep,
  keptOk,
  make,
  makeArr,
  neg,
  negLater,
  ramp,
  strLen,
  tagged,
  throwAfter,
} from "./fixtures/big_tasks.ts";

const module = new URL("./fixtures/big_tasks.ts", import.meta.url);
const SIZES = [
  65_000,
  65_530,
  65_536,
  65_600,
  100_003,
  131_072,
  1 << 20,
  3_000,
  40 * 131_072 + 5,
];

function negOf(n: number, seed: number) {
  const a = ramp(n, seed);
  for (let k = 0; k < n; k++) a[k] = -a[k];
  return a;
}
function eqArr(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (!Object.is(a[k], b[k])) return false;
  return true;
}

Deno.test("many concurrent big applies of varied sizes, results kept and verified later", async () => {
  await using pool = new Pool({ processes: 2, module });
  const all: {
    p: Promise<[boolean, Float64Array]>;
    n: number;
    seed: number;
  }[] = [];
  let seed = 1;
  for (let round = 0; round < 6; round++) {
    for (const n of SIZES) {
      const s = seed++;
      all.push({ p: pool.apply(checkNeg, [ramp(n, s), n, s]), n, seed: s });
    }
  }
  const got = await bounded(Promise.all(all.map((x) => x.p)), 120_000);
  // more calls after, to make reuse happen
  for (let i = 0; i < 20; i++) {
    const n = SIZES[i % 6], s = 1000 + i;
    const [ok, r] = await bounded(pool.apply(checkNeg, [ramp(n, s), n, s]));
    assert.ok(ok);
    assert.ok(eqArr(r, negOf(n, s)));
  }
  got.forEach(([ok, r], i) => {
    assert.equal(ok, true, `task ${i} payload`);
    assert.ok(
      eqArr(r, negOf(all[i].n, all[i].seed)),
      `task ${i} result n=${all[i].n}`,
    );
  });
});

Deno.test("big map chunks both ways (num path), verified after later calls", async () => {
  await using pool = new Pool({ processes: 2, module });
  const outs: [number[], number, number][] = [];
  const ps = [];
  for (let r = 0; r < 8; r++) {
    const n =
      [65_535, 65_536, 70_000, 200_000, 1 << 20, 131_073, 10, 300_001][r];
    const items = Array.from(ramp(n, r));
    const cs = [n, 70_000, 65_536, 100_000, 1 << 20, 65_537, 1, 150_000][r];
    ps.push(pool.map(neg, items, cs).then((m) => outs.push([m, n, r])));
  }
  await bounded(Promise.all(ps), 120_000);
  for (let i = 0; i < 5; i++) {
    await bounded(pool.map(neg, Array.from(ramp(200_000, 99)), 100_000));
  }
  for (const [m, n, r] of outs) assert.ok(eqArr(m, negOf(n, r)), `map ${r}`);
  // async (mapOn) path on a big numeric chunk
  const m = await bounded(
    pool.map(negLater, Array.from(ramp(150_000, 3)), 150_000),
  );
  assert.ok(eqArr(m, negOf(150_000, 3)));
});

Deno.test("imap / imapUnordered with big items", async () => {
  await using pool = new Pool({ processes: 2, module });
  const ns = [65_600, 131_072, 70_000, 1 << 19, 65_000, 100_000];
  const seen: number[] = [];
  let i = 0;
  for await (
    const [ok, r] of pool.imap(
      checkTuple,
      ns.map((n, k) => [ramp(n, k), n, k] as [Float64Array, number, number]),
    )
  ) {
    assert.ok(ok);
    assert.ok(eqArr(r as Float64Array, negOf(ns[i], i)));
    i++;
  }
  for await (
    const r of pool.imapUnordered(neg, Array.from(ramp(400_000, 7)), 70_000)
  ) seen.push(r);
  seen.sort((a, b) => b - a);
  assert.ok(eqArr(seen, negOf(400_000, 7)));
  const ord: number[] = [];
  for await (const r of pool.imap(neg, Array.from(ramp(400_000, 8)), 70_000)) {
    ord.push(r);
  }
  assert.ok(eqArr(ord, negOf(400_000, 8)));
});

Deno.test("kept Float64Arrays in the worker stay intact", async () => {
  await using pool = new Pool({ processes: 1, module });
  for (let i = 0; i < 30; i++) {
    const n = SIZES[i % 7];
    assert.equal(
      await bounded(pool.apply(keep, [ramp(n, i), n, i])),
      true,
      `keep ${i}`,
    );
  }
  assert.equal(await bounded(pool.apply(keptOk, [])), 30);
});

Deno.test("async tasks with big payloads, many in flight", async () => {
  await using pool = new Pool({ processes: 2, module });
  const ps = [];
  for (let i = 0; i < 24; i++) {
    const n = SIZES[i % 6];
    ps.push(
      pool.apply(asyncCheck, [ramp(n, i), n, i]).then(([ok, r]) =>
        [ok, r, n, i] as const
      ),
    );
  }
  const got = await bounded(Promise.all(ps), 60_000);
  for (let i = 0; i < 10; i++) {
    await bounded(pool.apply(asyncCheck, [ramp(131_072, 50), 131_072, 50]));
  }
  for (const [ok, r, n, i] of got) {
    assert.ok(ok, `async ${i}`);
    assert.ok(isRampOf(r, n, i), `async result ${i}`);
  }
});

Deno.test("big results from small calls: typed array and number[]", async () => {
  await using pool = new Pool({ processes: 2, module });
  const ps = [];
  for (let i = 0; i < 20; i++) {
    const n = SIZES[i % 7];
    ps.push(
      Promise.all([
        pool.apply(make, [n, i]),
        pool.apply(makeArr, [n, i + 100]),
      ]),
    );
  }
  const got = await bounded(Promise.all(ps), 60_000);
  for (let i = 0; i < 10; i++) await bounded(pool.apply(make, [131_072, 77]));
  got.forEach(([a, b], i) => {
    const n = SIZES[i % 7];
    assert.ok(isRampOf(a, n, i), `typed ${i}`);
    assert.ok(isRampOf(b, n, i + 100), `arr ${i}`);
  });
});

Deno.test("throw after a big payload; starmap with big args; big strings", async () => {
  await using pool = new Pool({ processes: 2, module });
  for (let i = 0; i < 10; i++) {
    await assert.rejects(
      bounded(pool.apply(throwAfter, [ramp(131_072, i)])),
      RangeError,
    );
  }
  const args = SIZES.slice(0, 7).map((n, i) => [ramp(n, i), n, i]);
  const r = await bounded(pool.starmap(checkNeg, args as never, 1)) as [
    boolean,
    Float64Array,
  ][];
  r.forEach(([ok, x], i) => {
    assert.ok(ok);
    assert.ok(eqArr(x, negOf(SIZES[i], i)));
  });
  for (const len of [600_000, 1 << 20, 5 << 20]) {
    assert.equal(
      await bounded(pool.apply(strLen, ["a".repeat(len), "a"])),
      len,
    );
    assert.equal(
      await bounded(pool.apply(strLen, ["é".repeat(len), "é"])),
      len,
    );
  }
});

Deno.test("initializer, several pools at once", async () => {
  await using a = new Pool({
    processes: 2,
    module,
    initializer: init,
    initargs: ["A"],
  });
  await using b = new Pool({
    processes: 1,
    module,
    initializer: init,
    initargs: ["B"],
  });
  const ps = [];
  for (let i = 0; i < 16; i++) {
    const n = SIZES[i % 6];
    ps.push(
      a.apply(tagged, [ramp(n, i), n, i]).then((r) =>
        assert.deepEqual(r, ["A", true])
      ),
    );
    ps.push(
      b.apply(tagged, [ramp(n, i), n, i]).then((r) =>
        assert.deepEqual(r, ["B", true])
      ),
    );
  }
  await bounded(Promise.all(ps), 60_000);
});
