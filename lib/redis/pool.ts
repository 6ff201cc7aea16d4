/**
 * `RedisPool`: `Pool`'s methods with workers that are other programs, on
 * this machine or others, reached through Redis. Tasks go into a Redis
 * stream read by a consumer group of worker programs (`worker.ts`);
 * results come back on a list of the caller's own.
 *
 * @module
 */

import { repr } from "../_inspect.ts";
import {
  AsyncResult,
  type Feeder,
  Fifo,
  ImapJob,
  type Job,
  type ResultCallbacks,
  ResultJob,
  settleResult,
  type Task,
} from "../_pool_jobs.ts";
import {
  checkChunksize,
  checkFn,
  checkItems,
  splitChunks,
} from "../_pool_checks.ts";
import { KIND_APPLY, KIND_MAP, KIND_STAR } from "../_pool_protocol.ts";
import {
  callerModule,
  findExported,
  moduleUrl,
  type TargetRef,
} from "../process/_target.ts";
import { ProcessError } from "../errors.ts";
import { keepAlive } from "../shm/_wait.ts";
import { showNumber } from "../_show.ts";
import {
  asBuffer,
  checkMs,
  checkName,
  checkUrl,
  CONNECT_TIMEOUT_MS,
  decode,
  encode,
  type Link,
  script,
  uniqueId,
} from "./_client.ts";
import { callerKey, GROUP, resultsKey, tasksKey } from "./_keys.ts";
import { Links } from "./queue.ts";
import {
  ADD_LUA,
  FAILED,
  type Header,
  OK,
  packTasks,
  POISON,
  rebuildRemote,
  type Reply,
} from "./_wire.ts";
import { PoisonTaskError } from "./errors.ts";
import { Buffer } from "node:buffer";

/**
 * Options of {@linkcode RedisPool}.
 *
 * @example
 * ```ts
 * import type { RedisPoolOptions } from "@mp/multiprocessing/redis";
 * const options: RedisPoolOptions = { url: "redis://127.0.0.1:6379", name: "render", maxTries: 2 };
 * console.log(options.maxTries); // 2
 * ```
 */
export interface RedisPoolOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** The pool's name: its workers run with `--pool <name>`. */
  name: string;
  /**
   * The module that exports the task functions (`import.meta.url`); default:
   * the module that created the pool. Workers import it by this URL, so it
   * must be one they can load (the same path on their machine, or https://)
   * and under their `--allow-module`.
   */
  module?: string | URL;
  /**
   * Deliveries of a task whose worker keeps dying before it is moved to the
   * dead-letter stream and fails with `PoisonTaskError` (default 3).
   */
  maxTries?: number;
  /** Worker processes expected, for map's default chunksize (default 4). */
  processes?: number;
  /**
   * Ms results wait in Redis for this caller, and that tasks of a caller
   * that went away are still run (default 60000).
   */
  resultTtl?: number;
  /** Most ms to wait for Redis to answer when connecting (default 10000). */
  connectTimeout?: number;
}

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

/** Most chunks an imap keeps in flight. */
const IMAP_WINDOW = 256;
/** Most tasks in one add script. */
const ADD_BATCH = 512;
/** Longest wait (s) of one result read, between checks of what is pending. */
const READ_SLICE_S = 1;

function positiveInt(v: unknown, what: string, fix: string): void {
  if (
    v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 1)
  ) {
    throw new RangeError(
      `${what} must be a positive integer${fix}, got ${showNumber(v)}`,
    );
  }
}

