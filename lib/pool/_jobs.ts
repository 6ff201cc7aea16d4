/**
 * The pool's bookkeeping of submitted work: {@linkcode AsyncResult} (public,
 * re-exported by `pool.ts`), the jobs that collect results (`ResultJob` for
 * apply/map/starmap, `ImapJob` for the lazy iterators) and a small FIFO.
 *
 * @module
 */

import { ProcessError, TimeoutError } from "../errors.ts";
import { checkTimeout, settlesWithin } from "../shm/_wait.ts";
import { allNumbers, KIND_MAP } from "./_protocol.ts";
import { repr } from "../_inspect.ts";
import { Fifo } from "../_fifo.ts";
import { type Progress, rethrowLater } from "../_progress.ts";
import { isThenable } from "../_values.ts";

/**
 * Callbacks for the async submitters; they run in the parent when the result is ready.
 *
 * @example
 * ```ts
 * import { Pool, type ResultCallbacks } from "@mp/multiprocessing";
 * export function square(x: number) {
 *   return x * x;
 * }
 * const callbacks: ResultCallbacks<number> = {
 *   callback: (r) => console.log("result", r),
 *   errorCallback: (e) => console.error("failed", e),
 * };
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 1 });
 *   await pool.applyAsync(square, [4], callbacks).wait(); // result 16
 * }
 * ```
 */
export interface ResultCallbacks<R> {
  /** Called with the result once the task(s) succeeded. */
  callback?: (result: R) => void;
  /** Called with the error once the task (or one of them) failed. */
  errorCallback?: (error: unknown) => void;
}

let settle: (r: AsyncResult<unknown>, ok: boolean, v: unknown) => void;

/** Internal: settles `r` (used by the jobs and the pool). */
export function settleResult(
  r: AsyncResult<unknown>,
  ok: boolean,
  v: unknown,
): void {
  settle(r, ok, v);
}

/**
 * The future result of `applyAsync`, `mapAsync` or `starmapAsync`
 * (Python's `AsyncResult`).
 *
 * @example
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export function add(a: number, b: number): number {
 *   return a + b;
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 1 });
 *   const r = pool.applyAsync(add, [2, 3]);
 *   console.log(await r.get(5_000)); // 5
 *   console.log(r.ready(), r.successful()); // true true
 * }
 * ```
 */
export class AsyncResult<R> {
  #state: "pending" | "ok" | "error" = "pending";
  #value: unknown;
  #promise: Promise<R>;
  #resolve!: (v: R) => void;
  #reject!: (e: unknown) => void;
  #callbacks: ResultCallbacks<R>;

  static {
    settle = (r, ok, v) => r.#settle(ok, v);
  }

  /** Internal: results come from the pool's submitters. */
  constructor(callbacks: ResultCallbacks<R> = {}) {
    this.#callbacks = callbacks;
    this.#promise = new Promise<R>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#promise.catch(() => {});
  }

