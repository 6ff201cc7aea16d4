/**
 * The benchmarks' statistics, in one place: the median of a sample, and
 * "median (min-max)" of per-round figures, as every bench prints them.
 *
 * @module
 */

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `"min-max"` of `xs`, each as `show` writes it (default: 2 decimals). */
export function minMax(
  xs: readonly number[],
  show: (x: number) => string = (x) => x.toFixed(2),
): string {
  return `${show(Math.min(...xs))}-${show(Math.max(...xs))}`;
}

/**
 * `"median (min-max)"` of `xs`, each with `digits` decimals and `unit`
 * after it; `"-"` for none.
 */
export function spread(xs: readonly number[], digits = 2, unit = ""): string {
  if (xs.length === 0) return "-";
  const f = (x: number) => x.toFixed(digits) + unit;
  return `${f(median(xs))} (${minMax(xs, f)})`;
}

/** Round by round, `a[r] / b[r]`: ratios taken within a round. */
export function ratios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, r) => x / b[r]);
}
