/**
 * `RedisPool`: `Pool`'s methods with workers that are other programs, on
 * this machine or others, reached through Redis. Tasks go into a Redis
 * stream read by a consumer group of worker programs (`worker.ts`);
 * results come back on a list of the caller's own.
 *
 * @module
 */

import { repr } from "../_inspect.ts";
import type { Task } from "../pool/_jobs.ts";
import { callerModule, moduleUrl } from "../process/_target.ts";
import { showNumber } from "../_show.ts";
import { BasePool, bindCore, PoolCore, type Transport } from "../pool/_core.ts";
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
 * `terminate()` stops waiting: tasks no worker took yet are removed from
 * Redis; tasks running on workers run to their end, their results dropped.
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
export class RedisPool extends BasePool {
  #name: string;
  #core: PoolCore;

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
    const name = checkName(options.name, "RedisPool");
    positiveInt(options.maxTries, "RedisPool: maxTries", "");
    positiveInt(
      options.processes,
      "RedisPool: processes",
      " (the worker processes expected, for map's default chunksize)",
    );
    checkMs(options.resultTtl, "RedisPool: resultTtl");
    checkMs(options.connectTimeout, "RedisPool: connectTimeout");
    const module = options.module !== undefined
      ? moduleUrl(options.module)
      : callerModule();
    super();
    this.#name = name;
    const core = new PoolCore(
      "RedisPool",
      options.processes ?? 4,
      module,
      "submitted work",
    );
    this.#core = bindCore(this, core);
    core.transport = new RedisTransport(core, {
      name,
      maxTries: options.maxTries ?? 3,
      resultTtl: options.resultTtl ?? 60_000,
      links: new Links({
        url,
        name,
        maxsize: 0,
        connectTimeout: options.connectTimeout ?? CONNECT_TIMEOUT_MS,
      }),
    });
  }

  /** `RedisPool { name: "render", state: "RUN" }`: its own fields, no Redis round trip. */
  override toString(): string {
    const c = this.#core;
    return repr("RedisPool", {
      name: this.#name,
      state: c.terminated ? "TERMINATE" : c.closed ? "CLOSE" : "RUN",
    });
  }

  /** {@linkcode RedisPool.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/** How a RedisPool's tasks travel: a stream in, a list of its own back. */
class RedisTransport implements Transport {
  #core: PoolCore;
  #links: Links;
  #maxTries: number;
  #resultTtl: number;
  #caller = uniqueId();
  #tasksKey: string;
  #resultsKey: string;
  #callerKey: string;
  #started: Promise<void> | undefined;
  #headers = new Map<number, Buffer>();
  #inflight = new Map<number, Task>();
  #entryIds = new Map<number, string>();
  #seq = 0;
  #sending = 0;
  #flushQueued = false;
  #receiving: Promise<void> | null = null;
  #beat: ReturnType<typeof setInterval> | undefined;

  constructor(
    core: PoolCore,
    o: { name: string; maxTries: number; resultTtl: number; links: Links },
  ) {
    this.#core = core;
    this.#links = o.links;
    this.#maxTries = o.maxTries;
    this.#resultTtl = o.resultTtl;
    this.#tasksKey = tasksKey(o.name);
    this.#resultsKey = resultsKey(o.name, this.#caller);
    this.#callerKey = callerKey(o.name, this.#caller);
  }

  wantsMore(): boolean {
    return this.#core.pending.length + this.#inflight.size < IMAP_WINDOW;
  }

  cap(): number {
    return 2 * IMAP_WINDOW;
  }

  idle(): boolean {
    return this.#core.jobs.size === 0 && this.#sending === 0 &&
      this.#inflight.size === 0;
  }

  receiving(): Promise<void> | null {
    return this.#receiving;
  }

  /** Closes the connections once nothing is left to wait for. */
  settle(): boolean {
    const c = this.#core;
    if (!(c.terminated || c.idle())) return false;
    if (this.#receiving !== null || this.#sending !== 0) return false;
    this.#links.close();
    clearInterval(this.#beat);
    return true;
  }

  /** Drops what is in flight and removes the tasks no worker took from Redis. */
  stop(): void {
    const ids = [...this.#entryIds.values()];
    this.#inflight.clear();
    this.#entryIds.clear();
    this.#sending++;
    this.#links.main().then((l) =>
      l.run(async (r) => {
        const m = r.multi().del(this.#callerKey, this.#resultsKey);
        if (ids.length) m.xdel(this.#tasksKey, ...ids);
        await m.exec();
      })
    ).catch(() => {}).finally(() => {
      this.#sending--;
      this.#core.checkQuiet();
    });
    // A blocked result read ends with its connection.
    this.#links.closeBlocking();
  }

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
  dispatch(): void {
    if (this.#flushQueued || this.#core.terminated) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#core.pending.length > 0 && !this.#core.terminated) {
      const batch: Task[] = [];
      // Tasks by header (function and kind), packed per header.
      const groups = new Map<Buffer, { seq: number; bytes: Uint8Array }[]>();
      while (batch.length < ADD_BATCH && this.#core.pending.length > 0) {
        const t = this.#core.pending.shift()!;
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
    for (const f of this.#core.feeders) f.poke();
  }

  /** A task's header, the same bytes for every task of one function and kind. */
  #header(t: Task): Buffer {
    const key = t.fnId * 4 + t.kind;
    let h = this.#headers.get(key);
    if (!h) {
      const ref = this.#core.fnDefs[t.fnId];
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
      const adding = l.run((r) =>
        script(r, "mpPoolAdd", ADD_LUA, 1, [this.#tasksKey, ...args])
      );
      // The result read goes out after the tasks: they are the latency.
      this.#receive();
      const ids = await adding as string[];
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
      this.#core.checkQuiet();
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
      while (this.#inflight.size > 0 && !this.#core.terminated) {
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
          if (!this.#core.terminated) this.#failAll(e);
          return;
        }
        if (got) {
          for (const b of got[1]) {
            for (const reply of decode(b) as Reply[]) this.#onReply(reply);
          }
          for (const f of this.#core.feeders) f.poke();
        }
      }
    })().finally(() => {
      this.#receiving = null;
      if (this.#inflight.size > 0 && !this.#core.terminated) this.#receive();
      else this.#core.checkQuiet();
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
      const ref = this.#core.fnDefs[t.fnId];
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
}
