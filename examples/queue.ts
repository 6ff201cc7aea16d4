/**
 * The "theory" tutorial's Queue program (a child puts squares, another prints them until
 * the queue is empty), then the "classes" tutorial's colors pushed and popped.
 *
 * Run: `deno task example:queue`
 *
 * @module
 */
import { Process, Queue } from "../mod.ts";

/** The "theory" tutorial: puts the square of each number of `mylist` on `q`. */
export async function squareList(mylist: number[], q: Queue<number>) {
  for (const num of mylist) await q.put(num * num);
}

/** The "theory" tutorial: prints the queue's elements until it is empty. */
export async function printQueue(q: Queue<number>) {
  console.log("Queue elements:");
  while (!q.empty()) console.log(await q.get());
  console.log("Queue is now empty!");
}

if (import.meta.main) {
  // The "theory" tutorial: input list
  const mylist = [1, 2, 3, 4];
  // creating multiprocessing Queue
  const q = new Queue<number>();
  // creating new processes
  const p1 = new Process({ target: squareList, args: [mylist, q] });
  const p2 = new Process({ target: printQueue, args: [q] });
  // running process p1 to square list
  await p1.start();
  await p1.join();
  // running process p2 to get queue elements
  await p2.start();
  await p2.join();

  // The "classes" tutorial: the Queue class.
  const colors = ["red", "green", "blue", "black"];
  let cnt = 1;
  // instantiating a queue object
  const queue = new Queue<string>();
  console.log("pushing items to queue:");
  for (const color of colors) {
    console.log("item no: ", cnt, " ", color);
    await queue.put(color);
    cnt += 1;
  }
  console.log("\npopping items from queue:");
  cnt = 0;
  while (!queue.empty()) {
    console.log("item no: ", cnt, " ", await queue.get());
    cnt += 1;
  }
}
