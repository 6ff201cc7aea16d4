/**
 * The submitting side every pool shares (the local `Pool`, `RedisPool`):
 * the public methods ({@linkcode BasePool}), their argument checks, the jobs
 * that collect results, chunking, progress, finding a task's function by
 * reference, and closing/terminating/joining. A pool brings only its
 * {@linkcode Transport}: how queued tasks are sent, how results come back,
 * how its workers start and stop.
 *
 * @module
 */

import { callerModule, findExported, moduleUrl } from "../process/_target.ts";
import type { TargetRef } from "../process/_target.ts";
import { keepAlive } from "../shm/_wait.ts";
import { ProcessError } from "../errors.ts";
import { type Reduced, reduceSymbol } from "../reduction.ts";
import { notQueueable } from "../wire/_codec.ts";
import { show } from "../_show.ts";
import { Fifo } from "../_fifo.ts";
import {
  AsyncResult,
  type Feeder,
  type IMapIterator,
  ImapJob,
  type Job,
  type ResultCallbacks,
  ResultJob,
  settleResult,
  type Task,
} from "./_jobs.ts";
import {
  checkArgsLists,
  checkCallbacks,
  checkChunksize,
  checkFn,
  checkItems,
  splitChunks,
} from "./_checks.ts";
import { allNumbers, KIND_APPLY, KIND_MAP, KIND_STAR } from "./_protocol.ts";
import { traceSubmit, tracing } from "../trace/_writer.ts";
import {
  lengthOf,
  type MapOptions,
  mapOptions,
  startProgress,
} from "../_progress.ts";

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

/** What a pool does its own way; the {@linkcode PoolCore} does the rest. */
export interface Transport {
  /** Sends what is pending (`core.pending`). */
  dispatch(): void;
  /** Whether an imap may queue more tasks now. */
  wantsMore(): boolean;
  /** Most chunks one imap holds between its source and its consumer. */
  cap(): number;
  /** Nothing is in flight or being sent. */
  idle(): boolean;
  /** Stops the workers (terminate, a broken pool), before the jobs fail. */
  stop(error: unknown): void;
  /** After close or terminate: ends what can end; true once all has ended. */
  settle(): boolean;
  /** The results loop while it runs (join waits for it). */
  receiving(): Promise<void> | null;
}

/** What a task is called in a "cannot be sent" message. */
export interface Described {
  what: string;
  size: number;
}

/** One pool's submitting state and logic; its `transport` sends. */
export class PoolCore {
  /** Its class's name, for messages ("Pool", "RedisPool"). */
  readonly name: string;
  readonly processes: number;
  readonly module: string | undefined;
  /** What join's message says close() lets finish. */
  readonly #work: string;
  transport!: Transport;
  pending: Fifo<Task> = new Fifo<Task>();
  jobs: Set<Job> = new Set<Job>();
  feeders: Set<ImapJob> = new Set<ImapJob>();
  fnDefs: TargetRef[] = [];
  closed = false;
  terminated = false;
  broken: { error: unknown } | null = null;
  /** join() was called: imaps read their items to the end, read or not. */
  joining = false;
  #fnIds = new Map<unknown, number>();
  #checks = new Map<unknown, Promise<number>>();
  #callers = new WeakMap<AnyFn, string | undefined>();
  /** Submissions waiting for their function to be checked (kept in order). */
  #gate: Promise<unknown> | null = null;
  #waitingSubmissions = 0;
  #dispatchSoon = false;
  #describe = new WeakMap<Job, Described>();
  #quiet: Promise<void>;
  #resolveQuiet!: () => void;

  constructor(
    name: string,
    processes: number,
    module: string | undefined,
    work: string,
  ) {
    this.name = name;
    this.processes = processes;
    this.module = module;
    this.#work = work;
    this.#quiet = new Promise((r) => this.#resolveQuiet = r);
  }

