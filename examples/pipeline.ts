/**
 * The "pipeline" tutorial's pipeline: an entry process puts the numbers 0..4999 on queue 1,
 * process 1 squares each into queue 2, process 2 takes each square root, all
 * at once, continuously. A `null` sent after the last number (a sentinel)
 * ends each process in turn, and process 2 prints a summary at the end.
 *
 * Run: `deno task example:pipeline`
 *
 * @module
 */
import { Process, Queue } from "../mod.ts";

const ENTRY_ARRAY = Array.from({ length: 5000 }, (_, i) => i); // range(0, 5000)

/** Python prints floats with a decimal point: 4.0, not 4. */
function pyFloat(x: number): string {
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

/** Entry point (WEB): feeds the numbers one by one, then the sentinel. */
export async function processInit(queueIn: Queue<number | null>) {
  for (const val of ENTRY_ARRAY) {
    console.log("entering the Q : ", val);
    await queueIn.put(val);
  }
  await queueIn.put(null);
}

/** Process 1's function: the square. */
export function f1(value: number): number {
  return value ** 2;
}

/** Process 1: squares what comes in from queue 1 into queue 2. */
export async function process1(
  queueIn: Queue<number | null>,
  queueOut: Queue<number | null>,
) {
  while (true) {
    try {
      const tmp = await queueIn.get();
      if (tmp === null) {
        await queueOut.put(null); // pass the sentinel on
        break;
      }
      console.log("tmp process1 : ", tmp);
      await queueOut.put(f1(tmp));
    } catch (e) {
      console.log("Exception 1 : ", e);
      break;
    }
  }
}

/** Process 2's function: the square root. */
export function f2(value: number): number {
  return Math.sqrt(value);
}

/** Process 2: takes the square root of what comes in from queue 2. */
export async function process2(queueIn: Queue<number | null>) {
  const results: number[] = [];
  while (true) {
    try {
      const tmp = await queueIn.get();
      if (tmp === null) break;
      const root = f2(tmp);
      console.log("tmp process2 : ", pyFloat(root));
      results.push(root);
      // queueOut.put(f2(tmp))
    } catch (e) {
      console.log("Exception 2 : ", e);
      break;
    }
  }
  const inOrder = results.length === ENTRY_ARRAY.length &&
    results.every((v, i) => v === ENTRY_ARRAY[i]);
  console.log(
    `pipeline summary: ${results.length} of ${ENTRY_ARRAY.length} values back, in order: ${inOrder}`,
  );
}

if (import.meta.main) {
  // First we instantiate the queues
  const queue1 = new Queue<number | null>();
  const queue2 = new Queue<number | null>();
  // Then we instantiate the processes.
  // The worker init is just the process to fill queue1 with numbers
  const workerInit = new Process({ target: processInit, args: [queue1] });
  const worker1 = new Process({ target: process1, args: [queue1, queue2] });
  const worker2 = new Process({ target: process2, args: [queue2] });
  for (const w of [workerInit, worker1, worker2]) await w.start();
  for (const w of [workerInit, worker1, worker2]) await w.join();
}
