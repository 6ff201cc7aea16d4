/**
 * The benchmarks' rounds, in one place: every side (ours, Python's, a raw
 * baseline) runs once a round, the side that goes first rotating from round
 * to round, so that the machine's drifts (a noisy neighbour, a warming CPU)
 * fall on every side alike and ratios can be taken within a round.
 *
 * @module
 */

/** What one side gives for one round. */
export type Side<T> = () => Promise<T>;

/**
 * Runs `rounds` rounds of every side in `sides`, the first side rotating;
 * returns, for each side, its results round by round.
 *
 * @example Two sides, three rounds
 * ```ts ignore
 * const r = await interleave(3, { ours: runOurs, python: runPython });
 * const ratios = r.ours.map((x, i) => x / r.python[i]);
 * ```
 */
export async function interleave<T extends Record<string, Side<unknown>>>(
  rounds: number,
  sides: T,
): Promise<{ [K in keyof T]: Awaited<ReturnType<T[K]>>[] }> {
  const names = Object.keys(sides) as (keyof T)[];
  const out = Object.fromEntries(names.map((n) => [n, []])) as unknown as {
    [K in keyof T]: Awaited<ReturnType<T[K]>>[];
  };
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length];
      (out[name] as unknown[]).push(await sides[name]());
    }
  }
  return out;
}
