/**
 * Seed 003's task: two processes increment a shared Value 100 times each,
 * two others add 1 to every element of a shared Array 100 times each. First
 * without a lock (a race: the end value may be below 200), then with
 * `lock.acquire()` / `lock.release()`, then with the lock as a context
 * manager: Python's `with lock:` is `using _ = await lock.hold();`.
 *
 * Run: `deno task example:race` (add `--iterations 100000 --no-sleep` to see
 * the race for sure).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Event, Lock, Process, SharedArray, Value } from "../mod.ts";

/** How each child guards its update: not at all, acquire/release, or `using`. */
export type Guard = "none" | "acquire" | "using";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Adds 1 to `number`, `times` times. */
export async function add100(
  number: Value<"i">,
  lock: Lock,
  guard: Guard,
  times: number,
  pause: number,
  go: Event,
) {
  await go.wait(); // all four start together
  for (let i = 0; i < times; i++) {
    if (pause) await sleep(pause);
    if (guard === "none") {
      number.value += 1; // read, add, write: another process may write between
    } else if (guard === "acquire") {
      await lock.acquire();
      number.value += 1;
      lock.release();
    } else {
      using _ = await lock.hold(); // with lock:
      number.value += 1;
    }
  }
}

/** Adds 1 to every element of `numbers`, `times` times. */
export async function add100Array(
  numbers: SharedArray<"d">,
  lock: Lock,
  guard: Guard,
  times: number,
  pause: number,
  go: Event,
) {
  await go.wait(); // all four start together
  for (let i = 0; i < times; i++) {
    if (pause) await sleep(pause);
    if (guard === "none") {
      for (let j = 0; j < numbers.length; j++) numbers[j] += 1;
    } else if (guard === "acquire") {
      await lock.acquire();
      for (let j = 0; j < numbers.length; j++) numbers[j] += 1;
      lock.release();
    } else {
      using _ = await lock.hold();
      for (let j = 0; j < numbers.length; j++) numbers[j] += 1;
    }
  }
}

const show = (arr: ArrayLike<number>) => `[${Array.from(arr).join(", ")}]`;

/** One run of the four processes; returns the Value's end value. */
export async function run(
  guard: Guard,
  times = 100,
  pause = 10,
): Promise<{ value: number; array: number[] }> {
  const lock = new Lock();
  const go = new Event();
  const sharedNumber = new Value("i", 0, { lock: false });
  console.log("Value at beginning:", sharedNumber.value);
  const sharedArray = new SharedArray("d", [0.0, 100.0, 200.0], {
    lock: false,
  });
  console.log("Array at beginning:", show(sharedArray));
  const rest = [lock, guard, times, pause, go] as const;
  const processes = [
    new Process({ target: add100, args: [sharedNumber, ...rest] }),
    new Process({ target: add100, args: [sharedNumber, ...rest] }),
    new Process({ target: add100Array, args: [sharedArray, ...rest] }),
    new Process({ target: add100Array, args: [sharedArray, ...rest] }),
  ];
  for (const p of processes) await p.start();
  go.set();
  for (const p of processes) await p.join();
  console.log("Value at end:", sharedNumber.value);
  console.log("Array at end:", show(sharedArray));
  return { value: sharedNumber.value, array: [...sharedArray] };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      iterations: { type: "string", default: "100" },
      "no-sleep": { type: "boolean", default: false },
    },
  });
  const times = Number(values.iterations);
  if (!Number.isInteger(times) || times < 0) {
    throw new RangeError(
      `--iterations must be a non-negative integer, got ${values.iterations}`,
    );
  }
  const pause = values["no-sleep"] ? 0 : 10;
  console.log(
    `--- without a lock (a race: the end value may be below ${2 * times}) ---`,
  );
  await run("none", times, pause);
  console.log("--- with lock.acquire() / lock.release() ---");
  await run("acquire", times, pause);
  console.log(
    "--- with the lock as a context manager (using _ = await lock.hold()) ---",
  );
  await run("using", times, pause);
  console.log("end main");
}
