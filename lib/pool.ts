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

import { threads } from "./process/_threads.ts";
import { cpuCount, type Permissions, Process, whenEnded } from "./process.ts";
import { findUncloneable, rebuild, reduce } from "./reduction.ts";
import {
  callerModule,
  findExported,
  moduleUrl,
  type TargetRef,
  targetRef,
} from "./process/_target.ts";
import { keepAlive, SLICE_MS, waitAsync } from "./shm/_wait.ts";
import { Spinner } from "./shm/_spin.ts";
import { ProcessError } from "./errors.ts";
import { Decoder, EncodeError, Encoder } from "./wire/_codec.ts";
import { RecordRing } from "./_pool_ring.ts";
import {
  allInt32,
  allNumbers,
  CTL_WORDS,
  KIND_APPLY,
  KIND_MAP,
  KIND_STAR,
  PoolLink,
  PORT_CLONE,
  PORT_CODEC,
  PORT_INT,
  PORT_NUM,
  R_CODEC,
  R_INIT_FAILED,
  R_NUM,
  R_PORT,
  RING_BYTES,
  STARTED,
  T_CODEC,
  T_DEFS,
  T_INT,
  T_NUM,
  T_PORT,
  T_STOP,
  type WireError,
} from "./_pool_protocol.ts";
import {
  AsyncResult,
  type Feeder,
  Fifo,
  type IMapIterator,
  ImapJob,
  type Job,
  type ResultCallbacks,
  ResultJob,
  settleResult,
  type Task,
} from "./_pool_jobs.ts";
import { poolWorker, type WorkerConfig } from "./_pool_worker.ts";
import { repr } from "./_inspect.ts";
import { show, showNumber } from "./_show.ts";
import { checkKeys } from "./_options.ts";

const POOL_OPTIONS = [
  "processes",
  "initializer",
  "initargs",
  "maxtasksperchild",
  "module",
  "permissions",
];
import {
  checkChunksize,
  checkFn,
  checkItems,
  splitChunks,
} from "./_pool_checks.ts";
import { traceResult, traceSubmit, tracing } from "./trace/_writer.ts";
import { withRebuiltError } from "./wire/_error.ts";
import {
  lengthOf,
  type MapOptions,
  mapOptions,
  startProgress,
} from "./_progress.ts";

export {
  AsyncResult,
  type IMapIterator,
  type ResultCallbacks,
} from "./_pool_jobs.ts";
export type { MapOptions, ProgressInfo, ProgressOption } from "./_progress.ts";

const WORKER_MODULE = new URL("./_pool_worker.ts", import.meta.url).href;

/** How much work (ms, by the measured task time) a worker may have queued. */
const TARGET_QUEUED_MS = 4;
/** Most tasks in flight to one worker. */
const MAX_IN_FLIGHT = 1024;
/** Most codec-encoded tasks in one ring record. */
const CODEC_RUN = 256;

interface Worker {
  proc: Process;
  name: string;
  port: MessagePort;
  ctl: Int32Array;
  tasks: RecordRing;
  results: RecordRing;
  inflight: Fifo<Task>;
  nextSeq: number;
  sent: number;
  defsSent: number;
  /** active: takes tasks; retiring: got its last task (maxtasksperchild); stopping: told to end. */
  state: "active" | "retiring" | "stopping" | "dead";
}

