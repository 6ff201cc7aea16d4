// Property tests of the queue codec: random values of every supported kind
// round-trip to what structured clone gives (the same graph: kinds,
// prototypes, own keys, holes, typed-array offsets, shared buffers and
// objects), whole and when copied out in random pieces (as the ring streams
// them), into private or shared memory; what structured clone refuses (and
// the few things a queue cannot carry) fails with a DataCloneError naming
// where it sits, and the encoder goes on.
import assert, {
  deepStrictEqual,
  strictEqual as assertEquals,
  throws,
} from "node:assert/strict";
import {
  DecodeError,
  Decoder,
  EncodeError,
  Encoder,
  RAW_HEAD,
  RAW_MIN,
  rawPlan,
} from "../lib/wire/_codec.ts";
import { reduceSymbol } from "../lib/reduction.ts";
import { Pipe, Queue } from "../mod.ts";
import { runProgram } from "./_run_task.ts";
import { rng } from "./_rng.ts";

class Point {
  constructor(public x: number, public y: number) {}
}

function gen(r: () => number, depth = 0): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (n: number) => Math.floor(r() * n);
  const kinds = depth > 3 ? 12 : 24;
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
    case 20: {
      // Views of one buffer: partial, overlapping, whole, and the buffer.
      const n = pick([8, 64, RAW_MIN * 2]);
      const buf = new ArrayBuffer(n);
      new Uint8Array(buf).forEach((_, i, a) => a[i] = int(256));
      const views: unknown[] = [
        new Uint8Array(buf, int(n / 2), int(n / 2)),
        new Float64Array(buf, 0, int(n / 8)),
        new DataView(buf, int(n)),
        new Int16Array(buf),
        buf,
      ];
      return views.filter(() => r() < 0.6);
    }
    case 21: {
      const a: unknown[] = [gen(r, depth + 1), 2];
      if (r() < 0.5) delete a[0];
      (a as unknown as Record<string, unknown>)[pick(["k", "index", "1.5"])] =
        gen(r, depth + 1);
      return a;
    }
    case 22:
      return pick<unknown>([
        new Error("e", { cause: gen(r, depth + 1) }),
        new RangeError("r"),
        Object.assign(new TypeError("t"), { name: "URIError" }),
        new DOMException("d", "AbortError"),
        new Number(-0),
        new String("s"),
        new Boolean(false),
        Object(7n),
      ]);
    case 23: {
      const shared = gen(r, depth + 1);
      return [shared, new Map([["s", shared]]), new Set([shared])];
    }
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

/**
 * Throws unless `got` is the same graph as `want`, closer than
 * deepStrictEqual looks: the same prototypes, own enumerable keys (holes
 * included), typed-array kinds and offsets, buffers (resizable ones too),
 * Map and Set order, error fields, and the same sharing: two places hold
 * one object in `got` exactly when they do in `want`.
 */
