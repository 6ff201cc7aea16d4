/**
 * The "article" tutorial's task: two processes increment a shared Value 100 times each,
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

/** The settings every child of one run shares. */
export interface Run {
  lock: Lock;
  guard: Guard;
  times: number;
  pause: number;
  go: Event;
}

/** Runs `update` `times` times, guarded as `guard` says. */
async function repeat(run: Run, update: () => void): Promise<void> {
  const { lock, guard, times, pause, go } = run;
  await go.wait(); // all four start together
  for (let i = 0; i < times; i++) {
    if (pause) await sleep(pause);
    if (guard === "none") {
      update(); // read, add, write: another process may write in between
    } else if (guard === "acquire") {
      await lock.acquire();
      update();
      lock.release();
    } else {
      using _ = await lock.hold(); // with lock:
      update();
    }
  }
}

/** Adds 1 to `number`, `times` times. */
export async function add100(number: Value<"i">, run: Run) {
  await repeat(run, () => number.value += 1);
}

/** Adds 1 to every element of `numbers`, `times` times. */
export async function add100Array(numbers: SharedArray<"d">, run: Run) {
  await repeat(run, () => {
    for (let i = 0; i < numbers.length; i++) numbers[i] += 1;
  });
}

const show = (arr: ArrayLike<number>) => `[${Array.from(arr).join(", ")}]`;

/** One run of the four processes. */
async function runAll(guard: Guard, times: number, pause: number) {
  const lock = new Lock();
  const go = new Event();
  const sharedNumber = new Value("i", 0, { lock: false });
  console.log("Value at beginning:", sharedNumber.value);
  const sharedArray = new SharedArray("d", [0.0, 100.0, 200.0], {
    lock: false,
  });
  console.log("Array at beginning:", show(sharedArray));
  const settings: Run = { lock, guard, times, pause, go };
  const processes = [
    new Process({ target: add100, args: [sharedNumber, settings] }),
    new Process({ target: add100, args: [sharedNumber, settings] }),
    new Process({ target: add100Array, args: [sharedArray, settings] }),
    new Process({ target: add100Array, args: [sharedArray, settings] }),
  ];
  for (const p of processes) await p.start();
  go.set();
  for (const p of processes) await p.join();
  console.log("Value at end:", sharedNumber.value);
  console.log("Array at end:", show(sharedArray));
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
  await runAll("none", times, pause);
  console.log("--- with lock.acquire() / lock.release() ---");
  await runAll("acquire", times, pause);
  console.log(
    "--- with the lock as a context manager (using _ = await lock.hold()) ---",
  );
  await runAll("using", times, pause);
  console.log("end main");
}
