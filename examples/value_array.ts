/**
 * The "theory" tutorial's "Shared memory" program: a child squares a list into a shared
 * Array and sums it into a shared Value; the main program then sees both.
 * (Python's `multiprocessing.Array` is `SharedArray` here.)
 *
 * Run: `deno task example:value-array`
 *
 * @module
 */
import { Process, SharedArray, Value } from "../mod.ts";

/** Python's `result[:]` as Python prints it. */
function show(arr: ArrayLike<number>): string {
  return `[${Array.from(arr).join(", ")}]`;
}

/** The child: fills `result` with squares and `squareSum` with their sum. */
export function squareList(
  mylist: number[],
  result: SharedArray<"i">,
  squareSum: Value<"i">,
) {
  // append squares of mylist to result array
  for (const [idx, num] of mylist.entries()) result[idx] = num * num;
  // square_sum value
  squareSum.value = result.reduce((a, b) => a + b, 0);
  // print result array
  console.log(`Result(in process p1): ${show(result)}`);
  // print square_sum Value
  console.log(`Sum of squares(in process p1): ${squareSum.value}`);
}

if (import.meta.main) {
  // input list
  const mylist = [1, 2, 3, 4];
  // creating Array of int data type with space for 4 integers
  const result = new SharedArray("i", 4);
  // creating Value of int data type
  const squareSum = new Value("i");
  // creating new process
  const p1 = new Process({
    target: squareList,
    args: [mylist, result, squareSum],
  });
  // starting process
  await p1.start();
  // wait until the process is finished
  await p1.join();
  // print result array
  console.log(`Result(in main program): ${show(result)}`);
  // print square_sum Value
  console.log(`Sum of squares(in main program): ${squareSum.value}`);
}