function assertSameClone(
  got: unknown,
  want: unknown,
  path = "value",
  seen = new Map<object, unknown>(),
  back = new Map<unknown, object>(),
): void {
  const fail = (what: string) => {
    throw new assert.AssertionError({
      message: `${path}: ${what}`,
      actual: got,
      expected: want,
    });
  };
  if (want === null || typeof want !== "object") {
    if (!Object.is(got, want)) fail("differs");
    return;
  }
  if (got === null || typeof got !== "object") return fail("not an object");
  if (seen.has(want) || back.has(got)) {
    if (seen.get(want) !== got) fail("sharing differs");
    return;
  }
  seen.set(want, got);
  back.set(got, want);
  if (Object.getPrototypeOf(got) !== Object.getPrototypeOf(want)) {
    fail("prototype differs");
  }
  const sub = (g: unknown, w: unknown, p: string) =>
    assertSameClone(g, w, `${path}${p}`, seen, back);
  const tag = Object.prototype.toString.call(want);
  if (Object.prototype.toString.call(got) !== tag) fail(`not a ${tag}`);
  if (ArrayBuffer.isView(want)) {
    const g = got as ArrayBufferView;
    if (g.byteOffset !== want.byteOffset) fail("byteOffset differs");
    if (g.byteLength !== want.byteLength) fail("byteLength differs");
    return sub(g.buffer, want.buffer, ".buffer");
  }
  if (want instanceof ArrayBuffer) {
    const g = got as ArrayBuffer;
    if (g.resizable !== want.resizable) fail("resizable differs");
    if (g.maxByteLength !== want.maxByteLength) fail("maxByteLength differs");
    return deepStrictEqual(new Uint8Array(g), new Uint8Array(want), path);
  }
  if (want instanceof Map) {
    const g = [...(got as Map<unknown, unknown>)];
    const w = [...want];
    if (g.length !== w.length) fail("size differs");
    w.forEach(([k, v], i) => {
      sub(g[i][0], k, `.<key ${i}>`);
      sub(g[i][1], v, `.<value ${i}>`);
    });
    return;
  }
  if (want instanceof Set) {
    const g = [...(got as Set<unknown>)];
    const w = [...want];
    if (g.length !== w.length) fail("size differs");
    w.forEach((v, i) => sub(g[i], v, `.<item ${i}>`));
    return;
  }
  if (want instanceof Date) {
    return sub((got as Date).getTime(), want.getTime(), ".time");
  }
  if (want instanceof RegExp) {
    const g = got as RegExp;
    if (g.source !== want.source || g.flags !== want.flags) fail("differs");
    return sub(g.lastIndex, want.lastIndex, ".lastIndex");
  }
  if (
    want instanceof Number || want instanceof String ||
    want instanceof Boolean || want instanceof BigInt
  ) {
    sub(
      (got as { valueOf(): unknown }).valueOf(),
      want.valueOf(),
      ".valueOf()",
    );
  }
  if (want instanceof Error) {
    const g = got as Error;
    for (const k of ["name", "message", "stack"] as const) {
      sub(g[k], want[k], `.${k}`);
    }
    for (const k of ["message", "cause"]) {
      const gd = Object.getOwnPropertyDescriptor(g, k);
      const wd = Object.getOwnPropertyDescriptor(want, k);
      if (!gd !== !wd || gd?.enumerable !== wd?.enumerable) {
        fail(`own ${k} differs`);
      }
      if (wd) sub(gd!.value, wd.value, `.${k}`);
    }
  }
  const gk = Object.keys(got);
  deepStrictEqual(gk, Object.keys(want), `${path}: own keys differ`);
  if (Array.isArray(want)) {
    sub((got as unknown[]).length, want.length, ".length");
  }
  for (const k of gk) {
    sub(
      (got as Record<string, unknown>)[k],
      (want as Record<string, unknown>)[k],
      /^\d+$/.test(k) ? `[${k}]` : `.${k}`,
    );
  }
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
    assertSameClone(got, expected, `value #${i}`);
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
    [{ m: new Map([["k", () => 2]]) }, /^item\.m\.get\(k\) is a function/],
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
  throws(() => dec.decode(new Uint8Array([99]), 0, 1), DecodeError);
  throws(() => dec.decode(new Uint8Array([99]), 0, 1), /corrupt encoded value/);
  throws(() => dec.decode(new Uint8Array([1, 1]), 0, 2), /bytes left/);
});

/**
 * Inputs the review found hanging (a varint off the end) or allocating 4 GiB
 * (a length not checked); the last is a value in place in a bigger buffer,
 * its varint running on into the bytes after it.
 */
const HOSTILE = [
  "0a91",
  "14",
  "1104",
  "1305ff",
  "0dffffffff00",
  "0c01ffffffff00",
];

Deno.test("codec: malformed bytes fail with a DecodeError in bounded time (a varint off the end never returns)", async () => {
  // Its own process: a decode that loops cannot be stopped in this one.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./fixtures/decode_hex.ts", import.meta.url).pathname,
      ...HOSTILE,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output().catch((e) => ({ stdout: new Uint8Array(), error: e }));
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  deepStrictEqual(lines, HOSTILE.map((hex) => `${hex} DecodeError`));
});