  /**
   * The submitting module, where `fn` may be exported: only for a function
   * this pool has not seen (walking the stack costs ~12 us a call).
   */
  caller(fn: unknown): string | undefined {
    if (typeof fn !== "function" || this.#fnIds.has(fn)) return undefined;
    // A burst of submissions before the first lookup ends walks once: the
    // first caller's module stands for the function until its lookup fails.
    const f = fn as AnyFn;
    if (this.#callers.has(f)) return this.#callers.get(f);
    const caller = callerModule();
    this.#callers.set(f, caller);
    return caller;
  }

  applyAsync<R>(
    fn: AnyFn,
    args: unknown[] | undefined,
    callbacks: ResultCallbacks<R>,
    caller: string | undefined,
  ): AsyncResult<R> {
    this.checkRunning();
    checkFn(fn, "fn");
    const a = args ?? [];
    if (!Array.isArray(a)) {
      throw new TypeError(
        `args must be an array of arguments, got ${
          show(a)
        }; write apply(fn, [x])`,
      );
    }
    checkCallbacks(callbacks);
    const result = new AsyncResult<R>(callbacks);
    const job = new ResultJob(
      result as AsyncResult<unknown>,
      1,
      0,
      this.#jobEnded,
    );
    this.jobs.add(job);
    this.#submit(fn, caller, job, (fnId) => {
      this.#enqueueChunks(job, fnId, KIND_APPLY, [a], "args", 0);
    });
    return result;
  }

  mapAsync(
    fn: AnyFn,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    sizeOrOptions: number | MapOptions | undefined,
    callbacks: ResultCallbacks<unknown[]>,
    kind: number,
    caller: string | undefined,
  ): AsyncResult<unknown[]> {
    const { chunksize, progress } = mapOptions(sizeOrOptions);
    this.checkRunning();
    checkFn(fn, "fn");
    checkItems(items, kind === KIND_STAR ? "argsList" : "items");
    checkChunksize(chunksize);
    checkCallbacks(callbacks);
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
        this.#jobEnded(job);
        settleResult(result as AsyncResult<unknown>, false, error);
      },
    };
    this.jobs.add(job);
    const enqueue = (fnId: number, list: unknown[]) => {
      if (job.over) return;
      if (kind === KIND_STAR) checkArgsLists(list);
      const { size, chunks } = splitChunks(list, chunksize, this.processes);
      this.jobs.delete(job);
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
      if (!real.over) this.jobs.add(real);
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

  imap(
    fn: AnyFn,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    sizeOrOptions: number | MapOptions,
    ordered: boolean,
    caller: string | undefined,
  ): ImapJob {
    const { chunksize = 1, progress } = mapOptions(sizeOrOptions, 1);
    this.checkRunning();
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
    this.jobs.add(job);
    this.feeders.add(job);
    if (tracing) traceSubmit(fn.name, undefined, chunksize);
    this.#submit(fn, caller, job, (fnId) => job.start(fnId, items));
    return job;
  }

  #feeder: Feeder = {
    wantsMore: () =>
      !this.terminated && !this.broken && this.transport.wantsMore(),
    cap: () => this.joining ? Infinity : this.transport.cap(),
    enqueue: (task) => this.pending.push(task),
    dispatch: () => this.transport.dispatch(),
    fed: (job) => {
      if (this.feeders.delete(job)) this.checkQuiet();
    },
    done: (job) => {
      this.jobs.delete(job);
      this.checkQuiet();
    },
  };

  #jobEnded = (job: Job): void => {
    this.jobs.delete(job);
    this.checkQuiet();
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
      .then(() => this.lookUp(fn, caller))
      .then((fnId) => {
        if (job.over) return;
        if (this.broken) throw this.broken.error;
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
      this.checkQuiet();
    });
    this.#gate = gate;
  }

  /**
   * Finds `fn` by reference, as a worker will: exported from the pool's
   * module or the caller's, under its own name. Returns its id.
   */
  lookUp(fn: AnyFn, caller: string | undefined): Promise<number> {
    const known = this.#fnIds.get(fn);
    if (known !== undefined) return Promise.resolve(known);
    let check = this.#checks.get(fn);
    if (!check) {
      check = (async () => {
        const candidates = [...new Set([this.module, caller])].filter((
          u,
        ): u is string => u !== undefined);
        if (candidates.length === 0) candidates.push(moduleUrl(undefined));
        const ref = await findExported(fn, candidates);
        const id = this.fnDefs.push(ref) - 1;
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
      this.pending.push({
        job,
        index: i,
        fnId,
        kind,
        payload,
        num: kind === KIND_MAP && allNumbers(payload),
        seq: 0,
      });
    }
    this.#describe.set(job, { what, size });
    if (tracing) traceSubmit(this.fnDefs[fnId]?.name, chunks, size);
    // Submissions made in one go (a loop of apply calls) share a dispatch,
    // so they travel in shared batches, not one send and wake-up each.
    if (!this.#dispatchSoon) {
      this.#dispatchSoon = true;
      queueMicrotask(() => {
        this.#dispatchSoon = false;
        this.transport.dispatch();
      });
    }
  }

  /** What `job`'s tasks are called in a "cannot be sent" message. */
  describe(job: Job): Described | undefined {
    return this.#describe.get(job);
  }

  checkRunning(): void {
    if (this.terminated) {
      throw new ProcessError(
        `${this.name} is terminated: it takes no new tasks; create a new ${this.name}`,
      );
    }
    if (this.closed) {
      throw new ProcessError(
        `${this.name} is closed: it takes no new tasks after close(); submit before closing, or create a new ${this.name}`,
      );
    }
    if (this.broken) throw this.broken.error;
  }

  // ---- ending ------------------------------------------------------------

  /** True once closed and nothing is left to run. */
  idle(): boolean {
    return this.closed && this.pending.length === 0 &&
      this.feeders.size === 0 && this.#waitingSubmissions === 0 &&
      this.transport.idle();
  }

  /** After close/terminate: lets the transport end; resolves join() once all is quiet. */
  checkQuiet(): void {
    if (!this.closed) return;
    if (this.transport.settle()) this.#resolveQuiet();
  }

  /** Fails everything with `error` and stops the workers (initializer failed, ...). */
  breakPool(error: unknown): void {
    if (this.broken || this.terminated) return;
    this.broken = { error };
    this.#stopAll(error);
  }

  #stopAll(error: unknown): void {
    this.transport.stop(error);
    this.pending.drain();
    for (const job of [...this.jobs]) job.abort(error);
    this.jobs.clear();
    for (const f of [...this.feeders]) f.abort(error);
    this.feeders.clear();
    this.checkQuiet();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.checkQuiet();
  }

  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.closed = true;
    this.#stopAll(
      new ProcessError("the pool was terminated before this task finished"),
    );
  }

  async join(): Promise<void> {
    if (!this.closed) {
      throw new ProcessError(
        `${this.name} is still running: call close() (let ${this.#work} finish) or terminate() before join()`,
      );
    }
    if (!this.joining) {
      // A `for await` that ended at a task's error left its imap unread.
      this.joining = true;
      for (const f of this.feeders) f.poke();
    }
    this.checkQuiet();
    // A pool's workers and results loop hold nothing: hold the program meanwhile.
    await keepAlive(this.#quiet);
    const receiving = this.transport.receiving();
    if (receiving) await keepAlive(receiving);
  }
}

