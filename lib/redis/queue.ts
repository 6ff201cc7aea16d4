/**
 * `RedisQueue`: Python's `multiprocessing.Queue` whose items live in a Redis
 * list, so producers and consumers may be any programs on any machines that
 * reach the same Redis. Items travel in the module's codec (never as code).
 *
 * @module
 */

import { repr } from "../_inspect.ts";
import type { BlockOptions } from "../queues.ts";
import { Empty, Full, ProcessError } from "../errors.ts";
import { checkTimeout, deadline } from "../shm/_wait.ts";
import {
  checkMs,
  checkName,
  checkUrl,
  CONNECT_TIMEOUT_MS,
  decode,
  encode,
  Link,
  sleep,
} from "./_client.ts";
import { queueKey } from "./_keys.ts";

/**
 * Options of {@linkcode RedisQueue} and {@linkcode RedisJoinableQueue}.
 *
 * @example
 * ```ts
 * import type { RedisQueueOptions } from "@mp/multiprocessing/redis";
 * const options: RedisQueueOptions = { url: "redis://127.0.0.1:6379", name: "jobs", maxsize: 100 };
 * console.log(options.name); // jobs
 * ```
 */
export interface RedisQueueOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** The queue's name: every handle with the same url and name is the same queue. */
  name: string;
  /** Most items waiting (0 or undefined: no limit); give every handle the same. */
  maxsize?: number;
  /** Most ms to wait for Redis to answer when connecting (default 10000). */
  connectTimeout?: number;
}

/** Parsed options, shared with the joinable queue. */
export interface QueueConfig {
  url: string;
  name: string;
  maxsize: number;
  connectTimeout: number;
}

/** Checks the options of a Redis queue (`what`: the class, for messages). */
export function parseQueueOptions(
  options: RedisQueueOptions,
  what: string,
): QueueConfig {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${what} options must be an object like { url: "redis://127.0.0.1:6379", name: "jobs" }, got ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  const maxsize = options.maxsize ?? 0;
  if (
    typeof maxsize !== "number" || !Number.isInteger(maxsize) || maxsize < 0
  ) {
    throw new RangeError(
      `${what}: maxsize must be a non-negative integer number of items (0 = no limit), got ${
        String(maxsize)
      }`,
    );
  }
  checkMs(options.connectTimeout, `${what}: connectTimeout`);
  return {
    url: checkUrl(options.url, what),
    name: checkName(options.name, what),
    maxsize,
    connectTimeout: options.connectTimeout ?? CONNECT_TIMEOUT_MS,
  };
}

