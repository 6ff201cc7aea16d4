/**
 * The task functions every pool in `peers_bench.ts` runs, ours and the npm
 * pools alike (piscina and tinypool import this module as their worker;
 * workerpool and poolifier wrap it in `_peer_workers/`). Kept free of
 * imports, so that loading it costs every pool the same.
 *
 * @module
 */

/** The tiny task. */
export function square(x: number): number {
  return x * x;
}

/** CPU-bound, integer arithmetic (naive Fibonacci). */
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** CPU-bound, floating-point arithmetic: `x` is a float (e.g. 0.5). */
export function floaty(x: number): number {
  let s = 0;
  for (let i = 0; i < 4_000_000; i++) s += Math.sqrt(x + i) * 1.000001;
  return s;
}

/** A 1 MiB payload's task: the sum of its values. */
export function total(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}