/**
 * A pool whose workers are other programs (Python's `Pool`, across
 * machines): the methods of {@linkcode Pool} (`apply`, `applyAsync`, `map`,
 * `mapAsync`, `imap`, `imapUnordered`, `starmap`, `starmapAsync`, `close`,
 * `terminate`, `join`, `await using`) with {@linkcode AsyncResult}s, on
 * workers started with
 * `deno run -A <module>/worker.ts --url <redis url> --pool <name> --allow-module <prefix>`.
 *
 * Task functions are found by reference, as the local pool's are: exported
 * from the pool's `module` (or the submitting module), imported by the
 * workers by URL. Arguments and results travel in the module's codec.
 *
 * Delivery is at-least-once: a task whose worker program died (killed, out
 * of memory, its machine gone) is delivered to another worker after the
 * workers' visibility timeout, so a task with side effects may see them
 * twice; its result still reaches the caller exactly once. A task that
 * ends its worker `maxTries` times fails with `PoisonTaskError` (and is kept
 * in the dead-letter stream); a task that throws is not retried: its result
 * rejects with its error, as with the local pool. Nothing waits for a
 * worker that does not exist: use `AsyncResult.get(timeoutMs)`.
 *
 * @example
 * ```ts ignore
 * import { RedisPool } from "@mp/multiprocessing/redis";
 *
 * export function square(x: number): number {
 *   return x * x;
 * }
 *
 * if (import.meta.main) {
 *   await using pool = new RedisPool({ url: "redis://127.0.0.1:6379", name: "squares" });
 *   console.log(await pool.map(square, [1, 2, 3])); // [ 1, 4, 9 ]
 * }
 * ```
 */
export class RedisPool implements AsyncDisposable {
  #name: string;
  #module: string | undefined;
  #maxTries: number;
  #processes: number;
  #resultTtl: number;
  #links: Links;
  #caller = uniqueId();
  #tasksKey: string;
  #resultsKey: string;
  #callerKey: string;
  #started: Promise<void> | undefined;
  #fnIds = new Map<unknown, number>();
  #fnDefs: TargetRef[] = [];
  #headers = new Map<number, Buffer>();
  #checks = new Map<unknown, Promise<number>>();
  #pending = new Fifo<Task>();
  #inflight = new Map<number, Task>();
  #entryIds = new Map<number, string>();
  #seq = 0;
  #jobs = new Set<Job>();
  #feeders = new Set<ImapJob>();
  #looking = 0;
  #sending = 0;
  #flushQueued = false;
  #receiving: Promise<void> | null = null;
  #beat: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #terminated = false;
  #quiet: Promise<void>;
  #resolveQuiet!: () => void;

