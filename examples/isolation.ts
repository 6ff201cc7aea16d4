/**
 * The "theory" tutorial, first program: each process has its own memory. The child
 * changes its copy of the global list; the main program's stays empty.
 *
 * Run: `deno task example:isolation`
 *
 * @module
 */
import { Process } from "../mod.ts";

// Empty global list, as in the Python program.
const result: number[] = [];

/** Squares the numbers into the (child's own) global list. */
export function squareList(mylist: number[]) {
  for (const num of mylist) result.push(num * num);
  console.log(`Result(in process p1): [${result.join(", ")}]`);
}

if (import.meta.main) {
  const mylist = [1, 2, 3, 4];
  const p1 = new Process({ target: squareList, args: [mylist] });
  await p1.start();
  await p1.join();
  console.log(`Result(in main program): [${result.join(", ")}]`);
}
