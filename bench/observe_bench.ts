/**
 * What watching a pool costs: `map(square, range(100_000))` (default
 * chunksize, and chunksize 1: a result per item) with and without progress
 * (a callback, and the "always" line on stderr), and with tracing on; and,
 * given `--base <other checkout>/mod.ts`, this checkout with tracing off
 * beside that one (e.g. the commit before the trace hooks): the cost of the
 * hooks when off. Rounds are interleaved (A, B, A, B, ...), and the ratio
 * of each round's pair is what is printed (the machine is noisy: only ratios
 * taken in the same run mean anything).
 *
 * Run: `deno run --allow-all bench/observe_bench.ts [--quick] [--base path/mod.ts]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Pool, startTrace, stopTrace } from "../mod.ts";
import { median } from "./_stats.ts";

/** The tiny task. */
export function square(x: number): number {
  return x * x;
}

type MapFn = (items: number[]) => Promise<unknown>;

/** Runs `a` and `b` in turns; returns each one's times (ms) and b/a per round. */
async function pair(rounds: number, a: MapFn, b: MapFn, items: number[]) {
  const ta: number[] = [], tb: number[] = [], ratio: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate who goes first, so that a slow moment hits both alike.
    const order = i % 2 ? [b, a] : [a, b];
    const t: number[] = [];
    for (const f of order) {
      const t0 = performance.now();
      await f(items);
      t.push(performance.now() - t0);
    }
    const [x, y] = i % 2 ? [t[1], t[0]] : t;
    ta.push(x);
    tb.push(y);
    ratio.push(y / x);
  }
  return { ta, tb, ratio };
}

function quartiles(xs: number[]): [number, number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return [at(0.25), at(0.5), at(0.75)];
}

function report(name: string, r: Awaited<ReturnType<typeof pair>>): void {
  const pct = (x: number) => `${((x - 1) * 100).toFixed(1)}%`;
  const [q1, mid, q3] = quartiles(r.ratio);
  console.log(
    `${name.padEnd(44)} ${median(r.ta).toFixed(1)} ms -> ${
      median(r.tb).toFixed(1)
    } ms   cost: median ${pct(mid)} (middle half of rounds ${pct(q1)} .. ${
      pct(q3)
    }); best ${Math.min(...r.ta).toFixed(1)} -> ${
      Math.min(...r.tb).toFixed(1)
    } ms: ${pct(Math.min(...r.tb) / Math.min(...r.ta))}`,
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { quick: { type: "boolean" }, base: { type: "string" } },
  });
  const rounds = values.quick ? 4 : 30;
  const N = 100_000;
  const big = Array.from({ length: N }, (_, i) => i);
  await using pool = new Pool({ processes: 2 });
  await pool.map(square, big); // warm up
  await pool.map(square, big, 1);
  const plain: MapFn = (xs) => pool.map(square, xs);
  const plain1: MapFn = (xs) => pool.map(square, xs, 1);
  let calls = 0;
  const cb = () => void calls++;
  console.log(`map(square, range(${N})) on 2 workers, ${rounds} rounds each`);
  report(
    "progress callback, default chunksize",
    await pair(
      rounds,
      plain,
      (xs) => pool.map(square, xs, { progress: cb }),
      big,
    ),
  );
  report(
    "progress callback, chunksize 1",
    await pair(
      rounds,
      plain1,
      (xs) => pool.map(square, xs, { chunksize: 1, progress: cb }),
      big,
    ),
  );
  report(
    'progress "always" (stderr), chunksize 1',
    await pair(
      rounds,
      plain1,
      (xs) => pool.map(square, xs, { chunksize: 1, progress: "always" }),
      big,
    ),
  );
  const trace = await Deno.makeTempFile({ suffix: ".json" });
  const traced: MapFn = async (xs) => {
    startTrace(trace);
    try {
      await pool.map(square, xs, 1);
    } finally {
      stopTrace();
    }
  };
  report("tracing on, chunksize 1", await pair(rounds, plain1, traced, big));
  console.log(
    `  (a trace of one such map: ${(await Deno.stat(trace)).size} bytes)`,
  );
  await Deno.remove(trace);
  if (values.base) {
    const base = await import(
      new URL(values.base, `file://${Deno.cwd()}/`).href
    );
    await using other = new base.Pool({
      processes: 2,
      module: import.meta.url,
    });
    await other.map(square, big);
    await other.map(square, big, 1);
    report(
      "tracing off: base -> this, default chunksize",
      await pair(rounds, (xs) => other.map(square, xs), plain, big),
    );
    report(
      "tracing off: base -> this, chunksize 1",
      await pair(rounds, (xs) => other.map(square, xs, 1), plain1, big),
    );
  }
}
