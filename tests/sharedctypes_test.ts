import assert from "node:assert/strict";
import {
  Lock,
  Process,
  RawArray,
  RawValue,
  rebuild,
  reduce,
  RLock,
  SharedArray,
  type Typecode,
  Value,
} from "../mod.ts";
import { addToAll, squareInto } from "./fixtures/sync_targets.ts";
import { runTask } from "./_run_task.ts";

const T = 20_000;
const module = new URL("./fixtures/sync_targets.ts", import.meta.url);

const TYPED: [Typecode, string][] = [
  ["b", "Int8Array"],
  ["B", "Uint8Array"],
  ["h", "Int16Array"],
  ["H", "Uint16Array"],
  ["i", "Int32Array"],
  ["I", "Uint32Array"],
  ["l", "Int32Array"],
  ["L", "Uint32Array"],
  ["q", "BigInt64Array"],
  ["Q", "BigUint64Array"],
  ["f", "Float32Array"],
  ["d", "Float64Array"],
];

async function run(
  // deno-lint-ignore no-explicit-any
  target: (...a: any[]) => unknown,
  args: unknown[],
): Promise<void> {
  const p = new Process({ target, args, module });
  await p.start();
  await p.join(T);
  assert.equal(p.exitCode, 0);
}

Deno.test("each typecode is its typed array over shared memory", () => {
  for (const [t, name] of TYPED) {
    const arr = new SharedArray(t, 3);
    assert.equal(
      Object.getPrototypeOf(Object.getPrototypeOf(arr)).constructor.name,
      name,
      t,
    );
    assert.ok(arr.buffer instanceof SharedArrayBuffer);
    assert.equal(arr.typecode, t);
    assert.equal(arr.length, 3);
    assert.ok(arr instanceof SharedArray);
    assert.ok(arr.getLock() instanceof RLock);
    const raw = new RawArray(t, 2);
    assert.equal(raw.constructor.name, name, t);
    assert.ok(raw.buffer instanceof SharedArrayBuffer);
    assert.ok(raw instanceof RawArray);
    assert.ok(!(raw instanceof SharedArray));
    const big = t === "q" || t === "Q";
    assert.equal(new Value(t).value, big ? 0n : 0);
    assert.equal(new RawValue(t, 5).value, big ? 5n : 5);
  }
  assert.ok(!(new Int32Array(2) instanceof RawArray)); // not shared memory
});

Deno.test("SharedArray indexes like an array", () => {
  const arr = new SharedArray("i", [1, 2, 3]);
  arr[1] = 20;
  assert.deepEqual([...arr], [1, 20, 3]);
  assert.equal(arr.length, 3);
  assert.equal(arr[5], undefined);
  assert.equal(arr.reduce((a, b) => a + b, 0), 24);
  // Methods that make arrays make plain ones; subarray still shares memory.
  const doubled = arr.map((x) => x * 2);
  assert.equal(doubled.constructor, Int32Array);
  arr.subarray(2)[0] = 30;
  assert.equal(arr[2], 30);
  const q = new SharedArray("Q", [1, 2n]);
  assert.deepEqual([...q], [1n, 2n]);
  const fromIter = new SharedArray("d", new Set([0.5, 1.5]));
  assert.deepEqual([...fromIter], [0.5, 1.5]);
  assert.deepEqual([...new SharedArray("b", 0)], []);
});

Deno.test("values out of range behave as the typed array does", () => {
  assert.equal(new Value("b", 200).value, -56);
  assert.equal(new Value("B", -1).value, 255);
  assert.equal(new Value("i", 1.9).value, 1);
  assert.equal(new Value("i", NaN).value, 0);
  assert.equal(new Value("f", 0.1).value, Math.fround(0.1));
  assert.equal(new Value("Q", -1).value, 2n ** 64n - 1n);
  const v = new Value("h", 0);
  v.value = 40_000;
  assert.equal(v.value, 40_000 - 65_536);
  const arr = new SharedArray("B", [256, 257]);
  assert.deepEqual([...arr], [0, 1]);
});