let bind!: (pool: BasePool, core: PoolCore) => void;

/** Gives `pool` its core (in the pool's constructor); returns the core. */
export function bindCore(pool: BasePool, core: PoolCore): PoolCore {
  bind(pool, core);
  return core;
}

/**
 * What every pool of this module offers (the local {@linkcode Pool} and
 * `RedisPool` of `@mp/multiprocessing/redis`): Python's `Pool` methods, with
 * {@linkcode AsyncResult}s. Write code that takes any pool against it.
 *
 * Task functions are found by reference: exported from the pool's module
 * (the `module` option, else the module that created the pool) or from the
 * module that submits them.
 *
 * It is a type to write against (and to test with `instanceof`), not a base
 * for pools of your own: a subclass gets no workers, and its methods throw a
 * TypeError saying so. Extend `Pool` to add methods to a pool.
 *
 * @example Code for any pool
 * ```ts
 * import { type BasePool, Pool } from "@mp/multiprocessing";
 *
 * export function double(x: number): number {
 *   return 2 * x;
 * }
 *
 * async function doubled(pool: BasePool, xs: number[]): Promise<number[]> {
 *   return await pool.map(double, xs);
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 1 });
 *   console.log(await doubled(pool, [1, 2])); // [ 2, 4 ]
 * }
 * ```
 */
export abstract class BasePool implements AsyncDisposable {
  #bound: PoolCore | undefined;

  static {
    bind = (pool, core) => pool.#bound = core;
  }

  /** The core its pool's constructor bound; a class of the user's has none. */
  get #core(): PoolCore {
    if (this.#bound) return this.#bound;
    throw new TypeError(
      `${this.constructor.name} extends BasePool, which cannot send tasks by itself (only Pool and RedisPool give it workers): extend Pool instead, or use BasePool as a type`,
    );
  }

