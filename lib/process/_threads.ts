/**
 * `node:worker_threads`, loaded only where it is needed.
 *
 * The library needs it for `receiveMessageOnPort` (taking a port's message
 * without listening on the port: a listening port keeps the program alive)
 * and for unref'd workers (daemon children, pool workers, manager servers).
 * Loading it costs a fresh worker ~4 ms, a tenth of a child's start-up, so a
 * child loads it only when it gets something that uses it (a Pipe end, a
 * Pool, a manager proxy): their rebuilders and constructors call
 * {@linkcode loadThreads}, and the bootstrap waits for that load before it
 * runs the target. The main thread loads it at once.
 *
 * Code that needs it synchronously calls {@linkcode threads}: when the
 * background load has not finished (a shared object that arrived in a
 * blocking call, say), it is taken synchronously through
 * `process.getBuiltinModule`, which is correct but slow the first time
 * (~20 ms: it sets up Node's `process`).
 *
 * @module
 */

import type * as WorkerThreads from "node:worker_threads";

/** The `node:worker_threads` module. */
export type Threads = typeof WorkerThreads;

let loaded: Threads | undefined;
let loading: Promise<Threads> | undefined;

/** Starts loading `node:worker_threads` (once); settles when it is loaded. */
export function loadThreads(): Promise<Threads> {
  return loading ??= import("node:worker_threads").then((m) => loaded ??= m);
}

/** Hands over the module where it was imported statically (a Node-style worker's entry). */
export function provideThreads(m: Threads): void {
  loaded ??= m;
}

/** A load that is under way and has not finished, if any. */
export function threadsLoading(): Promise<Threads> | undefined {
  return loaded ? undefined : loading;
}

/** `node:worker_threads`, now (see the module notes for the slow path). */
export function threads(): Threads {
  if (loaded) return loaded;
  const proc = (globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown };
  }).process;
  const m = proc?.getBuiltinModule?.("node:worker_threads") as
    | Threads
    | undefined;
  if (!m) {
    throw new Error(
      "node:worker_threads is not loaded yet, and this Deno cannot load it synchronously (process.getBuiltinModule)",
    );
  }
  return loaded = m;
}

// The main thread pays for the module once, up front.
if (!("WorkerGlobalScope" in globalThis)) await loadThreads();