Deno.test("codec: a length is checked against the bytes left before anything is allocated", () => {
  const dec = new Decoder();
  const Real = globalThis.Uint8Array;
  let biggest = 0;
  // The decoder allocates through the global constructor: watch it.
  globalThis.Uint8Array = class extends Real {
    constructor(...args: unknown[]) {
      if (typeof args[0] === "number") biggest = Math.max(biggest, args[0]);
      super(...(args as []));
    }
  } as Uint8ArrayConstructor;
  try {
    for (const hex of HOSTILE.slice(4, 6)) {
      const bytes = new Real(hex.match(/../g)!.map((h) => parseInt(h, 16)));
      throws(() => dec.decode(bytes, 0, bytes.length), DecodeError);
    }
  } finally {
    globalThis.Uint8Array = Real;
  }
  assert(biggest <= 64, `allocated ${biggest} bytes for a 6-byte input`);
});

Deno.test("codec: fuzz: mutated encodings of every tag and random bytes decode or throw DecodeError, allocating no more than they hold; frames come out as written or FrameError", async () => {
  // Its own program (a decode that never returns is stopped from outside);
  // tests/stress/ runs it longer.
  const out = await runProgram(
    new URL("./fixtures/fuzz_wire.ts", import.meta.url),
    [],
    ["3000", "1"],
  );
  assert.match(out.stdout, /^ok \d+ \d+ \d+\n$/, out.stdout + out.stderr);
});

