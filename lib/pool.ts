/**
 * Process pools: Python's `multiprocessing.Pool`. A fixed number of worker
 * processes run the tasks you submit (`apply`, `map`, `imap`, `starmap` and
 * their async variants), many tasks in flight per worker; a worker that
 * dies is replaced, and the task it was running fails instead of hanging.
 *
 * @example
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export function square(x: number): number {
 *   return x * x;
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 2 });
 *   console.log(await pool.map(square, [1, 2, 3])); // [ 1, 4, 9 ]
 * }
 * ```
 *
 * @module
 */

import { cpuCount, type Permissions } from "./process.ts";
import {
  callerModule,
  moduleUrl,
  type TargetRef,
  targetRef,
} from "./process/_target.ts";
import { checkFn } from "./pool/_checks.ts";
import { repr } from "./_inspect.ts";
import { show, showNumber } from "./_show.ts";
import { checkKeys } from "./_options.ts";
import { BasePool, bindCore, PoolCore } from "./pool/_core.ts";
import { Dispatcher } from "./pool/_dispatch.ts";

export { BasePool } from "./pool/_core.ts";
export {
  AsyncResult,
  type IMapIterator,
  type ResultCallbacks,
} from "./pool/_jobs.ts";
export type { MapOptions, ProgressInfo, ProgressOption } from "./_progress.ts";

const POOL_OPTIONS = [
  "processes",
  "initializer",
  "initargs",
  "maxtasksperchild",
  "module",
  "permissions",
];

/**
 * Options of {@linkcode Pool}.
 *
 * @example
 * ```ts
 * import { Pool, type PoolOptions } from "@mp/multiprocessing";
 * export function square(x: number) {
 *   return x * x;
 * }
 * const options: PoolOptions = { processes: 2, maxtasksperchild: 100 };
 * if (import.meta.main) {
 *   await using pool = new Pool(options);
 *   console.log(await pool.map(square, [1, 2, 3])); // [ 1, 4, 9 ]
 * }
 * ```
 */
export interface PoolOptions {
  /** Number of worker processes (default: {@linkcode cpuCount}). */
  processes?: number;
  /** An exported function each worker runs once when it starts (replacements too). */
  // deno-lint-ignore no-explicit-any
  initializer?: (...args: any[]) => unknown;
  /** Arguments for `initializer`. */
  initargs?: unknown[];
  /** Replace a worker after it ran this many tasks (default: never). */
  maxtasksperchild?: number | null;
  /**
   * The module that exports the task functions (`import.meta.url`); default:
   * the module that created the pool. Workers import it at start. A task
   * function is also looked for in the module that submits it.
   */
  module?: string | URL;
  /** Deno's worker permissions for the workers (needs `--unstable-worker-options`). */
  permissions?: Permissions;
}

/**
 * A pool of worker processes (Python's `multiprocessing.Pool`).
 *
 * Task functions are found by reference, as `Process` targets are: they must
 * be exported from the pool's module (the `module` option, else the module
 * that created the pool) or from the module that submits them, and that
 * module keeps its start-up code under `if (import.meta.main)`.
 *
 * Many tasks are in flight to each worker at once (in batches), so even
 * `chunksize` 1 runs tiny tasks fast; slow tasks go one at a time to
 * whichever worker is free. A task that throws rejects with the child's
 * error (same name, message and stack). A worker that dies in a task
 * (`Deno.exit`, an uncaught error) is replaced, and the task fails with an
 * error saying so; the pool never hangs. (Running out of memory ends the
 * whole Deno process, as any worker's would.)
 *
 * Dispose it with `await using` (which terminates it, like Python's
 * `with Pool()`), or `close()` + `await join()` to let queued work finish.
 * An idle pool does not keep the program alive, except one with
 * `permissions` (its workers are Web Workers, which do until terminated).
 *
 * @example
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export function cube(x: number): number {
 *   return x ** 3;
 * }
 *
 * if (import.meta.main) {
 *   const pool = new Pool({ processes: 2 });
 *   console.log(await pool.map(cube, [1, 2, 3], 2)); // [ 1, 8, 27 ]
 *   console.log(await pool.apply(cube, [4])); // 64
 *   for await (const c of pool.imap(cube, [5, 6])) console.log(c); // 125, 216
 *   pool.close();
 *   await pool.join();
 * }
 * ```
 */
export class Pool extends BasePool {
  #core: PoolCore;

  /** Starts the worker processes. */
  constructor(options: PoolOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `Pool options must be an object like { processes: 4 }, got ${
          show(options)
        }`,
      );
    }
    checkKeys(options, POOL_OPTIONS, "Pool option");
    const processes = options.processes ?? cpuCount();
    if (
      typeof processes !== "number" || !Number.isInteger(processes) ||
      processes < 1
    ) {
      throw new RangeError(
        `processes must be a positive integer (the number of workers), got ${
          showNumber(processes)
        }; omit it to use one worker per CPU`,
      );
    }
    const maxtasks = options.maxtasksperchild ?? 0;
    if (
      options.maxtasksperchild !== undefined &&
      options.maxtasksperchild !== null &&
      (typeof maxtasks !== "number" || !Number.isInteger(maxtasks) ||
        maxtasks < 1)
    ) {
      throw new RangeError(
        `maxtasksperchild must be a positive integer or undefined (never replace workers), got ${
          showNumber(options.maxtasksperchild)
        }`,
      );
    }
    const initargs = options.initargs ?? [];
    if (!Array.isArray(initargs)) {
      throw new TypeError(
        `initargs must be an array of arguments, got ${
          show(initargs)
        }; write initargs: [x]`,
      );
    }
    if (options.initializer !== undefined && options.initializer !== null) {
      checkFn(options.initializer, "initializer");
    }
    const module = options.module !== undefined
      ? moduleUrl(options.module)
      : callerModule();
    let initRef: TargetRef | null = null;
    if (options.initializer) {
      initRef = targetRef(options.initializer, module ?? moduleUrl(undefined));
    }
    super();
    const core = bindCore(
      this,
      new PoolCore("Pool", processes, module, "queued work"),
    );
    this.#core = core;
    const workers = new Dispatcher(
      core,
      { initializer: initRef, initargs, maxtasks },
      options.permissions ?? "inherit",
    );
    core.transport = workers;
    workers.startAll(processes);
    if (options.initializer) {
      // Fail fast (and clearly) when the initializer is not exported.
      core.lookUp(options.initializer, undefined).catch((e) =>
        core.breakPool(e)
      );
    }
  }

  /** `Pool { state: "RUN", processes: 4 }` (Python's repr: RUN, CLOSE, TERMINATE; or BROKEN). */
  override toString(): string {
    const c = this.#core;
    const state = c.terminated
      ? "TERMINATE"
      : c.broken
      ? "BROKEN"
      : c.closed
      ? "CLOSE"
      : "RUN";
    return repr("Pool", { state, processes: c.processes });
  }

  /** {@linkcode Pool.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}
