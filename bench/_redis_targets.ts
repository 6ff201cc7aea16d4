// The task of bench/redis_bench.ts (imported by the worker programs).

/** The tiny task. */
export function square(x: number): number {
  return x * x;
}