/** Checks `{ block, timeout }`, giving the deadline (0: do not block). */
export function parseBlock(
  options: BlockOptions | undefined,
  what: string,
): number {
  if (options === undefined) return Infinity;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${what} takes options like { block: false } or { timeout: 100 }, got ${
        String(options)
      }`,
    );
  }
  checkTimeout(options.timeout, `${what} timeout`);
  return (options.block ?? true) ? deadline(options.timeout) : 0;
}

/** The connections of one queue handle: one for commands, more for blocking reads. */
export class Links {
  #config: QueueConfig;
  #main: Promise<Link> | undefined;
  #mainLink: Link | undefined;
  #idle: Link[] = [];
  #all = new Set<Link>();
  #closed = false;

  constructor(config: QueueConfig) {
    this.#config = config;
  }

  #open(): Promise<Link> {
    return Link.open(this.#config.url, this.#config.connectTimeout).then(
      (l) => {
        if (this.#closed) l.close();
        else this.#all.add(l);
        return l;
      },
    );
  }

  /** The command connection (connected on first use). */
  main(): Promise<Link> {
    if (!this.#main) {
      this.#main = this.#open();
      this.#main.then((l) => this.#mainLink = l, () => {});
      // A failed connect is tried again by the next call.
      this.#main.catch(() => this.#main = undefined);
    }
    return this.#main;
  }

  /** Runs a blocking command on a connection of its own. */
  async blocking<T>(f: (l: Link) => Promise<T>): Promise<T> {
    await this.main();
    const l = this.#idle.pop() ?? await this.#open();
    try {
      return await f(l);
    } finally {
      if (!l.closed) this.#idle.push(l);
    }
  }

  /** Closes the blocking connections (a read in flight rejects). */
  closeBlocking(): void {
    const main = this.#mainLink;
    for (const l of this.#all) {
      if (l !== main) {
        l.close();
        this.#all.delete(l);
      }
    }
    this.#idle = [];
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const l of this.#all) l.close();
    this.#all.clear();
    this.#idle = [];
  }
}

const PUT_BOUNDED = `
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1`;

/** Longest pause (ms) between tries of a put waiting for room. */
const POLL_MAX_MS = 50;

/**
 * A FIFO queue in Redis shared by any number of producers and consumers in
 * any programs (Python's `multiprocessing.Queue`, across machines).
 *
 * Every method talks to Redis, so they are all async (`putNowait`,
 * `getNowait`, `qsize` too). A `get` takes the item out of Redis: if the
 * consumer dies right after, the item is gone with it; use
 * {@linkcode RedisJoinableQueue} for items that must survive their consumer.
 * Items are any value the module's codec carries (what structured clone
 * carries, without shared memory); a value it cannot carry rejects the put
 * with a `DataCloneError` naming where it sits.
 *
 * Connecting happens on first use; an unreachable URL rejects with
 * `RedisConnectionError`, a wrong password with `AuthenticationError`, within
 * `connectTimeout`. `close()` (or `using`) drops the connections; an idle
 * queue does not keep the program alive.
 *
 * @example
 * ```ts ignore
 * import { RedisQueue } from "@mp/multiprocessing/redis";
 * await using q = new RedisQueue<string>({ url: "redis://127.0.0.1:6379", name: "jobs" });
 * await q.put("hello");
 * console.log(await q.get({ timeout: 1000 })); // hello
 * ```
 */
export class RedisQueue<T = unknown> implements AsyncDisposable {
  #config: QueueConfig;
  #links: Links;
  #key: string;
  #closed = false;

  /**
   * A handle on the queue `name` at `url`; see {@linkcode RedisQueueOptions}.
   * It connects on first use.
   *
   * @throws {TypeError} for options that are not an object, or a bad `url`
   *   or `name`.
   * @throws {RangeError} for a `maxsize` that is not a non-negative integer.
   */
  constructor(options: RedisQueueOptions) {
    this.#config = parseQueueOptions(options, "RedisQueue");
    this.#links = new Links(this.#config);
    this.#key = queueKey(this.#config.name);
  }

  /** The queue's name in Redis. */
  get name(): string {
    return this.#config.name;
  }

  /** The most items the queue holds (0: no limit). */
  get maxsize(): number {
    return this.#config.maxsize;
  }

  /** `RedisQueue { name: "jobs", maxsize: 0, closed: false }`: its own fields, no Redis round trip. */
  toString(): string {
    return repr("RedisQueue", {
      name: this.name,
      maxsize: this.maxsize,
      closed: this.#closed,
    });
  }

  /** {@linkcode RedisQueue.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  #check(): void {
    if (this.#closed) {
      throw new ProcessError(
        `RedisQueue '${this.#config.name}' is closed: create a new RedisQueue to use it again`,
      );
    }
  }

  /**
   * Appends `item`; with `maxsize`, waits for room.
   *
   * @param options `{ timeout: 0 }` or `{ block: false }`: do not wait.
   * @throws {Full} (rejects) when still full after `timeout`, or full and
   *   `block` is false.
   * @throws {TypeError} (rejects) naming the part of `item` that cannot be
   *   encoded.
   * @throws {RedisConnectionError} (rejects) when Redis cannot be reached.
   * @throws {ProcessError} (rejects) once this handle was closed.
   */
  async put(item: T, options?: BlockOptions): Promise<void> {
    this.#check();
    const until = parseBlock(options, "put");
    const bytes = encode(item);
    const l = await this.#links.main();
    const max = this.#config.maxsize;
    if (max === 0) {
      await l.run((r) => r.rpush(this.#key, bytes));
      return;
    }
    for (let pause = 1;; pause = Math.min(pause * 2, POLL_MAX_MS)) {
      const ok = await l.run((r) =>
        r.eval(PUT_BOUNDED, 1, this.#key, bytes, max)
      );
      if (ok === 1) return;
      const left = until - performance.now();
      if (left <= 0) {
        throw new Full(
          `RedisQueue '${this.#config.name}' is full (maxsize ${max})`,
        );
      }
      await sleep(Math.min(pause, left));
    }
  }

  /** {@linkcode RedisQueue.put} that throws `Full` at once when there is no room. */
  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  /**
   * Takes the oldest item, waiting for one.
   *
   * @param options `{ timeout: 0 }` or `{ block: false }`: do not wait.
   * @throws {Empty} (rejects) when none came within `timeout`, or none is
   *   there and `block` is false.
   * @throws {RedisConnectionError} (rejects) when Redis cannot be reached.
   */
  async get(options?: BlockOptions): Promise<T> {
    this.#check();
    const until = parseBlock(options, "get");
    const l = await this.#links.main();
    const got = await l.run((r) => r.lpopBuffer(this.#key));
    if (got) return decode(got) as T;
    for (;;) {
      const left = until - performance.now();
      if (left <= 0) {
        throw new Empty(`RedisQueue '${this.#config.name}' is empty`);
      }
      // BLPOP's timeout is in seconds (0: forever): wait in slices so a
      // finite deadline is kept to the millisecond.
      const secs = left === Infinity ? 0 : Math.max(left, 1) / 1000;
      const popped = await this.#links.blocking((b) =>
        b.run((r) => r.blpopBuffer(this.#key, secs))
      );
      if (popped) return decode(popped[1]) as T;
    }
  }

  /** {@linkcode RedisQueue.get} that throws `Empty` at once when there is no item. */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  /** The number of items waiting. */
  async qsize(): Promise<number> {
    this.#check();
    const l = await this.#links.main();
    return await l.run((r) => r.llen(this.#key));
  }

  /** True when no item waits. */
  async empty(): Promise<boolean> {
    return await this.qsize() === 0;
  }

  /** True when `maxsize` items wait. */
  async full(): Promise<boolean> {
    return this.#config.maxsize > 0 &&
      await this.qsize() >= this.#config.maxsize;
  }

  /** Drops this handle's connections (the queue and its items stay in Redis). */
  close(): void {
    this.#closed = true;
    this.#links.close();
  }

  /** Calls close(). */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
