// Property tests of the queue codec: random values of every supported kind
// round-trip to what structured clone gives, whole and when copied out in
// random pieces (as the ring streams them), into private or shared memory.
import assert, {
  deepStrictEqual,
  strictEqual as assertEquals,
  throws,
} from "node:assert/strict";
import {
  Decoder,
  EncodeError,
  Encoder,
  RAW_HEAD,
  RAW_MIN,
  rawPlan,
} from "../lib/_codec.ts";
import { reduceSymbol } from "../lib/reduction.ts";

/** A small seeded PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Point {
  constructor(public x: number, public y: number) {}
}

function gen(r: () => number, depth = 0): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (n: number) => Math.floor(r() * n);
  const kinds = depth > 3 ? 12 : 20;
  switch (int(kinds)) {
    case 0:
      return pick([
        0,
        -0,
        1,
        127,
        128,
        -1,
        2 ** 31 - 1,
        -(2 ** 31),
        2 ** 31,
        2 ** 53,
        -(2 ** 53) - 2,
        NaN,
        Infinity,
        -Infinity,
        0.1,
        Number.MIN_VALUE,
        Number.MAX_VALUE,
      ]);
    case 1:
      return int(1000) - 500;
    case 2:
      return (r() - 0.5) * 10 ** int(30);
    case 3:
      return pick([true, false, null, undefined]);
    case 4: {
      const n = pick([0, 1, 5, 40, 85, 86, 300, 5000]);
      let s = "";
      for (let i = 0; i < n; i++) s += String.fromCharCode(32 + int(95));
      return s;
    }
    case 5: {
      const n = pick([1, 10, 84, 86, 400]);
      const chars = ["é", "ß", "中", "😀", "\u0000", "a", "\uffff", "\ud800"];
      let s = "";
      for (let i = 0; i < n; i++) s += pick(chars);
      return s;
    }
    case 6:
      return pick([
        0n,
        1n,
        -1n,
        2n ** 63n - 1n,
        -(2n ** 63n),
        2n ** 64n,
        -(2n ** 200n) + 12345n,
        BigInt(int(1e9)) * 10n ** BigInt(int(60)),
      ]);
    case 7: {
      const n = pick([0, 1, 7, 100, RAW_MIN - 1, RAW_MIN, RAW_MIN * 3 + 5]);
      const ctor = pick<
        {
          new (n: number): ArrayBufferView & ArrayLike<number | bigint>;
          BYTES_PER_ELEMENT: number;
        }
      >([
        Uint8Array,
        Int8Array,
        Uint8ClampedArray,
        Int16Array,
        Uint16Array,
        Int32Array,
        Uint32Array,
        Float32Array,
        Float64Array,
        BigInt64Array,
        BigUint64Array,
      ]);
      const a = new ctor(Math.ceil(n / ctor.BYTES_PER_ELEMENT));
      const bytes = new Uint8Array(a.buffer);
      for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
      // Float arrays with NaN payloads compare unequal bytewise but equal as
      // values; keep them finite so deepStrictEqual sees the same values.
      if (a instanceof Float32Array || a instanceof Float64Array) {
        for (let i = 0; i < a.length; i++) a[i] = r() * 1000;
      }
      return a;
    }
    case 8: {
      const n = pick([0, 3, RAW_MIN + 1]);
      const buf = new ArrayBuffer(n + 16);
      new Uint8Array(buf).fill(int(256));
      return pick([
        buf,
        new Uint8Array(buf, 8, n),
        new DataView(buf, 4, n),
      ]);
    }
    case 9:
      return pick([
        new Date(int(2 ** 40)),
        /ab+c/gi,
        new Error("boom"),
        new RangeError("out"),
        new Point(int(10), r()),
      ]);
    case 10:
      return Object.assign(Object.create(null), { a: int(5) });
    case 11:
      return { "__proto__": int(9), "1": "one", "b": [] };
    case 12:
    case 13:
    case 14: {
      const a: unknown[] = [];
      const n = pick([0, 1, 3, 10]);
      for (let i = 0; i < n; i++) a.push(gen(r, depth + 1));
      return a;
    }
    case 15:
    case 16:
    case 17: {
      const o: Record<string, unknown> = {};
      const n = pick([0, 1, 3, 8]);
      const keys = [
        "id",
        "name",
        "é",
        "",
        "x y",
        "0",
        "10",
        "$k",
        "long_key_" + int(99),
      ];
      for (let i = 0; i < n; i++) o[pick(keys)] = gen(r, depth + 1);
      return o;
    }
    case 18:
      return new Map<unknown, unknown>([
        [gen(r, depth + 1), gen(r, depth + 1)],
        [
          "k",
          gen(r, depth + 1),
        ],
      ]);
    default: {
      const sparse: unknown[] = [1];
      sparse[3] = gen(r, depth + 1);
      return pick<unknown>([
        new Set([1, "a", gen(r, depth + 1)]),
        sparse,
        [undefined, undefined],
      ]);
    }
  }
}

/** Parsing JSON makes a real own `__proto__` key, as structured clone keeps. */
function fixProto(v: unknown): unknown {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    if (Object.getPrototypeOf(v) === Object.prototype && "1" in v && "b" in v) {
      return Object.assign(JSON.parse('{"__proto__": 0}'), v, {
        ["__proto__" as string]: undefined,
      });
    }
  }
  return v;
}