  #settle(ok: boolean, v: unknown): void {
    if (this.#state !== "pending") return;
    this.#state = ok ? "ok" : "error";
    this.#value = v;
    const cb = ok ? this.#callbacks.callback : this.#callbacks.errorCallback;
    if (cb) {
      try {
        (cb as (x: unknown) => void)(v);
      } catch (e) {
        // Like an event listener's error: reported, not swallowed.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
    if (ok) this.#resolve(v as R);
    else this.#reject(v);
  }

  /**
   * The result, once ready; rejects with the task's error. With `timeoutMs`,
   * rejects with `TimeoutError` if it is not ready by then.
   */
  get(timeoutMs?: number): Promise<R> {
    timeoutMs = checkTimeout(timeoutMs, "get timeout");
    if (this.#state !== "pending") return this.#promise;
    return settlesWithin(this.#promise, timeoutMs).then((ready) => {
      if (!ready) {
        throw new TimeoutError(
          `the result was not ready after ${timeoutMs} ms`,
        );
      }
      return this.#promise;
    });
  }

  /** Waits until the result is ready, or until `timeoutMs` passed; never rejects. */
  async wait(timeoutMs?: number): Promise<void> {
    timeoutMs = checkTimeout(timeoutMs, "wait timeout");
    if (this.#state !== "pending") return;
    await settlesWithin(this.#promise, timeoutMs);
  }

  /** True once the result (or error) is there. */
  ready(): boolean {
    return this.#state !== "pending";
  }

  /** True if the task(s) succeeded; throws while not ready (as Python). */
  successful(): boolean {
    if (this.#state === "pending") {
      throw new ProcessError(
        "the result is not ready yet: call successful() after ready() is true (or after await wait())",
      );
    }
    return this.#state === "ok";
  }

  /** `AsyncResult { ready: true, successful: true }`: its state here, never a wait. */
  toString(): string {
    const ready = this.#state !== "pending";
    return repr("AsyncResult", {
      ready,
      successful: ready ? this.#state === "ok" : undefined,
    });
  }

  /** {@linkcode AsyncResult.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/** A unit of work sent to a worker: one call, or one chunk of a map. */
export interface Task {
  /** Who wants the result. */
  job: Job;
  /** The chunk's index in its job. */
  index: number;
  /** The function, by id (see the pool's function table). */
  fnId: number;
  /** KIND_APPLY, KIND_MAP or KIND_STAR. */
  kind: number;
  /** The arguments (apply), items (map) or argument lists (starmap). */
  payload: unknown[];
  /** True when `payload` is all numbers (map): sent as raw float64. */
  num: boolean;
  /** Sequence number in its worker, once sent. */
  seq: number;
}

/** What submitted tasks report to. */
export interface Job {
  /** No more results wanted (failed, cancelled, or aborted). */
  over: boolean;
  /** Chunk `index` succeeded with `value` (an array for map chunks). */
  result(index: number, value: unknown): void;
  /** Chunk `index` succeeded with the numbers `src[from, from + len)`. */
  resultNum(index: number, src: Float64Array, from: number, len: number): void;
  /** Chunk `index` failed. */
  error(index: number, error: unknown): void;
  /** The pool ended or broke: fail with `error`. */
  abort(error: unknown): void;
}

/**
 * Settles an AsyncResult from the chunks of one submission: one value for
 * apply, or (`size` > 0) the items of every chunk, written straight into
 * the final array (chunk `i` holds items `i * size ...`).
 */
export class ResultJob implements Job {
  over = false;
  #out: unknown[] | undefined;
  #one: unknown;
  #size: number;
  #left: number;
  #result: AsyncResult<unknown>;
  #onEnd: (job: Job) => void;
  /** Counts the items done, when the call shows progress. */
  progress: Progress | null = null;

  /** `size` 0: one apply call; else map chunks of `size` over `total` items. */
  constructor(
    result: AsyncResult<unknown>,
    total: number,
    size: number,
    onEnd: (job: Job) => void,
    progress: Progress | null = null,
  ) {
    this.#result = result;
    this.#size = size;
    this.#onEnd = onEnd;
    this.progress = progress;
    if (size === 0) this.#left = 1;
    else {
      this.#out = new Array(total);
      this.#left = Math.ceil(total / size);
    }
    if (this.#left === 0) this.#finish(true, this.#out);
  }

  result(index: number, value: unknown): void {
    if (this.over) return;
    if (this.#out) {
      const out = this.#out, v = value as unknown[];
      let k = index * this.#size;
      for (let i = 0; i < v.length; i++) out[k++] = v[i];
      this.progress?.add(v.length);
    } else this.#one = value;
    if (--this.#left === 0) this.#finish(true, this.#out ?? this.#one);
  }

  resultNum(index: number, src: Float64Array, from: number, len: number): void {
    if (this.over) return;
    if (this.#out) {
      const out = this.#out;
      let k = index * this.#size;
      for (let i = 0; i < len; i++) out[k++] = src[from + i];
      this.progress?.add(len);
    } else this.#one = src[from];
    if (--this.#left === 0) this.#finish(true, this.#out ?? this.#one);
  }

  error(_index: number, error: unknown): void {
    if (!this.over) this.#finish(false, error);
  }

  abort(error: unknown): void {
    this.error(-1, error);
  }

  #finish(ok: boolean, v: unknown): void {
    this.over = true;
    this.#out = undefined;
    const thrown = this.progress?.end();
    // The progress callback threw on its last report: the call fails with it.
    if (thrown !== undefined && ok) [ok, v] = [false, thrown];
    this.#onEnd(this);
    settleResult(this.#result, ok, v);
  }
}

/** What an imap iterator gets from its pool. */
export interface Feeder {
  /** Whether the pool wants more queued tasks. */
  wantsMore(): boolean;
  /** Most chunks one imap may hold between its source and its consumer. */
  cap(): number;
  /** Queues a task (without sending it yet). */
  enqueue(task: Task): void;
  /** Sends what is queued. */
  dispatch(): void;
  /** The job will create no more tasks. */
  fed(job: ImapJob): void;
  /** The job wants nothing more from the pool. */
  done(job: ImapJob): void;
}

interface Waiter {
  resolve: (r: IteratorResult<unknown>) => void;
  reject: (e: unknown) => void;
}

type Taken =
  | { kind: "item"; value: unknown }
  | { kind: "error"; error: unknown }
  | { kind: "done" };

/**
 * What `imap` and `imapUnordered` return (Python's `IMapIterator`): an async
 * iterator whose `next(timeoutMs)` is Python's `it.next(timeout)`. A task
 * that threw rejects in its place and the results after it still come; a
 * `for await` loop ends at that throw (as any throw ends it), so read past
 * an error with `next()`.
 *
 * @example Waiting a bounded time for each result
 * ```ts
 * import { type IMapIterator, Pool, TimeoutError } from "@mp/multiprocessing";
 *
 * export async function slow(ms: number): Promise<number> {
 *   await new Promise((r) => setTimeout(r, ms));
 *   return ms;
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 1 });
 *   const it: IMapIterator<number> = pool.imap(slow, [200, 0]);
 *   try {
 *     await it.next(10);
 *   } catch (e) {
 *     console.log(e instanceof TimeoutError); // true: 200 ms is not over yet
 *   }
 *   console.log(await it.next()); // { done: false, value: 200 }: kept for this call
 *   console.log(await it.next(5_000)); // { done: false, value: 0 }
 * }
 * ```
 *
 * @example Reading past a task that threw
 * ```ts
 * import { Pool } from "@mp/multiprocessing";
 *
 * export function notThree(x: number): number {
 *   if (x === 3) throw new RangeError("three");
 *   return x;
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 2 });
 *   const it = pool.imap(notThree, [0, 1, 2, 3, 4]);
 *   for (let i = 0; i < 5; i++) {
 *     try {
 *       console.log((await it.next()).value); // 0, 1, 2, then 4
 *     } catch (e) {
 *       console.log("task failed:", (e as Error).message); // three
 *     }
 *   }
 * }
 * ```
 */
export interface IMapIterator<R> extends AsyncIterableIterator<R> {
  /**
   * The next result. With `timeoutMs`, rejects with `TimeoutError` when none
   * is ready by then, and the result comes to a later call.
   *
   * @throws {RangeError} when `timeoutMs` is not a non-negative number.
   */
  next(timeoutMs?: number): Promise<IteratorResult<R>>;
  /** Stops the iteration: no more items are read, queued tasks are dropped. */
  return(): Promise<IteratorResult<R>>;
  /** The iterator itself (`for await (const r of pool.imap(...))`). */
  [Symbol.asyncIterator](): IMapIterator<R>;
}

/** An `imap`/`imapUnordered` iteration: lazy feeding from the source, results to the consumer. */
export class ImapJob implements Job, IMapIterator<unknown> {
  /** True once the pool should drop this job's tasks and results. */
  over = false;
  #ordered: boolean;
  #chunksize: number;
  #feeder: Feeder;
  #fnId = -1;
  #kind: number;
  #source: Iterator<unknown> | AsyncIterator<unknown> | undefined;
  #sync = false;
  /** No more chunks will be created (source exhausted, failed, or feeding stopped). */
  #fed = false;
  #created = 0;
  #resulted = 0;
  #consumed = 0;
  /** ordered: results by chunk index; unordered: arrival order. */
  #byIndex = new Map<number, { ok: boolean; v: unknown }>();
  #arrived = new Fifo<{ ok: boolean; v: unknown }>();
  #next = 0;
  #current: unknown[] | null = null;
  #pos = 0;
  #waiters: Waiter[] = [];
  /** Delivered once the results before it are consumed (pool terminated, ...). */
  #failure: { error: unknown } | null = null;
  /** The consumer has seen the end (done, an error, or return()). */
  #closed = false;
  #wake: (() => void) | null = null;
  #pumping = false;
  /** Counts the items done, when the iteration shows progress. */
  progress: Progress | null = null;

  constructor(
    feeder: Feeder,
    ordered: boolean,
    chunksize: number,
    kind: number,
  ) {
    this.#feeder = feeder;
    this.#ordered = ordered;
    this.#chunksize = chunksize;
    this.#kind = kind;
  }

  /** Starts feeding once the function is known to be exported. */
  start(fnId: number, items: Iterable<unknown> | AsyncIterable<unknown>): void {
    if (this.over) return;
    this.#fnId = fnId;
    try {
      if (
        typeof (items as Iterable<unknown>)[Symbol.iterator] === "function"
      ) {
        this.#source = (items as Iterable<unknown>)[Symbol.iterator]();
        this.#sync = true;
      } else {
        this.#source = (items as AsyncIterable<unknown>)[
          Symbol.asyncIterator
        ]();
      }
    } catch (e) {
      this.#sourceFailed(e);
      return;
    }
    this.#pump().catch((e) => this.abort(e));
  }

  /** Wakes the feeding loop (room appeared, or it should stop). */
  poke(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  #canPull(): boolean {
    return this.#feeder.wantsMore() &&
      this.#created - this.#consumed < this.#feeder.cap();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (!this.#fed) {
        if (!this.#canPull()) {
          await new Promise<void>((r) => this.#wake = r);
          continue;
        }
        // A sync source fills what the pool wants in one go, sent as one batch.
        do {
          const chunk: unknown[] = [];
          let end = false;
          while (chunk.length < this.#chunksize) {
            let r: IteratorResult<unknown>;
            try {
              r = this.#sync
                ? (this.#source as Iterator<unknown>).next()
                : await (this.#source as AsyncIterator<unknown>).next();
            } catch (e) {
              if (chunk.length && !this.#fed) this.#enqueue(chunk);
              this.#sourceFailed(e);
              this.#feeder.dispatch();
              return;
            }
            if (this.#fed) return;
            if (r.done) {
              end = true;
              break;
            }
            chunk.push(r.value);
          }
          if (chunk.length) this.#enqueue(chunk);
          if (end) this.#setFed();
        } while (this.#sync && !this.#fed && this.#canPull());
        this.#feeder.dispatch();
      }
    } finally {
      this.#pumping = false;
      if (!this.#fed) this.#setFed();
    }
  }

  #enqueue(chunk: unknown[]): void {
    this.#feeder.enqueue({
      job: this,
      index: this.#created++,
      fnId: this.#fnId,
      kind: this.#kind,
      payload: chunk,
      num: this.#kind === KIND_MAP && allNumbers(chunk),
      seq: 0,
    });
  }

  #setFed(): void {
    if (this.#fed) return;
    this.#fed = true;
    this.#feeder.fed(this);
    this.#checkDone();
    this.#deliver();
  }

  #sourceFailed(e: unknown): void {
    // The source's own error comes in its place, after the results before it.
    const index = this.#created++;
    this.#setFed();
    this.#put(index, false, e);
  }

  /** Stops reading the source (and lets it clean up). */
  #stopFeeding(): void {
    if (this.#fed) return;
    const source = this.#source;
    this.#setFed();
    this.poke();
    try {
      const r = source?.return?.();
      if (isThenable(r)) (r as Promise<unknown>).then(undefined, () => {});
    } catch {
      // The source's cleanup failed; nothing to report it to.
    }
  }

  #checkDone(): void {
    if (this.over || (this.#fed && this.#resulted === this.#created)) {
      this.#feeder.done(this);
    }
  }

  result(index: number, value: unknown): void {
    if (!this.over) this.#put(index, true, value);
  }

  resultNum(index: number, src: Float64Array, from: number, len: number): void {
    if (this.over) return;
    const v = new Array(len);
    for (let i = 0; i < len; i++) v[i] = src[from + i];
    this.#put(index, true, v);
  }

  error(index: number, error: unknown): void {
    if (!this.over) this.#put(index, false, error);
  }

  #put(index: number, ok: boolean, v: unknown): void {
    this.#resulted++;
    this.progress?.add(ok ? (v as unknown[]).length : 1);
    if (this.#ordered) this.#byIndex.set(index, { ok, v });
    else this.#arrived.push({ ok, v });
    this.#checkDone();
    this.#deliver();
  }

  /** The pool ended: results already here stay readable, then `error`. */
  abort(error: unknown): void {
    if (this.over) return;
    this.over = true;
    endProgress(this.progress);
    this.#failure = { error };
    this.#stopFeeding();
    this.#checkDone();
    this.#deliver();
  }

  /** The consumer is done: drop everything. */
  #close(): void {
    endProgress(this.progress);
    this.#closed = true;
    this.over = true;
    this.#byIndex.clear();
    this.#arrived.drain();
    this.#current = null;
    this.#failure = null;
    this.#stopFeeding();
    this.#checkDone();
  }

  #take(): Taken | undefined {
    while (!this.#closed) {
      if (this.#current) {
        if (this.#pos < this.#current.length) {
          return { kind: "item", value: this.#current[this.#pos++] };
        }
        this.#current = null;
        this.#consumed++;
        this.poke();
      }
      let got: { ok: boolean; v: unknown } | undefined;
      if (this.#ordered) {
        got = this.#byIndex.get(this.#next);
        if (got) this.#byIndex.delete(this.#next++);
      } else got = this.#arrived.shift();
      if (got) {
        if (got.ok) {
          this.#current = got.v as unknown[];
          this.#pos = 0;
          continue;
        }
        // A task's error comes in its place and the rest still come (as
        // Python's); only the source's own error is its last chunk.
        this.#consumed++;
        this.poke();
        return { kind: "error", error: got.v };
      }
      if (this.#failure) {
        const { error } = this.#failure;
        this.#close();
        return { kind: "error", error };
      }
      if (this.#fed && this.#consumed === this.#created) {
        this.#close();
        return { kind: "done" };
      }
      return undefined;
    }
    return { kind: "done" };
  }

  #settle(
    t: Taken,
    resolve: (r: IteratorResult<unknown>) => void,
    reject: (e: unknown) => void,
  ): void {
    if (t.kind === "item") resolve({ done: false, value: t.value });
    else if (t.kind === "error") reject(t.error);
    else resolve({ done: true, value: undefined });
  }

  #deliver(): void {
    while (this.#waiters.length) {
      const t = this.#take();
      if (!t) return;
      const w = this.#waiters.shift()!;
      this.#settle(t, w.resolve, w.reject);
    }
  }

  /**
   * The next result: in order for `imap`, as they finish for
   * `imapUnordered`. With `timeoutMs`, rejects with `TimeoutError` if none
   * is ready by then; the result still comes to a later call.
   */
  next(timeoutMs?: number): Promise<IteratorResult<unknown>> {
    timeoutMs = checkTimeout(timeoutMs, "next timeout");
    if (this.#waiters.length === 0) {
      const t = this.#take();
      if (t) {
        return new Promise((resolve, reject) =>
          this.#settle(t, resolve, reject)
        );
      }
    }
    let waiter!: Waiter;
    const p = new Promise<IteratorResult<unknown>>((resolve, reject) => {
      waiter = { resolve, reject };
      this.#waiters.push(waiter);
    });
    return settlesWithin(p, timeoutMs).then((ready) => {
      const i = this.#waiters.indexOf(waiter);
      // Still waiting: leave, so the result goes to the next call.
      if (!ready && i >= 0) {
        this.#waiters.splice(i, 1);
        throw new TimeoutError(`no result was ready after ${timeoutMs} ms`);
      }
      return p;
    });
  }

  /** Stops the iteration: no more items are read, queued tasks are dropped. */
  return(): Promise<IteratorResult<unknown>> {
    if (!this.#closed) this.#close();
    for (const w of this.#waiters.splice(0)) {
      w.resolve({ done: true, value: undefined });
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** `IMapIterator { ordered: true }` (`done: true` once it ended). */
  toString(): string {
    return repr("IMapIterator", {
      ordered: this.#ordered,
      done: this.#closed || undefined,
    });
  }

  /** For `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/** An iteration's last progress report; the iteration has ended, so what its callback throws is reported later. */
function endProgress(p: Progress | null): void {
  const thrown = p?.end();
  if (thrown !== undefined) rethrowLater(thrown);
}
