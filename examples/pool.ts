/**
 * The "classes" tutorial's Pool program: `work_log` over four jobs on a pool of two
 * workers (A waits 5 s, B 2 s, C 1 s, D 3 s). A and B start; when B is done
 * its worker takes C, then D; A finishes while D still waits:
 *
 * ```
 *  Process A waiting 5 seconds
 *  Process B waiting 2 seconds
 *  Process B Finished.
 *  Process C waiting 1 seconds
 *  Process C Finished.
 *  Process D waiting 3 seconds
 *  Process A Finished.
 *  Process D Finished.
 * ```
 *
 * Run: `deno task example:pool` (`--scale 0.01` makes every wait 100 times
 * shorter; the lines stay the same).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Pool } from "../mod.ts";

const work: [string, number][] = [["A", 5], ["B", 2], ["C", 1], ["D", 3]];

let scale = 1;

/** Runs once in each worker (the pool's initializer): how much to shorten the waits. */
export function setScale(s: number) {
  scale = s;
}

/** Python's `work_log`: says it waits, waits the job's seconds, says it finished. */
export async function workLog(workData: [string, number]) {
  console.log(` Process ${workData[0]} waiting ${workData[1]} seconds`);
  await new Promise((r) => setTimeout(r, workData[1] * 1000 * scale));
  console.log(` Process ${workData[0]} Finished.`);
}

/** Python's `pool_handler`: a pool of 2 maps `workLog` over the jobs. */
export async function poolHandler(s = 1) {
  await using p = new Pool({
    processes: 2,
    initializer: setScale,
    initargs: [s],
  });
  await p.map(workLog, work);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { scale: { type: "string", default: "1" } },
  });
  const s = Number(values.scale);
  if (!(s > 0)) {
    throw new RangeError(
      `--scale must be a positive number (1 = real seconds), got ${values.scale}`,
    );
  }
  await poolHandler(s);
}