function roundTrip(
  enc: Encoder,
  dec: Decoder,
  v: unknown,
  r: () => number,
  shared: boolean,
): unknown {
  const size = enc.encode(v);
  const offset = Math.floor(r() * 16);
  const mem = new Uint8Array(
    shared ? new SharedArrayBuffer(size + 32) : new ArrayBuffer(size + 32),
  );
  // Copy out in random pieces, as the ring streams a big item.
  let from = 0;
  while (from < size) {
    const to = Math.min(size, from + 1 + Math.floor(r() * (size / 3 + 8)));
    enc.copyTo(mem, offset + from, from, to);
    from = to;
  }
  assertEquals(from, size);
  return dec.decode(mem, offset, offset + size);
}

Deno.test("codec: 3000 random values round-trip like structured clone", () => {
  const r = rng(12345);
  const enc = new Encoder();
  const dec = new Decoder();
  for (let i = 0; i < 3000; i++) {
    const v = fixProto(gen(r));
    const expected = structuredClone(v);
    const got = roundTrip(enc, dec, v, r, i % 2 === 0);
    deepStrictEqual(got, expected, `value #${i}`);
  }
});

Deno.test("codec: every scalar edge survives, -0 and NaN included", () => {
  const enc = new Encoder();
  const dec = new Decoder();
  const r = rng(1);
  for (
    const v of [
      -0,
      NaN,
      2 ** 31,
      -(2 ** 31) - 1,
      1e-300,
      "\ud800x",
      "😀",
      2n ** 64n,
      -(2n ** 64n),
    ]
  ) {
    const got = roundTrip(enc, dec, v, r, true);
    assert(Object.is(got, v), `${String(v)} came back as ${String(got)}`);
  }
});

Deno.test("codec: repeats and cycles come back as the same objects", () => {
  const enc = new Encoder();
  const dec = new Decoder();
  const r = rng(2);
  const shared = { n: 1 };
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  const many = Array.from({ length: 40 }, (_, i) => ({ i }));
  const v = { a: shared, b: [shared, shared], cyclic, many, again: many };
  const got = roundTrip(enc, dec, v, r, false) as typeof v;
  assert(got.a === got.b[0] && got.b[0] === got.b[1]);
  const c = got.cyclic as Record<string, unknown>;
  assert(c.self === c);
  assert(got.many === got.again);
  deepStrictEqual(got, structuredClone(v));
});

Deno.test("codec: results never alias the input memory", () => {
  const enc = new Encoder();
  const dec = new Decoder();
  const r = rng(3);
  const big = new Uint8Array(RAW_MIN * 2).fill(7);
  const got = roundTrip(
    enc,
    dec,
    { big, small: new Uint8Array(3) },
    r,
    true,
  ) as {
    big: Uint8Array;
    small: Uint8Array;
  };
  assert(!(got.big.buffer instanceof SharedArrayBuffer));
  assertEquals(got.big.byteOffset, 0);
  assertEquals(got.big.buffer.byteLength, big.length);
  big[0] = 1;
  assertEquals(got.big[0], 7);
});

