/**
 * Python's `multiprocessing` for Deno: processes, pipes, queues, locks,
 * shared memory, managers and pools, on Web Workers, MessageChannel and
 * SharedArrayBuffer/Atomics.
 *
 * @example
 * ```ts
 * import { Pipe } from "@mp/multiprocessing";
 * const [a, b] = Pipe();
 * a.send("hello");
 * console.log(await b.recv()); // "hello"
 * a.close();
 * b.close();
 * ```
 *
 * @module
 */
export * from "./lib/errors.ts";
// Listed, not `export *`: reduction.ts also holds what a child uses to load
// the library when it needs it (loadRebuilders), which is not API.
export {
  findUncloneable,
  rebuild,
  reduce,
  type Reduced,
  reduceSymbol,
  registerRebuilder,
  type Shareable,
} from "./lib/reduction.ts";
export {
  activeChildren,
  cpuCount,
  currentProcess,
  exit,
  parentProcess,
  type Permissions,
  Process,
  type ProcessOptions,
} from "./lib/process.ts";
export * from "./lib/connection.ts";
export * from "./lib/queues.ts";
export * from "./lib/synchronize.ts";
export * from "./lib/sharedctypes.ts";
export * from "./lib/pool.ts";
export * from "./lib/managers.ts";
export * from "./lib/trace.ts";