  /** A caller of the pool `name` at `url`; see {@linkcode RedisPoolOptions}. */
  constructor(options: RedisPoolOptions) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `RedisPool options must be an object like { url: "redis://127.0.0.1:6379", name: "work" }, got ${
          options === null ? "null" : typeof options
        }`,
      );
    }
    const url = checkUrl(options.url, "RedisPool");
    this.#name = checkName(options.name, "RedisPool");
    positiveInt(options.maxTries, "RedisPool: maxTries", "");
    positiveInt(
      options.processes,
      "RedisPool: processes",
      " (the worker processes expected, for map's default chunksize)",
    );
    checkMs(options.resultTtl, "RedisPool: resultTtl");
    checkMs(options.connectTimeout, "RedisPool: connectTimeout");
    this.#maxTries = options.maxTries ?? 3;
    this.#processes = options.processes ?? 4;
    this.#resultTtl = options.resultTtl ?? 60_000;
    this.#module = options.module !== undefined
      ? moduleUrl(options.module)
      : callerModule();
    this.#links = new Links({
      url,
      name: this.#name,
      maxsize: 0,
      connectTimeout: options.connectTimeout ?? CONNECT_TIMEOUT_MS,
    });
    this.#tasksKey = tasksKey(this.#name);
    this.#resultsKey = resultsKey(this.#name, this.#caller);
    this.#callerKey = callerKey(this.#name, this.#caller);
    this.#quiet = new Promise((r) => this.#resolveQuiet = r);
  }

  /** The worker processes expected (the `processes` option), for map's default chunksize. */
  get processes(): number {
    return this.#processes;
  }

  /** `RedisPool { name: "render", state: "RUN" }`: its own fields, no Redis round trip. */
  toString(): string {
    return repr("RedisPool", {
      name: this.#name,
      state: this.#terminated ? "TERMINATE" : this.#closed ? "CLOSE" : "RUN",
    });
  }

  /** {@linkcode RedisPool.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  // ---- submitting (as Pool's) ---------------------------------------------

  /** Runs `fn(...args)` in a worker and resolves with its result. */
  apply<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
  ): Promise<Awaited<R>> {
    try {
      return this.#applyAsync<Awaited<R>>(fn, args, {}, this.#callerOf(fn))
        .get();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode RedisPool.apply}, returning an {@linkcode AsyncResult} at once. */
  applyAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
    callbacks: ResultCallbacks<Awaited<R>> = {},
  ): AsyncResult<Awaited<R>> {
    return this.#applyAsync(fn, args, callbacks, this.#callerOf(fn));
  }

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
        `args must be an array of arguments, got ${typeof a}; write apply(fn, [x])`,
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
      this.#enqueue(job, 0, fnId, KIND_APPLY, a);
      this.#dispatch();
    });
    return result;
  }

  /**
   * Calls `fn(item)` for every item, in the workers, and resolves with the
   * results in order; items go in chunks of `chunksize` (default: about four
   * chunks per expected worker process).
   */
  map<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync(
        fn,
        items,
        chunksize,
        {},
        KIND_MAP,
        this.#callerOf(fn),
      )
        .get() as Promise<Awaited<R>[]>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode RedisPool.map}, returning an {@linkcode AsyncResult} at once. */
  mapAsync<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
    callbacks: ResultCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(
      fn,
      items,
      chunksize,
      callbacks as ResultCallbacks<unknown[]>,
      KIND_MAP,
      this.#callerOf(fn),
    ) as AsyncResult<Awaited<R>[]>;
  }

  /** Like {@linkcode RedisPool.map}, calling `fn(...args)` for every `args` array. */
  starmap<A extends unknown[], R>(
    fn: (...args: A) => R,
    argsList: Iterable<A> | AsyncIterable<A>,
    chunksize?: number,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync(
        fn,
        argsList,
        chunksize,
        {},
        KIND_STAR,
        this.#callerOf(fn),
      ).get() as Promise<Awaited<R>[]>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode RedisPool.starmap}, returning an {@linkcode AsyncResult} at once. */
  starmapAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    argsList: Iterable<A> | AsyncIterable<A>,
    chunksize?: number,
    callbacks: ResultCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(
      fn,
      argsList,
      chunksize,
      callbacks as ResultCallbacks<unknown[]>,
      KIND_STAR,
      this.#callerOf(fn),
    ) as AsyncResult<Awaited<R>[]>;
  }

  #mapAsync(
    fn: AnyFn,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number | undefined,
    callbacks: ResultCallbacks<unknown[]>,
    kind: number,
    caller: string | undefined,
  ): AsyncResult<unknown[]> {
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
        this.#jobEnded(job);
        settleResult(result as AsyncResult<unknown>, false, error);
      },
    };
    this.#jobs.add(job);
    const enqueue = (fnId: number, list: unknown[]) => {
      if (job.over) return;
      const { size, chunks } = splitChunks(list, chunksize, this.#processes);
      this.#jobs.delete(job);
      job.over = true;
      const real = new ResultJob(
        result as AsyncResult<unknown>,
        list.length,
        size,
        this.#jobEnded,
      );
      if (!real.over) this.#jobs.add(real);
      for (let i = 0; i < chunks.length; i++) {
        this.#enqueue(real, i, fnId, kind, chunks[i]);
      }
      this.#dispatch();
    };
    this.#submit(fn, caller, job, async (fnId) => {
      if (Array.isArray(items)) return enqueue(fnId, items);
      if (typeof (items as Iterable<unknown>)[Symbol.iterator] === "function") {
        return enqueue(fnId, Array.from(items as Iterable<unknown>));
      }
      const list: unknown[] = [];
      for await (const x of items as AsyncIterable<unknown>) {
        if (job.over) return;
        list.push(x);
      }
      enqueue(fnId, list);
    });
    return result;
  }

  /**
   * Yields `fn(item)` for every item, in order, as results arrive; `items`
   * (any iterable or async iterable) is read lazily, as far ahead as the
   * workers and the consumer keep up.
   */
  imap<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize = 1,
  ): AsyncIterableIterator<Awaited<R>> {
    return this.#imap(
      fn,
      items,
      chunksize,
      true,
      this.#callerOf(fn),
    ) as AsyncIterableIterator<Awaited<R>>;
  }

  /** Like {@linkcode RedisPool.imap}, yielding results in the order they finish. */
  imapUnordered<T, R>(
    fn: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    chunksize = 1,
  ): AsyncIterableIterator<Awaited<R>> {
    return this.#imap(
      fn,
      items,
      chunksize,
      false,
      this.#callerOf(fn),
    ) as AsyncIterableIterator<Awaited<R>>;
  }

  #imap(
    fn: AnyFn,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number,
    ordered: boolean,
    caller: string | undefined,
  ): ImapJob {
    this.#checkRunning();
    checkFn(fn, "fn");
    checkItems(items, "items");
    checkChunksize(chunksize);
    const job = new ImapJob(this.#feeder, ordered, chunksize, KIND_MAP);
    this.#jobs.add(job);
    this.#feeders.add(job);
    this.#submit(fn, caller, job, (fnId) => job.start(fnId, items));
    return job;
  }

  #feeder: Feeder = {
    wantsMore: () =>
      !this.#terminated &&
      this.#pending.length + this.#inflight.size < IMAP_WINDOW,
    cap: () => 2 * IMAP_WINDOW,
    enqueue: (task) => this.#pending.push(task),
    dispatch: () => this.#dispatch(),
    fed: (job) => {
      if (this.#feeders.delete(job)) this.#checkQuiet();
    },
    done: (job) => {
      this.#jobs.delete(job);
      this.#checkQuiet();
    },
  };

  #jobEnded = (job: Job): void => {
    this.#jobs.delete(job);
    this.#checkQuiet();
  };

  /** Finds `fn` (once per function), then runs `go`; a failure fails `job`. */
  #submit(
    fn: AnyFn,
    caller: string | undefined,
    job: Job,
    go: (fnId: number) => void | Promise<void>,
  ): void {
    const known = this.#fnIds.get(fn);
    const run = (fnId: number) => {
      if (job.over) return;
      const r = go(fnId);
      if (r) {
        this.#looking++;
        r.catch((e) => job.abort(e)).finally(() => {
          this.#looking--;
          this.#checkQuiet();
        });
      }
    };
    if (known !== undefined) {
      try {
        run(known);
      } catch (e) {
        job.abort(e);
      }
      return;
    }
    this.#looking++;
    this.#lookUp(fn, caller).then(run).catch((e) => job.abort(e)).finally(
      () => {
        this.#looking--;
        this.#checkQuiet();
      },
    );
  }

  /** The submitting module, needed only to find a function not met yet. */
  #callerOf(fn: unknown): string | undefined {
    return this.#fnIds.has(fn) ? undefined : callerModule();
  }

  #lookUp(fn: AnyFn, caller: string | undefined): Promise<number> {
    let check = this.#checks.get(fn);
    if (!check) {
      const candidates = [...new Set([this.#module, caller])].filter((
        u,
      ): u is string => u !== undefined);
      if (candidates.length === 0) candidates.push(moduleUrl(undefined));
      check = findExported(fn, candidates).then((ref) => {
        const id = this.#fnDefs.push(ref) - 1;
        this.#fnIds.set(fn, id);
        return id;
      });
      this.#checks.set(fn, check);
      check.catch(() => this.#checks.delete(fn));
    }
    return check;
  }

  #enqueue(
    job: Job,
    index: number,
    fnId: number,
    kind: number,
    payload: unknown[],
  ): void {
    this.#pending.push({
      job,
      index,
      fnId,
      kind,
      payload,
      num: false,
      seq: 0,
    });
  }

  #checkRunning(): void {
    if (this.#terminated) {
      throw new ProcessError(
        "RedisPool is terminated: it takes no new tasks; create a new RedisPool",
      );
    }
    if (this.#closed) {
      throw new ProcessError(
        "RedisPool is closed: it takes no new tasks after close(); submit before closing, or create a new RedisPool",
      );
    }
  }

  // ---- sending and receiving -----------------------------------------------

  /** Connects, makes the group, and marks this caller alive (once). */
  #start(l: Link): Promise<void> {
    this.#started ??= l.run(async (r) => {
      try {
        await r.xgroup("CREATE", this.#tasksKey, GROUP, "0", "MKSTREAM");
      } catch (e) {
        if (!String(e).includes("BUSYGROUP")) throw e;
      }
    });
    this.#started.catch(() => this.#started = undefined);
    return this.#started;
  }

  /** Sends what is pending, in one batch per turn of the event loop. */
  #dispatch(): void {
    if (this.#flushQueued || this.#terminated) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#pending.length > 0 && !this.#terminated) {
      const batch: Task[] = [];
      // Tasks by header (function and kind), packed per header.
      const groups = new Map<Buffer, { seq: number; bytes: Uint8Array }[]>();
      while (batch.length < ADD_BATCH && this.#pending.length > 0) {
        const t = this.#pending.shift()!;
        if (t.job.over) continue;
        let payload: Buffer;
        try {
          payload = encode(t.payload);
        } catch (e) {
          t.job.error(t.index, e);
          continue;
        }
        t.seq = ++this.#seq;
        const h = this.#header(t);
        let g = groups.get(h);
        if (!g) groups.set(h, g = []);
        g.push({ seq: t.seq, bytes: payload });
        this.#inflight.set(t.seq, t);
        batch.push(t);
      }
      const args: Buffer[] = [];
      // The ids come back in the order of the packs.
      const order: Task[] = [];
      for (const [h, tasks] of groups) {
        args.push(h, asBuffer(packTasks(tasks, Buffer.allocUnsafe)));
        for (const x of tasks) order.push(this.#inflight.get(x.seq)!);
      }
      if (order.length) this.#send(order, args);
    }
    this.#receive();
    for (const f of this.#feeders) f.poke();
  }

  /** A task's header, the same bytes for every task of one function and kind. */
  #header(t: Task): Buffer {
    const key = t.fnId * 4 + t.kind;
    let h = this.#headers.get(key);
    if (!h) {
      const ref = this.#fnDefs[t.fnId];
      const header: Header = [
        this.#caller,
        ref.module,
        ref.name,
        t.kind,
        this.#maxTries,
        this.#resultTtl,
      ];
      this.#headers.set(key, h = encode(header));
    }
    return h;
  }

  async #send(batch: Task[], args: Buffer[]): Promise<void> {
    this.#sending++;
    try {
      const l = await this.#links.main();
      await this.#start(l);
      this.#keepCallerAlive(l);
      const ids = await l.run((r) =>
        script(r, "mpPoolAdd", ADD_LUA, 1, [this.#tasksKey, ...args])
      ) as string[];
      for (let i = 0; i < batch.length; i++) {
        if (this.#inflight.has(batch[i].seq)) {
          this.#entryIds.set(batch[i].seq, ids[i]);
        }
      }
    } catch (e) {
      for (const t of batch) {
        if (this.#inflight.delete(t.seq)) t.job.error(t.index, e);
      }
    } finally {
      this.#sending--;
      this.#checkQuiet();
    }
  }

  /** While tasks are out, refreshes the key by which workers know this caller waits. */
  #keepCallerAlive(l: Link): void {
    if (this.#beat !== undefined) return;
    const mark = () =>
      l.run((r) => r.set(this.#callerKey, "1", "PX", this.#resultTtl)).catch(
        () => {},
      );
    mark();
    this.#beat = setInterval(() => {
      if (this.#inflight.size === 0 && this.#sending === 0) {
        clearInterval(this.#beat);
        this.#beat = undefined;
      } else mark();
    }, Math.max(Math.floor(this.#resultTtl / 3), 1));
    Deno.unrefTimer(this.#beat);
  }

  #receive(): void {
    if (this.#receiving || this.#inflight.size === 0) return;
    this.#receiving = (async () => {
      while (this.#inflight.size > 0 && !this.#terminated) {
        let got: [Buffer, Buffer[]] | null;
        try {
          got = await this.#links.blocking((b) =>
            b.run((r) =>
              r.blmpopBuffer(
                READ_SLICE_S,
                1,
                this.#resultsKey,
                "LEFT",
                "COUNT",
                1000,
              ), false)
          );
        } catch (e) {
          if (!this.#terminated) this.#failAll(e);
          return;
        }
        if (got) {
          for (const b of got[1]) {
            for (const reply of decode(b) as Reply[]) this.#onReply(reply);
          }
          for (const f of this.#feeders) f.poke();
        }
      }
    })().finally(() => {
      this.#receiving = null;
      if (this.#inflight.size > 0 && !this.#terminated) this.#receive();
      else this.#checkQuiet();
    });
  }

  #onReply(reply: Reply): void {
    const [seq, status, value] = reply;
    const t = this.#inflight.get(seq);
    // Not waited for: a redelivered task's second result, or one dropped.
    if (!t) return;
    this.#inflight.delete(seq);
    this.#entryIds.delete(seq);
    if (t.job.over) return;
    if (status === OK) {
      let v: unknown;
      try {
        v = decode(value as Uint8Array);
      } catch (e) {
        t.job.error(t.index, e);
        return;
      }
      t.job.result(t.index, v);
    } else if (status === FAILED) {
      t.job.error(t.index, rebuildRemote(value as never));
    } else if (status === POISON) {
      const ref = this.#fnDefs[t.fnId];
      const [tries, id] = value as [number, string];
      t.job.error(
        t.index,
        new PoisonTaskError(ref.module, ref.name, tries, id),
      );
    }
  }

  #failAll(error: unknown): void {
    const tasks = [...this.#inflight.values()];
    this.#inflight.clear();
    this.#entryIds.clear();
    for (const t of tasks) t.job.error(t.index, error);
  }

  // ---- ending --------------------------------------------------------------

  #busy(): boolean {
    return this.#jobs.size > 0 || this.#feeders.size > 0 || this.#looking > 0 ||
      this.#sending > 0 || this.#inflight.size > 0 ||
      this.#pending.length > 0;
  }

  #checkQuiet(): void {
    if (!this.#closed && !this.#terminated) return;
    if (this.#terminated || !this.#busy()) {
      if (this.#receiving === null && this.#sending === 0) {
        this.#links.close();
        clearInterval(this.#beat);
        this.#resolveQuiet();
      }
    }
  }

  /** Takes no more tasks; `join()` resolves once the submitted ones are done. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#checkQuiet();
  }

  /**
   * Stops waiting now: unfinished results reject with an error saying the
   * pool was terminated; tasks no worker took yet are removed from Redis
   * (tasks running on workers run to their end, their results dropped).
   */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#closed = true;
    const error = new ProcessError(
      "the pool was terminated before this task finished",
    );
    const ids = [...this.#entryIds.values()];
    this.#pending.drain();
    this.#inflight.clear();
    this.#entryIds.clear();
    for (const job of [...this.#jobs]) job.abort(error);
    this.#jobs.clear();
    for (const f of [...this.#feeders]) f.abort(error);
    this.#feeders.clear();
    this.#sending++;
    this.#links.main().then((l) =>
      l.run(async (r) => {
        const m = r.multi().del(this.#callerKey, this.#resultsKey);
        if (ids.length) m.xdel(this.#tasksKey, ...ids);
        await m.exec();
      })
    ).catch(() => {}).finally(() => {
      this.#sending--;
      this.#checkQuiet();
    });
    // A blocked result read ends with its connection.
    this.#links.closeBlocking();
    this.#checkQuiet();
  }

  /** Waits until the submitted work is done (after close) or dropped (after terminate). */
  async join(): Promise<void> {
    if (!this.#closed && !this.#terminated) {
      throw new ProcessError(
        "RedisPool is still running: call close() (let submitted work finish) or terminate() before join()",
      );
    }
    this.#checkQuiet();
    await keepAlive(this.#quiet);
  }

  /** Terminates the pool: `await using pool = new RedisPool(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.terminate();
    await this.join();
  }
}