Deno.test("bad input: unknown typecode, bad size, wrong element type", () => {
  for (const bad of ["x", "c", "", 3, undefined]) {
    assert.throws(
      () => new Value(bad as Typecode),
      (e: Error) =>
        e instanceof TypeError && e.message.includes("b B h H i I l L q Q f d"),
    );
    assert.throws(() => new SharedArray(bad as Typecode, 2), TypeError);
  }
  for (const size of [-1, 1.5, NaN, Infinity]) {
    assert.throws(() => new SharedArray("i", size), RangeError, String(size));
    assert.throws(() => new RawArray("i", size), RangeError, String(size));
  }
  assert.throws(
    () => new SharedArray("i", "123" as unknown as number),
    TypeError,
  );
  assert.throws(
    () => new SharedArray("i", null as unknown as number),
    TypeError,
  );
  assert.throws(
    () => new SharedArray("i", [1n as unknown as number]),
    TypeError,
  );
  assert.throws(() => new Value("i", "3" as unknown as number), TypeError);
  assert.throws(
    () => new Value("q", 1.5),
    (e: Error) =>
      e instanceof RangeError &&
      /typecode 'q' holds integers \(bigints\), got 1\.5/.test(e.message),
  );
  assert.equal(new Value("Q", 3).value, 3n);
  const v = new Value("d", 0);
  assert.throws(() => (v.value = "1" as unknown as number), TypeError);
  assert.throws(
    () => new Value("i", 0, { lock: {} as Lock }),
    TypeError,
  );
  assert.throws(
    () => (SharedArray as unknown as (t: string, n: number) => unknown)("i", 1),
    TypeError,
  );
});

Deno.test("lock option: default RLock, none, or the given lock", () => {
  const lock = new Lock();
  const v = new Value("i", 0, { lock });
  assert.equal(v.getLock(), lock);
  assert.ok(new Value("i").getLock() instanceof RLock);
  assert.throws(() => new Value("i", 0, { lock: false }).getLock(), TypeError);
  const arr = new SharedArray("d", 2, { lock });
  assert.equal(arr.getLock(), lock);
  assert.throws(
    () => new SharedArray("d", 2, { lock: false }).getLock(),
    TypeError,
  );
  assert.equal("getLock" in new RawValue("i"), false);
  {
    using _ = v.getLock().holdSync();
    v.value += 1;
  }
  assert.equal(v.value, 1);
  assert.equal(Deno.inspect(v), "Value('i', 1)");
  assert.equal(Deno.inspect(new RawValue("q", 2n)), "RawValue('q', 2n)");
  assert.equal(new Value("d", 2.5).getObj()[0], 2.5);
});

Deno.test("reduction keeps memory and the lock shared, and one lock one object", () => {
  const arr = new SharedArray("i", [1, 2]);
  const v = new Value("d", 1.5, { lock: arr.getLock() });
  const raw = new RawValue("i", 4);
  const transfer: Transferable[] = [];
  const back = rebuild(structuredClone(reduce({ arr, v, raw }, transfer))) as {
    arr: SharedArray<"i">;
    v: Value<"d">;
    raw: RawValue<"i">;
  };
  assert.ok(back.arr instanceof SharedArray);
  assert.equal(back.arr.getLock(), back.v.getLock());
  back.arr[0] = 10;
  back.v.value = 2.5;
  back.raw.value = 5;
  assert.equal(arr[0], 10);
  assert.equal(v.value, 2.5);
  assert.equal(raw.value, 5);
  assert.ok(!(back.raw instanceof Value));
  // Both locks are the same memory: holding one holds the other.
  using _ = arr.getLock().holdSync();
  assert.equal(
    back.arr.getLock().acquireSync({ blocking: false }),
    true, // re-entered: the same process holds this RLock
  );
  back.arr.getLock().release();
});

Deno.test("a child writes a SharedArray and a Value the parent reads (seed 001)", async () => {
  const result = new SharedArray("i", 4);
  const sum = new Value("i");
  await run(squareInto, [[1, 2, 3, 4], result, sum]);
  assert.deepEqual([...result], [1, 4, 9, 16]);
  assert.equal(sum.value, 30);
});

Deno.test("two processes updating a whole SharedArray under its lock", async () => {
  const arr = new SharedArray("d", [0, 0, 0]);
  const a = new Process({ target: addToAll, args: [arr, 1, 500], module });
  const b = new Process({ target: addToAll, args: [arr, 2, 500], module });
  await a.start();
  await b.start();
  await a.join(T);
  await b.join(T);
  assert.deepEqual([...arr], [1500, 1500, 1500]);
});

Deno.test("example:value-array prints seed 001's result", async () => {
  assert.equal(
    await runTask("example:value-array"),
    [
      "Result(in process p1): [1, 4, 9, 16]",
      "Sum of squares(in process p1): 30",
      "Result(in main program): [1, 4, 9, 16]",
      "Sum of squares(in main program): 30",
      "",
    ].join("\n"),
  );
});