let workerCounter = 0;

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

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
export class Pool implements AsyncDisposable {
  #processes: number;
  #module: string | undefined;
  #permissions: Permissions;
  #daemon: boolean;
  #config: WorkerConfig;
  #signal = new Int32Array(new SharedArrayBuffer(4));
  #workers = new Set<Worker>();
  #pending = new Fifo<Task>();
  #inflight = 0;
  #jobs = new Set<Job>();
  #feeders = new Set<ImapJob>();
  /** Submissions waiting for their function to be checked (kept in order). */
  #gate: Promise<unknown> | null = null;
  #waitingSubmissions = 0;
  #fnIds = new Map<unknown, number>();
  #fnDefs: TargetRef[] = [];
  #checks = new Map<unknown, Promise<number>>();
  #perTask: number | undefined;
  #receiving: Promise<void> | null = null;
  #portLate = false;
  #dispatching = false;
  #redispatch = false;
  #encoder = new Encoder();
  #decoder = new Decoder();
  #spinner = new Spinner();
  #closed = false;
  #terminated = false;
  /** join() was called: imaps read their items to the end, read or not. */
  #joining = false;
  #broken: { error: unknown } | null = null;
  #quiet: Promise<void>;
  #resolveQuiet!: () => void;

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
    this.#processes = processes;
    this.#module = options.module !== undefined
      ? moduleUrl(options.module)
      : callerModule();
    this.#permissions = options.permissions ?? "inherit";
    // Web Workers keep the program alive; node:worker_threads workers can be
    // unref'd (like Python's daemonic pool workers) but take no permissions.
    this.#daemon = this.#permissions === "inherit";
    let initRef: TargetRef | null = null;
    if (options.initializer) {
      initRef = targetRef(
        options.initializer,
        this.#module ?? moduleUrl(undefined),
      );
    }
    this.#config = { initializer: initRef, initargs, maxtasks };
    this.#quiet = new Promise((r) => this.#resolveQuiet = r);
    for (let i = 0; i < processes; i++) this.#spawn();
    if (options.initializer) {
      // Fail fast (and clearly) when the initializer is not exported.
      this.#lookUp(options.initializer, undefined).catch((e) =>
        this.#breakPool(e)
      );
    }
  }

  /** The number of worker processes. */
  get processes(): number {
    return this.#processes;
  }

  // ---- submitting ------------------------------------------------------

  /** Runs `fn(...args)` in one worker and resolves with its result. */
  apply<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
  ): Promise<Awaited<R>> {
    try {
      return this.#applyAsync<Awaited<R>>(fn, args, {}, this.#caller(fn)).get();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode Pool.apply}, returning an {@linkcode AsyncResult} at once. */
  applyAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
    callbacks: ResultCallbacks<Awaited<R>> = {},
  ): AsyncResult<Awaited<R>> {
    return this.#applyAsync(fn, args, callbacks, this.#caller(fn));
  }

  /**
   * The submitting module, where `fn` may be exported: only for a function
   * this pool has not seen (walking the stack costs ~12 us a call).
   */
  #caller(fn: unknown): string | undefined {
    if (typeof fn !== "function" || this.#fnIds.has(fn)) return undefined;
    // A burst of submissions before the first lookup ends walks once: the
    // first caller's module stands for the function until its lookup fails.
    const f = fn as AnyFn;
    if (this.#callers.has(f)) return this.#callers.get(f);
    const caller = callerModule();
    this.#callers.set(f, caller);
    return caller;
  }

  #callers = new WeakMap<AnyFn, string | undefined>();

  #applyAsync<R>(
    fn: AnyFn,
    args: unknown[] | undefined,
    callbacks: ResultCallbacks<R>,
    caller: string | undefined,
  ): AsyncResult<R> {
    this.#checkRunning();
    checkFn(fn, "fn");
    const a = args ?? [];
    if (!Array.isArray(a)) {
      throw new TypeError(
        `args must be an array of arguments, got ${
          show(a)
        }; write apply(fn, [x])`,
      );
    }
    const result = new AsyncResult<R>(callbacks);
    const job = new ResultJob(
      result as AsyncResult<unknown>,
      1,
      0,
      this.#jobEnded,
    );
    this.#jobs.add(job);
    this.#submit(fn, caller, job, (fnId) => {
      this.#enqueueChunks(job, fnId, KIND_APPLY, [a], "args", 0);
    });
    return result;
  }

  /**
   * Calls `fn(item)` for every item, in the workers, and resolves with the
   * results in order. Items are sent in chunks of `chunksize` (default as
   * Python's: about four chunks per worker).
   * `chunksize` may be a {@linkcode MapOptions} object instead
   * (`{ chunksize, progress: true }` shows a progress line on stderr when it
   * is a terminal), here and in the other map and imap methods.
   */
  map<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize?: number | MapOptions,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync(
        fn,
        items,
        chunksize,
        {},
        KIND_MAP,
        this.#caller(fn),
      )
        .get() as Promise<Awaited<R>[]>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode Pool.map}, returning an {@linkcode AsyncResult} at once. */
  mapAsync<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize?: number | MapOptions,
    callbacks: ResultCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(
      fn,
      items,
      chunksize,
      callbacks as ResultCallbacks<unknown[]>,
      KIND_MAP,
      this.#caller(fn),
    ) as AsyncResult<Awaited<R>[]>;
  }

  /** Like {@linkcode Pool.map}, calling `fn(...args)` for every `args` array. */
  starmap<A extends unknown[], R>(
    fn: (...args: A) => R,
    argsList: Iterable<A> | AsyncIterable<A>,
    chunksize?: number | MapOptions,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync(
        fn,
        argsList,
        chunksize,
        {},
        KIND_STAR,
        this.#caller(fn),
      ).get() as Promise<Awaited<R>[]>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode Pool.starmap}, returning an {@linkcode AsyncResult} at once. */
  starmapAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    argsList: Iterable<A> | AsyncIterable<A>,
    chunksize?: number | MapOptions,
    callbacks: ResultCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(
      fn,
      argsList,
      chunksize,
      callbacks as ResultCallbacks<unknown[]>,
      KIND_STAR,
      this.#caller(fn),
    ) as AsyncResult<Awaited<R>[]>;
  }

  #mapAsync(
    fn: AnyFn,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    sizeOrOptions: number | MapOptions | undefined,
    callbacks: ResultCallbacks<unknown[]>,
    kind: number,
    caller: string | undefined,
  ): AsyncResult<unknown[]> {
    const { chunksize, progress } = mapOptions(sizeOrOptions);
    this.#checkRunning();
    checkFn(fn, "fn");
    checkItems(items, kind === KIND_STAR ? "argsList" : "items");
    checkChunksize(chunksize);
    const result = new AsyncResult<unknown[]>(callbacks);
    // Stands in until the items are collected and the chunks known.
    const job: Job = {
      over: false,
      result: () => {},
      error: () => {},
      resultNum: () => {},
      abort: (error) => {
        if (job.over) return;
        job.over = true;
        this.#jobs.delete(job);
        settleResult(result as AsyncResult<unknown>, false, error);
      },
    };
    this.#jobs.add(job);
    const enqueue = (fnId: number, list: unknown[]) => {
      if (job.over) return;
      const { size, chunks } = splitChunks(list, chunksize, this.#processes);
      this.#jobs.delete(job);
      job.over = true;
      // Made first: an empty map settles at once, its one report included.
      const shown = startProgress(
        progress,
        list.length,
        fn.name,
        (e) => real.abort(e),
      );
      const real = new ResultJob(
        result as AsyncResult<unknown>,
        list.length,
        size,
        this.#jobEnded,
        shown,
      );
      if (!real.over) this.#jobs.add(real);
      this.#enqueueChunks(
        real,
        fnId,
        kind,
        chunks,
        kind === KIND_STAR ? "argsList" : "items",
        size,
      );
    };
    this.#submit(fn, caller, job, (fnId) => {
      if (Array.isArray(items)) return enqueue(fnId, items);
      if (typeof (items as Iterable<unknown>)[Symbol.iterator] === "function") {
        return enqueue(fnId, Array.from(items as Iterable<unknown>));
      }
      return (async () => {
        const list: unknown[] = [];
        for await (const x of items as AsyncIterable<unknown>) {
          if (job.over) return;
          list.push(x);
        }
        enqueue(fnId, list);
      })();
    });
    return result;
  }

  /**
   * Yields `fn(item)` for every item, in order, as results arrive. `items`
   * may be any iterable or async iterable (an endless generator too): it is
   * read lazily, only as far ahead as the workers and the consumer keep up.
   * A task that threw rejects in its place (a chunk's once) and the rest
   * still come, as Python's: a `for await` loop ends at that throw, read on
   * with `next()` (see {@linkcode IMapIterator}). An error from `items`
   * ends the iteration. `break` (or `return()`) stops reading `items` and
   * drops what is queued; `next(timeoutMs)` waits a bounded time.
   */
  imap<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize: number | MapOptions = 1,
  ): IMapIterator<Awaited<R>> {
    return this.#imap(
      fn,
      items,
      chunksize,
      true,
      this.#caller(fn),
    ) as IMapIterator<Awaited<R>>;
  }

  /** Like {@linkcode Pool.imap}, yielding results in the order they finish. */
  imapUnordered<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize: number | MapOptions = 1,
  ): IMapIterator<Awaited<R>> {
    return this.#imap(
      fn,
      items,
      chunksize,
      false,
      this.#caller(fn),
    ) as IMapIterator<Awaited<R>>;
  }

  #imap(
    fn: AnyFn,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    sizeOrOptions: number | MapOptions,
    ordered: boolean,
    caller: string | undefined,
  ): ImapJob {
    const { chunksize = 1, progress } = mapOptions(sizeOrOptions, 1);
    this.#checkRunning();
    checkFn(fn, "fn");
    checkItems(items, "items");
    checkChunksize(chunksize);
    const job = new ImapJob(this.#feeder, ordered, chunksize, KIND_MAP);
    this.#describe.set(job, { what: "items", size: chunksize });
    job.progress = startProgress(
      progress,
      lengthOf(items),
      fn.name,
      (e) => job.abort(e),
    );
    this.#jobs.add(job);
    this.#feeders.add(job);
    if (tracing) traceSubmit(fn.name, undefined, chunksize);
    this.#submit(fn, caller, job, (fnId) => job.start(fnId, items));
    return job;
  }

  #feeder: Feeder = {
    wantsMore: () =>
      !this.#terminated && !this.#broken &&
      this.#pending.length < this.#totalWindow() + this.#processes,
    cap: () =>
      this.#joining ? Infinity : 2 * (this.#totalWindow() + this.#processes),
    enqueue: (task) => this.#pending.push(task),
    dispatch: () => this.#dispatch(),
    fed: (job) => {
      if (this.#feeders.delete(job)) this.#checkQuiet();
    },
    done: (job) => {
      this.#jobs.delete(job);
    },
  };

  #jobEnded = (job: Job): void => {
    this.#jobs.delete(job);
    this.#checkQuiet();
  };

  /**
   * Checks `fn` (in order with earlier submissions), then runs `go`; a
   * failure (not exported, items that throw, ...) fails `job`.
   */
  #submit(
    fn: AnyFn,
    caller: string | undefined,
    job: Job,
    go: (fnId: number) => void | Promise<void>,
  ): void {
    const known = this.#fnIds.get(fn);
    if (known !== undefined && this.#gate === null) {
      try {
        const r = go(known);
        if (r) this.#waitFor(r.catch((e) => job.abort(e)));
      } catch (e) {
        job.abort(e);
      }
      return;
    }
    const step = (this.#gate ?? Promise.resolve())
      .then(() => this.#lookUp(fn, caller))
      .then((fnId) => {
        if (job.over) return;
        if (this.#broken) throw this.#broken.error;
        return go(fnId);
      })
      .catch((e) => job.abort(e));
    this.#waitFor(step);
  }

  #waitFor(step: Promise<unknown>): void {
    this.#waitingSubmissions++;
    const gate = step.finally(() => {
      this.#waitingSubmissions--;
      if (this.#gate === gate) this.#gate = null;
      this.#checkQuiet();
    });
    this.#gate = gate;
  }

  /**
   * Finds `fn` by reference, as a child will: exported from the pool's module
   * or the caller's, under its own name. Returns its id.
   */
  #lookUp(fn: AnyFn, caller: string | undefined): Promise<number> {
    const known = this.#fnIds.get(fn);
    if (known !== undefined) return Promise.resolve(known);
    let check = this.#checks.get(fn);
    if (!check) {
      check = (async () => {
        const candidates = [...new Set([this.#module, caller])].filter((
          u,
        ): u is string => u !== undefined);
        if (candidates.length === 0) candidates.push(moduleUrl(undefined));
        const ref = await findExported(fn, candidates);
        const id = this.#fnDefs.push(ref) - 1;
        this.#fnIds.set(fn, id);
        return id;
      })();
      this.#checks.set(fn, check);
      check.catch(() => {
        this.#checks.delete(fn);
        this.#callers.delete(fn);
      });
    }
    return check;
  }

  #enqueueChunks(
    job: Job,
    fnId: number,
    kind: number,
    chunks: unknown[][],
    what: string,
    size: number,
  ): void {
    for (let i = 0; i < chunks.length; i++) {
      const payload = chunks[i];
      this.#pending.push({
        job,
        index: i,
        fnId,
        kind,
        payload,
        num: kind === KIND_MAP && allNumbers(payload),
        seq: 0,
      });
    }
    // What a task is called in an "cannot be sent" message.
    this.#describe.set(job, { what, size });
    if (tracing) traceSubmit(this.#fnDefs[fnId]?.name, chunks, size);
    // Submissions made in one go (a loop of apply calls) share a dispatch,
    // so they travel in shared records, not one record and wake-up each.
    if (!this.#dispatchSoon) {
      this.#dispatchSoon = true;
      queueMicrotask(() => {
        this.#dispatchSoon = false;
        this.#dispatch();
      });
    }
  }

  #dispatchSoon = false;

  #describe = new WeakMap<Job, { what: string; size: number }>();

  #checkRunning(): void {
    if (this.#terminated) {
      throw new ProcessError(
        "Pool is terminated: it takes no new tasks; create a new Pool",
      );
    }
    if (this.#closed) {
      throw new ProcessError(
        "Pool is closed: it takes no new tasks after close(); submit before closing, or create a new Pool",
      );
    }
    if (this.#broken) throw this.#broken.error;
  }

  // ---- workers -----------------------------------------------------------

  #spawn(): void {
    const { port1, port2 } = new MessageChannel();
    const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
    const tasks = new RecordRing(RING_BYTES);
    const results = new RecordRing(RING_BYTES);
    const name = `PoolWorker-${++workerCounter}`;
    const link = new PoolLink(
      port2,
      ctl,
      this.#signal,
      tasks.buffer,
      results.buffer,
    );
    const proc = new Process({
      target: poolWorker,
      args: [link, this.#config],
      name,
      daemon: this.#daemon,
      module: WORKER_MODULE,
      permissions: this.#permissions,
      preload: this.#module ? [this.#module] : [],
    });
    const w: Worker = {
      proc,
      name,
      port: port1,
      ctl,
      tasks,
      results,
      inflight: new Fifo(),
      nextSeq: 1,
      sent: 0,
      defsSent: 0,
      state: "active",
    };
    try {
      proc.start().catch(() => {});
    } catch (e) {
      port1.close();
      port2.close();
      throw e;
    }
    this.#workers.add(w);
    whenEnded(proc).then(
      () => this.#workerEnded(w),
      (e) => {
        this.#breakPool(e);
        this.#workerEnded(w);
      },
    );
  }

  #window(): number {
    const t = this.#perTask;
    if (t === undefined) return 1;
    return Math.max(
      1,
      Math.min(MAX_IN_FLIGHT, Math.floor(TARGET_QUEUED_MS / Math.max(t, 1e-4))),
    );
  }

  #totalWindow(): number {
    return this.#window() * this.#processes;
  }

  /** Sends queued tasks to workers with room, evenly. */
  #dispatch(): void {
    if (this.#dispatching) {
      this.#redispatch = true;
      return;
    }
    this.#dispatching = true;
    try {
      do {
        this.#redispatch = false;
        this.#dispatchOnce();
      } while (this.#redispatch);
    } finally {
      this.#dispatching = false;
    }
    for (const f of this.#feeders) f.poke();
  }

  #dispatchOnce(): void {
    if (this.#terminated || this.#broken || this.#pending.length === 0) return;
    const win = this.#window();
    const max = this.#config.maxtasks;
    const ready: [Worker, number][] = [];
    for (const w of this.#workers) {
      if (w.state !== "active") continue;
      let room = win - w.inflight.length;
      if (max) room = Math.min(room, max - w.sent);
      if (room > 0) ready.push([w, room]);
    }
    ready.sort((a, b) => a[0].inflight.length - b[0].inflight.length);
    let left = ready.length;
    for (const [w, room] of ready) {
      const share = Math.ceil(this.#pending.length / left--);
      const n = Math.min(room, share);
      if (n <= 0) continue;
      const batch: Task[] = [];
      while (batch.length < n && this.#pending.length > 0) {
        const t = this.#pending.shift()!;
        if (!t.job.over) batch.push(t);
      }
      if (batch.length) {
        const rest = this.#send(w, batch);
        // The worker's ring is full: those wait for the next round.
        if (rest.length) this.#pending.unshiftAll(rest);
      }
      if (this.#pending.length === 0) break;
    }
    if (this.#inflight > 0) this.#receive();
  }

  /** Writes `batch` to `w`'s ring; returns the tasks that did not fit. */
  #send(w: Worker, batch: Task[]): Task[] {
    const ring = w.tasks;
    if (w.defsSent < this.#fnDefs.length) {
      const defs: [number, string, string][] = [];
      for (let id = w.defsSent; id < this.#fnDefs.length; id++) {
        defs.push([id, this.#fnDefs[id].module, this.#fnDefs[id].name]);
      }
      const size = this.#encoder.encode(defs);
      const at = ring.begin(size);
      if (at < 0) return batch;
      this.#encoder.copyTo(ring.u8, at, 0, size);
      ring.commit(T_DEFS, size);
      w.defsSent = this.#fnDefs.length;
    }
    let i = 0;
    while (i < batch.length) {
      const t = batch[i];
      let j = i + 1;
      const limit = t.num
        ? batch.length
        : Math.min(batch.length, i + CODEC_RUN);
      while (
        j < limit && batch[j].fnId === t.fnId && batch[j].kind === t.kind &&
        batch[j].num === t.num
      ) j++;
      const wrote = t.num
        ? this.#writeNum(w, batch, i, j)
        : this.#writeCodec(w, batch, i, j);
      if (wrote === 0) break;
      i += wrote;
    }
    if (this.#config.maxtasks && w.sent >= this.#config.maxtasks) {
      // It ends after these; its replacement starts now.
      w.state = "retiring";
      this.#spawnSafely();
    }
    return i < batch.length ? batch.slice(i) : [];
  }

  #sent(w: Worker, t: Task): void {
    t.seq = w.nextSeq++;
    w.inflight.push(t);
    this.#inflight++;
    w.sent++;
  }

  /** Writes tasks `[i, j)` (numeric map chunks) as one record; returns how many went. */
  #writeNum(w: Worker, batch: Task[], i: number, j: number): number {
    const ring = w.tasks;
    const max = ring.maxPayload;
    // As many as fit in one record.
    let total = 0;
    let uniform = batch[i].payload.length;
    let end = i;
    for (; end < j; end++) {
      const len = batch[end].payload.length;
      const u = len === uniform ? uniform : -1;
      const n = end - i + 1;
      const bytes = ((20 + (u === -1 ? n * 4 : 0) + 7) & ~7) +
        (total + len) * 8;
      if (bytes > max) break;
      uniform = u;
      total += len;
    }
    if (end === i) {
      // Too big for a ring record: its own shared memory, sent by the port
      // (sharing it costs the same whatever its size).
      const p = batch[i].payload as number[];
      const int = allInt32(p, 0, p.length);
      const big = int
        ? new Int32Array(new SharedArrayBuffer(p.length * 4))
        : new Float64Array(new SharedArrayBuffer(p.length * 8));
      for (let y = 0; y < p.length; y++) big[y] = p[y];
      // The bare buffer: Deno walks every index of a typed array it receives.
      return this.#writePort(
        w,
        batch[i],
        int ? PORT_INT : PORT_NUM,
        big.buffer,
      );
    }
    const n = end - i;
    const head = (20 + (uniform === -1 ? n * 4 : 0) + 7) & ~7;
    // Room for float64 items; int32 ones take half of it.
    const at = ring.begin(head + total * 8);
    if (at < 0) return 0;
    const i32 = ring.i32, f64 = ring.f64, h = at >> 2;
    i32[h] = n;
    i32[h + 1] = w.nextSeq;
    i32[h + 2] = batch[i].fnId;
    i32[h + 3] = batch[i].kind;
    i32[h + 4] = uniform;
    // Integers go as int32, so that the task gets small integers, not
    // doubles: written as int32 while they are (one pass over the items),
    // all again as float64 from the first that is not (-0 included).
    let int = true;
    let k = (at + head) >> 2;
    for (let x = 0; x < n && int; x++) {
      const p = batch[i + x].payload as number[];
      if (uniform === -1) i32[h + 5 + x] = p.length;
      for (let y = 0; y < p.length; y++) {
        const v = p[y];
        if ((v | 0) !== v || (v === 0 && 1 / v < 0)) {
          int = false;
          break;
        }
        i32[k++] = v;
      }
    }
    if (!int) {
      k = (at + head) >> 3;
      for (let x = 0; x < n; x++) {
        const p = batch[i + x].payload as number[];
        if (uniform === -1) i32[h + 5 + x] = p.length;
        for (let y = 0; y < p.length; y++) f64[k++] = p[y];
      }
    }
    const length = head + total * (int ? 4 : 8);
    ring.commit(int ? T_INT : T_NUM, length);
    for (let x = i; x < end; x++) this.#sent(w, batch[x]);
    return n;
  }

  /** Writes tasks `[i, j)` with the codec as one record; returns how many went. */
  #writeCodec(w: Worker, batch: Task[], i: number, j: number): number {
    const ring = w.tasks;
    while (true) {
      const payloads: unknown[] = [];
      for (let x = i; x < j; x++) payloads.push(batch[x].payload);
      let size: number;
      try {
        size = this.#encoder.encode(payloads);
      } catch (e) {
        // Something the codec cannot carry (a shared object, a function):
        // narrow it down; a single such task goes by the port, unless
        // structured clone would not carry it faithfully either (a URL
        // would arrive as `{}`): then the task fails with the codec's error.
        if (j - i === 1) {
          if (e instanceof EncodeError && !e.portable) {
            batch[i].job.error(batch[i].index, this.#uncloneable(batch[i], e));
            return 1;
          }
          return this.#writePort(w, batch[i]);
        }
        j = i + ((j - i) >> 1);
        continue;
      }
      if (16 + size > ring.maxPayload) {
        if (j - i === 1) {
          // Too big for a ring record: the encoding in shared memory of its
          // own, by the port. (The encoding is of the one-task array.)
          const bytes = new SharedArrayBuffer(size);
          this.#encoder.copyTo(new Uint8Array(bytes), 0, 0, size);
          return this.#writePort(w, batch[i], PORT_CODEC, bytes);
        }
        j = i + ((j - i) >> 1);
        continue;
      }
      const at = ring.begin(16 + size);
      if (at < 0) return 0;
      const h = at >> 2;
      ring.i32[h] = j - i;
      ring.i32[h + 1] = w.nextSeq;
      ring.i32[h + 2] = batch[i].fnId;
      ring.i32[h + 3] = batch[i].kind;
      this.#encoder.copyTo(ring.u8, at + 16, 0, size);
      ring.commit(T_CODEC, 16 + size);
      for (let x = i; x < j; x++) this.#sent(w, batch[x]);
      return j - i;
    }
  }

  /**
   * Sends one task through the port: its payload structured-cloned (shared
   * objects transferred), or `bytes` (numbers, or the codec's encoding) in
   * shared memory. Returns 1, or 0 when the ring is full.
   */
  #writePort(
    w: Worker,
    t: Task,
    mode = PORT_CLONE,
    bytes?: ArrayBufferLike,
  ): number {
    const ring = w.tasks;
    if (ring.begin(0) < 0) return 0;
    const undo: (() => void)[] = [];
    try {
      const transfer: Transferable[] = [];
      const wire = bytes ?? reduce(t.payload, transfer, undo);
      w.port.postMessage([w.nextSeq, t.fnId, t.kind, wire, mode], transfer);
    } catch (e) {
      for (const f of undo) f(); // what reducing lent for the way
      t.job.error(t.index, this.#uncloneable(t, e));
      return 1;
    }
    ring.commit(T_PORT, 0);
    this.#sent(w, t);
    return 1;
  }

  #uncloneable(t: Task, e: unknown): TypeError {
    const d = this.#describe.get(t.job) ?? { what: "items", size: 1 };
    const payload = t.payload as unknown[];
    const base = d.what === "args" ? 0 : t.index * d.size;
    for (let i = 0; i < payload.length; i++) {
      const path = d.what === "args" ? `args[${i}]` : `${d.what}[${base + i}]`;
      const bad = findUncloneable(payload[i], path);
      if (bad) {
        return new TypeError(
          `${bad.path} is a ${bad.type}, which cannot be sent to a pool worker ` +
            `(only structured-cloneable values and this module's shared objects can); pass plain data instead`,
        );
      }
    }
    return new TypeError(
      `a task cannot be sent to a pool worker: ${(e as Error).message}`,
    );
  }

  #spawnSafely(): void {
    try {
      this.#spawn();
    } catch (e) {
      this.#breakPool(e);
    }
  }

  /** Receives results while tasks are in flight (holding the program alive). */
  #receive(): void {
    if (this.#receiving) return;
    this.#receiving = (async () => {
      while (this.#inflight > 0 && !this.#terminated && !this.#broken) {
        const seen = Atomics.load(this.#signal, 0);
        let got = false;
        this.#portLate = false;
        try {
          for (const w of this.#workers) if (this.#drain(w)) got = true;
          if (got) this.#dispatch();
        } catch (e) {
          // A corrupt record or the like: fail loudly, never hang.
          this.#breakPool(e);
          return;
        }
        if (got) {
          // Let the consumers of the results run before the next round.
          await null;
          continue;
        }
        // A result due within microseconds (a quick task): watch for it
        // (the spinner stops itself while that does not pay).
        if (this.#spinner.spin(this.#signal, 0, seen)) continue;
        // Holds nothing: who waits on a result (get, wait, an imap's next,
        // join) holds the program, so an unreachable pool never does.
        await waitAsync(
          this.#signal,
          0,
          seen,
          this.#portLate ? 1 : SLICE_MS,
          false,
        );
      }
    })().finally(() => {
      this.#receiving = null;
      // Tasks may have gone in flight as the loop ended.
      if (this.#inflight > 0 && !this.#terminated && !this.#broken) {
        this.#receive();
      } else this.#checkQuiet();
    });
  }

  /** Takes every result record a worker wrote; true if there was one. */
  #drain(w: Worker): boolean {
    const ring = w.results;
    let got = false;
    while (!this.#terminated && ring.next()) {
      const at = ring.at;
      const type = ring.type;
      if (type === R_NUM) {
        const i32 = ring.i32, f64 = ring.f64, h = at >> 2;
        const n = i32[h], uniform = i32[h + 1];
        const head = 16 + (uniform === -1 ? ((n * 4 + 7) & ~7) : 0);
        let k = (at + head) >> 3;
        for (let i = 0; i < n; i++) {
          const t = w.inflight.shift();
          if (!t) break;
          this.#inflight--;
          const len = uniform === -2
            ? 1
            : uniform === -1
            ? i32[h + 4 + i]
            : uniform;
          t.job.resultNum(t.index, f64, k, len);
          k += len;
        }
        this.#measure(f64[(at + 8) >> 3], n);
      } else if (type === R_CODEC) {
        const n = ring.i32[at >> 2];
        const busy = ring.f64[(at + 8) >> 3];
        const msg = this.#decoder.decode(
          ring.u8,
          at + 16,
          at + ring.length,
        ) as {
          v: unknown[];
          e?: [number, WireError][];
        };
        this.#deliver(w, msg.v, msg.e);
        this.#measure(busy, n);
      } else if (type === R_PORT) {
        const r = threads().receiveMessageOnPort(w.port as never) as
          | {
            message: {
              v: unknown;
              e?: [number, WireError][];
              b: number;
              num?: SharedArrayBuffer;
              codec?: SharedArrayBuffer;
            };
          }
          | undefined;
        if (!r) {
          // Posted before the record was written: it is on its way.
          this.#portLate = true;
          return got;
        }
        const { num, codec } = r.message;
        if (codec) {
          const msg = this.#decoder.decode(
            new Uint8Array(codec),
            0,
            codec.byteLength,
          ) as { v: unknown[]; e?: [number, WireError][] };
          this.#deliver(w, msg.v, msg.e);
          this.#measure(r.message.b, msg.v.length);
        } else if (num) {
          // One big array of numbers, in shared memory of its own.
          const t = w.inflight.shift();
          if (t) {
            this.#inflight--;
            const nums = new Float64Array(num);
            t.job.resultNum(t.index, nums, 0, nums.length);
          }
          this.#measure(r.message.b, 1);
        } else {
          const values = rebuild(r.message.v) as unknown[];
          this.#deliver(w, values, r.message.e);
          this.#measure(r.message.b, values.length);
        }
      } else if (type === R_INIT_FAILED) {
        const e = this.#decoder.decode(ring.u8, at, at + ring.length);
        ring.release();
        withRebuiltError(e as WireError, (x) => this.#breakPool(x));
        return true;
      }
      ring.release();
      got = true;
      if (tracing) traceResult(1);
    }
    return got;
  }

  #deliver(w: Worker, values: unknown[], errs?: [number, WireError][]): void {
    let k = 0;
    for (let i = 0; i < values.length; i++) {
      const t = w.inflight.shift();
      if (!t) break;
      this.#inflight--;
      if (errs && k < errs.length && errs[k][0] === i) {
        // The user's error class may need its module imported here first.
        withRebuiltError(errs[k++][1], (e) => t.job.error(t.index, e));
      } else t.job.result(t.index, values[i]);
    }
  }

  #measure(busy: number, n: number): void {
    if (n <= 0) return;
    const est = busy / n;
    this.#perTask = this.#perTask === undefined
      ? est
      : 0.5 * this.#perTask + 0.5 * est;
  }

  /** A worker ended: expected (stop, retirement, terminate) or not (a death). */
  #workerEnded(w: Worker): void {
    if (w.state === "dead") return;
    const prev = w.state;
    if (!this.#terminated) this.#drain(w);
    w.state = "dead";
    this.#workers.delete(w);
    const code = w.proc.exitCode;
    const started = Atomics.load(w.ctl, STARTED);
    const lost = w.inflight.drain();
    this.#inflight -= lost.length;
    try {
      w.port.close();
    } catch {
      // Already closed.
    }
    if (this.#terminated || this.#broken) {
      this.#checkQuiet();
      return;
    }
    const requeue: Task[] = [];
    for (const t of lost) {
      if (t.seq <= started) {
        t.job.error(
          t.index,
          new ProcessError(
            `pool worker '${w.name}' died (exit code ${code}) while running this task; ` +
              `the pool replaced the worker and goes on`,
          ),
        );
      } else requeue.push(t);
    }
    if (
      prev !== "stopping" && started === 0 && lost.length === requeue.length
    ) {
      // It ended before running anything: its replacements would too.
      if (prev === "active") {
        this.#breakPool(
          new ProcessError(
            `pool worker '${w.name}' ended (exit code ${code}) before it ran any task, ` +
              `so the pool cannot run tasks; check the pool's initializer and module`,
          ),
        );
        return;
      }
    }
    if (requeue.length) this.#pending.unshiftAll(requeue);
    if (prev === "active" && !this.#idleAfterClose()) this.#spawnSafely();
    this.#dispatch();
    this.#checkQuiet();
  }

  /** True once closed and nothing is left to run. */
  #idleAfterClose(): boolean {
    return this.#closed && this.#pending.length === 0 && this.#inflight === 0 &&
      this.#feeders.size === 0 && this.#waitingSubmissions === 0;
  }

  /** After close/terminate: stops idle workers; resolves join() once all is quiet. */
  #checkQuiet(): void {
    if (!this.#closed && !this.#terminated) return;
    if (this.#closed && !this.#terminated && this.#idleAfterClose()) {
      for (const w of this.#workers) {
        if (w.state === "active" || w.state === "retiring") {
          w.state = "stopping";
          if (w.tasks.begin(0) >= 0) w.tasks.commit(T_STOP, 0);
          else w.proc.terminate();
        }
      }
    }
    if (this.#workers.size === 0 && this.#receiving === null) {
      this.#resolveQuiet();
    }
  }

  /** Fails everything with `error` and stops the workers (initializer failed, ...). */
  #breakPool(error: unknown): void {
    if (this.#broken || this.#terminated) return;
    this.#broken = { error };
    this.#stopAll(error);
  }

  #stopAll(error: unknown): void {
    for (const w of [...this.#workers]) w.proc.terminate();
    Atomics.add(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
    this.#pending.drain();
    for (const job of [...this.#jobs]) job.abort(error);
    this.#jobs.clear();
    for (const f of [...this.#feeders]) f.abort(error);
    this.#checkQuiet();
  }

  // ---- ending ------------------------------------------------------------

  /**
   * Takes no more tasks; the workers end once the submitted ones are done
   * (an `imap` that is still being read counts as submitted).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#checkQuiet();
  }

  /**
   * Ends the workers now. Unfinished results reject with an error saying
   * the pool was terminated.
   */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#closed = true;
    this.#stopAll(
      new ProcessError("the pool was terminated before this task finished"),
    );
  }

  /**
   * Waits until the workers ended; call `close()` or `terminate()` first.
   * After `close()`, the items of an `imap` still being fed are read to
   * their end, consumed or not (as Python's imap reads them all at once;
   * the results wait for their reader): an endless one holds it, so
   * `break` out of it, `return()` it, or `terminate()`.
   */
  async join(): Promise<void> {
    if (!this.#closed && !this.#terminated) {
      throw new ProcessError(
        "Pool is still running: call close() (let queued work finish) or terminate() before join()",
      );
    }
    if (!this.#joining) {
      // A `for await` that ended at a task's error left its imap unread.
      this.#joining = true;
      for (const f of this.#feeders) f.poke();
    }
    this.#checkQuiet();
    // The workers are unref'd daemon workers: hold the program meanwhile.
    await keepAlive(this.#quiet);
    if (this.#receiving) await keepAlive(this.#receiving);
  }

  /** Terminates the pool and waits for its workers: `await using pool = new Pool()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.terminate();
    await this.join();
  }

  /** `Pool { state: "RUN", processes: 4 }` (Python's repr: RUN, CLOSE, TERMINATE; or BROKEN). */
  toString(): string {
    const state = this.#terminated
      ? "TERMINATE"
      : this.#broken
      ? "BROKEN"
      : this.#closed
      ? "CLOSE"
      : "RUN";
    return repr("Pool", { state, processes: this.#processes });
  }

  /** {@linkcode Pool.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}