  /**
   * Refuses to cross into another process, as Python's pool refuses to be
   * pickled: its workers and results belong to the process that made it
   * (structured clone would make it an empty `{}`).
   *
   * @throws {TypeError} always.
   */
  [reduceSymbol](): Reduced {
    const e = new TypeError(this[notQueueable]);
    e.name = "DataCloneError"; // as reduce() names what it refuses
    throw e;
  }

  /** Why a queue cannot carry a pool either. */
  get [notQueueable](): string {
    return `a ${this.constructor.name} cannot be sent to another process: its workers belong to the process that made it; send the tasks' data (or results), or make a pool in the child`;
  }

  /** The number of worker processes (expected ones, for a remote pool). */
  get processes(): number {
    return this.#core.processes;
  }

  /** Runs `fn(...args)` in a worker and resolves with its result. */
  apply<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
  ): Promise<Awaited<R>> {
    try {
      const c = this.#core;
      return c.applyAsync<Awaited<R>>(fn, args, {}, c.caller(fn)).get();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode BasePool.apply}, returning an {@linkcode AsyncResult} at once. */
  applyAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
    callbacks: ResultCallbacks<Awaited<R>> = {},
  ): AsyncResult<Awaited<R>> {
    const c = this.#core;
    return c.applyAsync(fn, args, callbacks, c.caller(fn));
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
      return this.#map(fn, items, chunksize, {}, KIND_MAP).get() as Promise<
        Awaited<R>[]
      >;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode BasePool.map}, returning an {@linkcode AsyncResult} at once. */
  mapAsync<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize?: number | MapOptions,
    callbacks: ResultCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    const cb = callbacks as ResultCallbacks<unknown[]>;
    return this.#map(fn, items, chunksize, cb, KIND_MAP) as AsyncResult<
      Awaited<R>[]
    >;
  }

  /** Like {@linkcode BasePool.map}, calling `fn(...args)` for every `args` array. */
  starmap<A extends unknown[], R>(
    fn: (...args: A) => R,
    argsList: Iterable<A> | AsyncIterable<A>,
    chunksize?: number | MapOptions,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#map(fn, argsList, chunksize, {}, KIND_STAR).get() as Promise<
        Awaited<R>[]
      >;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode BasePool.starmap}, returning an {@linkcode AsyncResult} at once. */
  starmapAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    argsList: Iterable<A> | AsyncIterable<A>,
    chunksize?: number | MapOptions,
    callbacks: ResultCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    const cb = callbacks as ResultCallbacks<unknown[]>;
    return this.#map(fn, argsList, chunksize, cb, KIND_STAR) as AsyncResult<
      Awaited<R>[]
    >;
  }

  #map(
    fn: AnyFn,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number | MapOptions | undefined,
    callbacks: ResultCallbacks<unknown[]>,
    kind: number,
  ): AsyncResult<unknown[]> {
    const c = this.#core;
    return c.mapAsync(fn, items, chunksize, callbacks, kind, c.caller(fn));
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
    const c = this.#core;
    return c.imap(fn, items, chunksize, true, c.caller(fn)) as IMapIterator<
      Awaited<R>
    >;
  }

  /** Like {@linkcode BasePool.imap}, yielding results in the order they finish. */
  imapUnordered<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize: number | MapOptions = 1,
  ): IMapIterator<Awaited<R>> {
    const c = this.#core;
    return c.imap(fn, items, chunksize, false, c.caller(fn)) as IMapIterator<
      Awaited<R>
    >;
  }

  /**
   * Takes no more tasks; the workers end once the submitted ones are done
   * (an `imap` that is still being read counts as submitted).
   */
  close(): void {
    this.#core.close();
  }

  /**
   * Ends the work now. Unfinished results reject with an error saying the
   * pool was terminated.
   */
  terminate(): void {
    this.#core.terminate();
  }

  /**
   * Waits until the workers ended (after `close()`: the submitted work is
   * done); call `close()` or `terminate()` first. After `close()`, the
   * items of an `imap` still being fed are read to their end, consumed or
   * not (as Python's imap reads them all at once; the results wait for
   * their reader): an endless one holds it, so `break` out of it,
   * `return()` it, or `terminate()`.
   *
   * @throws {ProcessError} when the pool is still running.
   */
  join(): Promise<void> {
    return this.#core.join();
  }

  /** Terminates the pool and waits for it: `await using pool = new Pool()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.terminate();
    await this.join();
  }
}
