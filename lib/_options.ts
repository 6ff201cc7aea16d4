/**
 * The one check of an options object's keys: a misspelt option
 * (`{ procs: 2 }`) must fail, not be silently ignored.
 *
 * @module
 */

/**
 * Throws a TypeError naming the first key of `opts` not in `valid`, the
 * closest valid one when it looks like a typo, and all the valid ones.
 * `what` names the options: `"Pool option"`.
 */
export function checkKeys(
  opts: object,
  valid: readonly string[],
  what: string,
): void {
  for (const key of Object.keys(opts)) {
    if (valid.includes(key)) continue;
    const near = closest(key, valid);
    throw new TypeError(
      `unknown ${what} ${JSON.stringify(key)}${
        near ? ` (did you mean ${near}?)` : ""
      }: the options are ${valid.join(", ")}`,
    );
  }
}

/** The valid key `key` is most likely a typo of, if any. */
function closest(key: string, valid: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestCost = Infinity;
  for (const v of valid) {
    const d = distance(k, v.toLowerCase());
    // Near in spelling, an abbreviation (procs -> processes) or a longer
    // form (blocking -> block) of it.
    const lv = v.toLowerCase();
    const cost = d <= Math.max(1, Math.floor(v.length / 3))
      ? d
      : Math.min(k.length, lv.length) >= 3 &&
          (isSubsequence(k, lv) || k.startsWith(lv))
      ? d + 10
      : Infinity;
    if (cost < bestCost) [best, bestCost] = [v, cost];
  }
  return best;
}

function isSubsequence(a: string, b: string): boolean {
  let i = 0;
  for (const c of b) if (c === a[i]) i++;
  return a.length > 0 && b[0] === a[0] && i === a.length;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j] + 1,
        row[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length];
}
