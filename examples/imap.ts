/**
 * Python's `imap` semantics, as in the `multiprocessing` docs' pool examples
 * (`Doc/includes/mp_pool.py`): a task that raises rejects in its place and
 * the results after it still come; `it.next(timeoutMs)` (Python's
 * `it.next(timeout)`) gives up with `TimeoutError` and the result comes to
 * the next call; the user's exported error class arrives as itself; objects
 * print what they are. Output:
 *
 * ```
 * Pool { state: "RUN", processes: 2 }
 * 0
 * 1
 * raised Unlucky: 2 is unlucky (unlucky: true)
 * 9
 * 16
 * done
 * not ready after 10 ms
 * 200
 * ```
 *
 * Run: `deno task example:imap`
 *
 * @module
 */
import { Pool, TimeoutError } from "../mod.ts";

/** The user's own error class: exported, so it arrives as itself. */
export class Unlucky extends Error {
  override name = "Unlucky";
}

/** x squared; 2 raises. */
export function squareUnlessTwo(x: number): number {
  if (x === 2) throw new Unlucky(`${x} is unlucky`);
  return x * x;
}

/** Waits `ms`, then returns it. */
export async function sleepy(ms: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
}

if (import.meta.main) {
  await using pool = new Pool({ processes: 2 });
  console.log(String(pool));

  // Python: `it = pool.imap(f, range(5))`, then `next(it)` five times.
  const it = pool.imap(squareUnlessTwo, [0, 1, 2, 3, 4]);
  for (let i = 0; i < 5; i++) {
    try {
      console.log((await it.next()).value);
    } catch (e) {
      console.log(`raised ${e} (unlucky: ${e instanceof Unlucky})`);
    }
  }
  if ((await it.next()).done) console.log("done");

  // Python: `it.next(timeout=0.01)` raises TimeoutError; the result stays.
  const slow = pool.imap(sleepy, [200]);
  try {
    await slow.next(10);
  } catch (e) {
    if (e instanceof TimeoutError) console.log("not ready after 10 ms");
  }
  console.log((await slow.next(10_000)).value);
}
