/**
 * The benchmarks' rounds, in one place: every side (ours, Python's, a raw
 * baseline) runs once a round, the side that goes first rotating from round
 * to round, so that the machine's drifts (a noisy neighbour, a warming CPU)
 * fall on every side alike and ratios can be taken within a round.
 *
 * @module
 */

/**
 * The rounds a bench runs: `--rounds N` from its arguments, else `quick`
 * (with `--quick`) or `full`.
 *
 * @throws {RangeError} for a `--rounds` that is not a positive integer.
 */
export function roundsFromArgs(full = 5, quick = 2): number {
  const at = Deno.args.indexOf("--rounds");
  if (at < 0) return Deno.args.includes("--quick") ? quick : full;
  const n = Number(Deno.args[at + 1]);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `--rounds ${
        Deno.args[at + 1] ?? ""
      }: pass a positive integer, e.g. --rounds 5`,
    );
  }
  return n;
}

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
