// The raw baseline's worker: a plain Web Worker that runs the shared task
// functions on what it is posted, with no pool around it.
import * as tasks from "../_peer_tasks.ts";

type Fn = (x: unknown) => unknown;
/** The worker's global scope (this file is type-checked with the main thread's). */
const scope = self as unknown as {
  onmessage: (e: MessageEvent) => void;
  postMessage(message: unknown): void;
};

scope.onmessage = (e: MessageEvent) => {
  const { id, name, arg, items } = e.data;
  const fn = tasks[name as keyof typeof tasks] as Fn;
  scope.postMessage({
    id,
    result: items ? (items as unknown[]).map((x) => fn(x)) : fn(arg),
  });
};