Deno.test("codec: a big typed array is spliced, not copied into scratch", () => {
  const enc = new Encoder();
  const big = new Uint8Array(1 << 20);
  const size = enc.encode([1, big, "tail"]);
  assert(size > big.length);
  // toBytes is the same bytes as a piecewise copy.
  const whole = enc.toBytes();
  const pieces = new Uint8Array(size);
  for (let at = 0; at < size; at += 1000) {
    enc.copyTo(pieces, at, at, Math.min(size, at + 1000));
  }
  deepStrictEqual(pieces, whole);
  deepStrictEqual(new Decoder().decode(whole, 0, size), [1, big, "tail"]);
});

Deno.test("codec: what cannot be sent fails with the path, and the encoder goes on", () => {
  const enc = new Encoder();
  const dec = new Decoder();
  const cases: [unknown, RegExp][] = [
    [() => 1, /^item is a function: it cannot be cloned/],
    [{ a: [1, function named() {}] }, /^item\.a\[1\] is a function \(named\)/],
    [{ s: Symbol("x") }, /^item\.s is a symbol/],
    [{ m: new Map([["k", () => 2]]) }, /^item\.m\.<value 0> is a function/],
    [
      { buf: new SharedArrayBuffer(8) },
      /^item\.buf is a SharedArrayBuffer: it holds shared memory/,
    ],
    [
      [new Int32Array(new SharedArrayBuffer(8))],
      /^item\[0\] is a Int32Array: it holds shared memory/,
    ],
    [
      { q: { [reduceSymbol]: () => ({ tag: "x", state: 0 }) } },
      /^item\.q is a Object: it holds shared memory/,
    ],
    [{ "odd key": new WeakMap() }, /^item\["odd key"\] is a WeakMap/],
  ];
  for (const [value, pattern] of cases) {
    throws(() => enc.encode(value), (e: unknown) => {
      assert(e instanceof EncodeError && e instanceof TypeError);
      assert(pattern.test((e as Error).message), (e as Error).message);
      return true;
    });
    const n = enc.encode({ ok: 1 });
    deepStrictEqual(dec.decode(enc.toBytes(), 0, n), { ok: 1 });
  }
});

Deno.test("codec: corrupt input is an error, not a wrong value", () => {
  const dec = new Decoder();
  throws(() => dec.decode(new Uint8Array([99]), 0, 1), /corrupt queue item/);
  throws(() => dec.decode(new Uint8Array([1, 1]), 0, 2), /bytes left/);
});

Deno.test("codec: raw bytes start 8-aligned; a lone typed array can be received straight into its buffer", () => {
  const enc = new Encoder();
  for (const prefix of [[], [1], ["ab", 2, 3]]) {
    const value = [...prefix, new Float64Array(RAW_MIN)];
    const size = enc.encode(prefix.length ? value : value[0]);
    const bytes = enc.toBytes();
    // The raw bytes are the last RAW_MIN * 8: they start 8-aligned.
    assertEquals((size - RAW_MIN * 8) % 8, 0, `prefix ${prefix}`);
    deepStrictEqual(
      new Decoder().decode(bytes, 0, size),
      prefix.length ? value : value[0],
    );
  }
  const f = new Float64Array([1.5, 2.5, -0]);
  const size = enc.encode(f);
  const plan = rawPlan(enc.toBytes().subarray(0, RAW_HEAD), size)!;
  assert(plan && plan.skip % 8 === 0 && plan.length === 24);
  const buf = new Uint8Array(plan.length);
  buf.set(enc.toBytes().subarray(plan.skip));
  deepStrictEqual(plan.finish(buf.buffer), f);
  assertEquals(
    rawPlan(enc.toBytes().subarray(0, RAW_HEAD), size + 1),
    undefined,
  );
  enc.encode({ a: f });
  assertEquals(
    rawPlan(enc.toBytes().subarray(0, RAW_HEAD), enc.size),
    undefined,
  );
});
