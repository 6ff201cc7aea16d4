/**
 * The "article" tutorial's "Process Pools" section: a pool of worker processes (one per
 * CPU by default) and its important methods, on `cube` over `range(10)`:
 *
 * 1. `map(func, iterable[, chunksize])`: chops the items into chunks, blocks
 *    (awaits) until the results are ready, in order;
 * 2. `close()`: no more tasks; the workers exit once the submitted ones are
 *    done;
 * 3. `join()`: waits for the workers to exit (after `close()` or
 *    `terminate()`);
 * 4. `apply(func, args)`: calls `func(...args)` in ONE worker;
 *
 * and the async variants `mapAsync` / `applyAsync` (Python's `map_async` /
 * `apply_async`), which return at once and run callbacks when the result is
 * ready. Output:
 *
 * ```
 * map: [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]
 * map, chunksize 3: [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]
 * apply: [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]
 * mapAsync callback: [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]
 * applyAsync callback: 64
 * closed and joined
 * [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]
 * ```
 *
 * Run: `deno task example:pool-methods`
 *
 * @module
 */
import { Pool } from "../mod.ts";

/** The work: a number cubed. */
export function cube(number: number): number {
  return number * number * number;
}

/** A list printed as Python prints it. */
function show(list: number[]): string {
  return `[${list.join(", ")}]`;
}

if (import.meta.main) {
  const numbers = Array.from({ length: 10 }, (_, i) => i); // range(10)
  // By default this allocates the available processors (cpuCount()).
  const p = new Pool();

  // 1> map(func, iterable[, chunksize])
  const result = await p.map(cube, numbers);
  console.log("map:", show(result));
  console.log("map, chunksize 3:", show(await p.map(cube, numbers, 3)));

  // 4> apply(func, args): func runs in ONE of the workers.
  const applied: number[] = [];
  for (const i of numbers) applied.push(await p.apply(cube, [i]));
  console.log("apply:", show(applied));

  // The async variants return an AsyncResult at once; callbacks run when ready.
  const mapped = p.mapAsync(cube, numbers, undefined, {
    callback: (r) => console.log("mapAsync callback:", show(r)),
  });
  await mapped.wait();
  const one = p.applyAsync(cube, [4], {
    callback: (r) => console.log("applyAsync callback:", r),
    errorCallback: (e) => console.error("applyAsync failed:", e),
  });
  await one.get(10_000);

  // 2> close() then 3> join().
  p.close();
  await p.join();
  console.log("closed and joined");
  console.log(show(result));
}
