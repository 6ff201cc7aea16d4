// The serial baseline's worker: runs a task over all its items one after
// another and answers how long that took, timed where it ran (a worker, as
// the pools' tasks run: the main thread ran `fib` ~20% slower, and once in a
// while ran `floaty` 8x slower for a whole round).
import * as tasks from "../_peer_tasks.ts";

type Fn = (x: unknown) => unknown;
/** The worker's global scope (this file is type-checked with the main thread's). */
const scope = self as unknown as {
  onmessage: (e: MessageEvent) => void;
  postMessage(message: unknown): void;
};

scope.onmessage = (e: MessageEvent) => {
  const { name, items } = e.data;
  const fn = tasks[name as keyof typeof tasks] as Fn;
  const t0 = performance.now();
  for (const x of items as unknown[]) fn(x);
  scope.postMessage(performance.now() - t0);
};