Deno.test("codec: nothing past the end given is read (a value decoded in place in a bigger buffer)", () => {
  const enc = new Encoder();
  const dec = new Decoder();
  const n = enc.encode([1, "two", { three: 3 }, new Uint8Array(9)]);
  // Zeros after it: read as the value's, they end it early (no hang before the fix).
  const whole = new Uint8Array(n + 64);
  enc.copyTo(whole, 0, 0, n);
  deepStrictEqual(dec.decode(whole, 0, n), [
    1,
    "two",
    { three: 3 },
    new Uint8Array(9),
  ]);
  for (let cut = 0; cut < n; cut++) {
    // The bytes past the cut are there, but not the value's.
    throws(() => dec.decode(whole, 0, cut), DecodeError, `cut at ${cut}`);
  }
  throws(() => dec.decode(whole, 0, whole.length + 1), DecodeError);
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

/** One encoder and decoder through the random piecewise copy. */
function clone(v: unknown, seed = 7): unknown {
  return roundTrip(new Encoder(), new Decoder(), v, rng(seed), seed % 2 === 0);
}

class Vec {
  constructor(public x: number, public cb?: () => void) {}
  get len(): number {
    return Math.abs(this.x);
  }
}

Deno.test("codec: typed arrays keep their offsets and the buffers they share", () => {
  const ab = new ArrayBuffer(32);
  new Uint8Array(ab).forEach((_, i, a) => a[i] = i);
  const big = new ArrayBuffer(RAW_MIN * 3);
  new Uint8Array(big).fill(9);
  const whole = new Uint8Array(ab);
  const part = new Uint8Array(ab, 3, 4);
  const cases: unknown[] = [
    new Float64Array(ab, 8, 2),
    new DataView(ab, 4, 8),
    [new Float64Array(ab, 8, 1), new Uint8Array(ab)],
    [whole, ab],
    [ab, whole],
    [whole, new Int32Array(ab)],
    [whole, whole.subarray(2)],
    { a: new Uint16Array(ab, 2, 3), b: new DataView(ab), c: [ab] },
    new Uint8Array(big, 16, RAW_MIN),
    [new Uint8Array(big), new Uint8Array(big, 8), 1, new Uint8Array(big, 8)],
    new Map([[1, part]]),
    [part, new Map([["v", part]]), new Set([ab])],
    new ArrayBuffer(4, { maxByteLength: 64 }),
    new Uint8Array(0),
    [new Uint8Array(0), new Uint8Array(0)],
  ];
  cases.forEach((v, i) => {
    const got = clone(v, i);
    assertSameClone(got, structuredClone(v), `case ${i}`);
  });
  // The decoded views' buffer is private: it aliases no other memory.
  const [f, u] = clone([new Float64Array(ab, 8, 1), new Uint8Array(ab)]) as [
    Float64Array,
    Uint8Array,
  ];
  assertEquals(f.buffer, u.buffer);
  assertEquals(f.buffer.byteLength, 32);
  assertEquals(f.byteOffset, 8);
});

Deno.test("codec: arrays keep their other keys and holes; Map, Set, Date, RegExp, wrappers, errors and class instances come back as structured clone gives them", () => {
  const match = /(?<year>\d{4})/.exec("in 2024")!;
  const holey = [1, , 3] as unknown[] & { k?: string };
  holey.k = "v";
  const sparse: unknown[] = [];
  sparse[100_000] = "far";
  class Sub extends Array {}
  const shared = { s: 1 };
  const cyclicError = new Error("loop") as Error & { cause?: unknown };
  cyclicError.cause = cyclicError;
  const mapCycle = new Map<string, unknown>();
  mapCycle.set("self", mapCycle);
  const renamed = new TypeError("t");
  renamed.name = "RangeError";
  const cases: unknown[] = [
    Object.assign([1, 2], { extra: "x" }),
    Object.assign([], { k: 1 }),
    match,
    holey,
    sparse,
    Sub.from([1, 2]),
    [shared, new Map([[shared, shared]]), new Set([shared]), { shared }],
    mapCycle,
    [new Date(0), new Date(NaN), /a+\//gimsuy, /x/dv],
    [new Number(-0), new String("s"), new Boolean(false), Object(2n ** 70n)],
    [
      new Error("e"),
      new RangeError("r", { cause: { a: [1] } }),
      new TypeError(),
      renamed,
      new (class MyError extends Error {})("mine"),
      new Deno.errors.NotFound("gone"),
      new DOMException("m", "AbortError"),
      cyclicError,
    ],
    new Vec(-2),
    [new TextEncoder(), new Event("x")],
    Object.assign(Object.create(null), { n: null }),
    Object.setPrototypeOf(new Date(3), null),
    { [Symbol.toStringTag]: "Tagged", a: 1 },
  ];
  cases.forEach((v, i) => {
    const got = clone(v, i);
    assertSameClone(got, structuredClone(v), `case ${i}`);
  });
  const e = clone(new DOMException("m", "NotFoundError")) as DOMException;
  assert(e instanceof DOMException && e.code === 8);
});

Deno.test("codec: what structured clone refuses, or a queue cannot carry, throws a DataCloneError naming path, type and fix; the encoder goes on", async () => {
  const enc = new Encoder();
  const dec = new Decoder();
  const detached = new ArrayBuffer(8);
  const onDetached = new Uint8Array(new ArrayBuffer(8));
  detached.transfer();
  onDetached.buffer.transfer();
  const key = await crypto.subtle.generateKey(
    { name: "HMAC", hash: "SHA-256" },
    true,
    ["sign"],
  );
  const channel = new MessageChannel();
  const args = (function (..._: unknown[]) {
    return arguments;
  })(1);
  class Tagged {
    get [Symbol.toStringTag]() {
      return "Tagged";
    }
    cb = () => 1;
  }
  // [value, message, whether structuredClone copies it (a queue cannot)].
  // structuredClone refuses a URL, Headers, ... only at the top: nested,
  // it makes them {}; the codec refuses them everywhere.
  const cases: [unknown, RegExp, boolean][] = [
    [
      new URL("http://a/"),
      /^item is a URL: .*platform object.*new URL\(href\)/,
      false,
    ],
    [
      { u: new URLSearchParams("a=1") },
      /^item\.u is a URLSearchParams: .*params\.toString\(\)/,
      true,
    ],
    [
      [new Headers({ a: "b" })],
      /^item\[0\] is a Headers: .*\[\.\.\.headers\]/,
      true,
    ],
    [new Request("http://a/"), /^item is a Request: .*arrayBuffer\(\)/, false],
    [new Response("x"), /^item is a Response: .*arrayBuffer\(\)/, false],
    [
      new ReadableStream(),
      /^item is a ReadableStream: .*platform object/,
      false,
    ],
    [new Map([["k", new URL("http://a/")]]), /^item\.get\(k\) is a URL/, true],
    [new Blob(["x"]), /^item is a Blob: .*await blob\.arrayBuffer\(\)/, true],
    [
      { f: new File(["x"], "f.txt") },
      /^item\.f is a File: .*arrayBuffer/,
      true,
    ],
    [key, /^item is a CryptoKey: .*exportKey/, true],
    [channel.port1, /^item is a MessagePort: .*Process args/, false],
    [
      new Proxy({ a: 1 }, {}),
      /^item is a Proxy: structured clone cannot copy a Proxy/,
      false,
    ],
    [[1, new Proxy([1], {})], /^item\[1\] is a Proxy/, false],
    [new Set([new Proxy(new Map(), {})]), /^item\.<item 0> is a Proxy/, false],
    [Promise.resolve(1), /^item is a Promise: it cannot be cloned/, false],
    [
      { w: new WeakRef({}) },
      /^item\.w is a WeakRef: it cannot be cloned/,
      false,
    ],
    [[1].values(), /^item is a .*: it cannot be cloned/, false],
    [
      new Intl.NumberFormat(),
      /^item is a NumberFormat: it cannot be cloned/,
      false,
    ],
    [args, /^item is a .*: it cannot be cloned/, false],
    [Object(Symbol("s")), /^item is a Symbol: it cannot be cloned/, false],
    [{ d: detached }, /^item\.d is a ArrayBuffer: .*detached/, false],
    [[onDetached], /^item\[0\] is a Uint8Array: .*detached/, false],
    [
      new Uint8Array(new ArrayBuffer(4, { maxByteLength: 8 })),
      /^item is a Uint8Array: it views a resizable ArrayBuffer.*slice\(\)/,
      true,
    ],
    [new Error("x", { cause: () => 1 }), /^item\.cause is a function/, false],
    [{ v: new Vec(1, () => {}) }, /^item\.v\.cb is a function/, false],
    [new Tagged(), /^item\.cb is a function/, false],
    [Object.assign([1], { f: Symbol("k") }), /^item\.f is a symbol/, false],
  ];
  try {
    for (const [value, pattern, clonable] of cases) {
      let cloned = true;
      try {
        structuredClone(value);
      } catch {
        cloned = false;
      }
      assertEquals(cloned, clonable, `structuredClone of ${pattern}`);
      throws(() => enc.encode(value), (e: unknown) => {
        assert(e instanceof EncodeError && e instanceof TypeError);
        assertEquals(e.name, "DataCloneError");
        assert(pattern.test(e.message), e.message);
        // postMessage carries these faithfully; the rest it refuses or mangles.
        assertEquals(
          e.portable,
          /Blob|File|CryptoKey|MessagePort|resizable/.test(e.message),
          e.message,
        );
        return true;
      });
      const n = enc.encode({ ok: [1] });
      deepStrictEqual(dec.decode(enc.toBytes(), 0, n), { ok: [1] });
    }
  } finally {
    channel.port1.close();
    channel.port2.close();
  }
});

Deno.test("Queue and Pipe carry views and array keys as structured clone does; what cannot be sent throws a DataCloneError and the queue goes on", async () => {
  const ab = new ArrayBuffer(16);
  new Uint8Array(ab).forEach((_, i, a) => a[i] = i);
  const item = [
    new Float64Array(ab, 8, 1),
    new Uint8Array(ab),
    Object.assign([1, 2], { extra: "x" }),
    new Map([[1, new Uint8Array(ab, 4, 4)]]),
  ];
  const want = structuredClone(item);
  using q = new Queue<unknown>();
  await q.put(item);
  assertSameClone(await q.get(), want);
  for (
    const bad of [
      new Blob(["x"]),
      new URL("http://a/"),
      new Proxy({}, {}),
      new Response("x"),
    ]
  ) {
    throws(
      () => q.putNowait(bad),
      (e: unknown) => (e as Error).name === "DataCloneError",
    );
    let error: unknown;
    try {
      await q.put({ bad });
    } catch (e) {
      error = e;
    }
    assert(error instanceof TypeError, "put must throw");
    assert(/^item\.bad is a /.test(error.message), error.message);
  }
  assertEquals(q.qsize(), 0, "a failed put takes no slot");
  await q.put("fine");
  assertEquals(await q.get(), "fine");

  using ends = Pipe();
  const [a, b] = ends;
  a.send(item);
  assertSameClone(await b.recv(), want);
  // A Blob is carried by the pipe's port (structured clone keeps it).
  a.send(new Blob(["x"]));
  assert((await b.recv()) instanceof Blob);
  throws(() => a.send([new Proxy({}, {})]), TypeError);
  a.send("after");
  assertEquals(await b.recv(), "after");
});
