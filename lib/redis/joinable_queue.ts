/**
 * `RedisJoinableQueue`: Python's `JoinableQueue` on a Redis stream with a
 * consumer group, so an item taken by a consumer that dies before
 * `taskDone()` goes back to the queue (at-least-once delivery).
 *
 * @module
 */

import { repr } from "../_inspect.ts";
import type { BlockOptions } from "../queues.ts";
import { Empty, Full, ProcessError, TimeoutError } from "../errors.ts";
import { checkTimeout, deadline } from "../shm/_wait.ts";
import { Fifo } from "../_fifo.ts";
import {
  bufferCommand,
  checkMs,
  decode,
  encode,
  type Link,
  sleep,
  uniqueId,
} from "./_client.ts";
import { GROUP, joinableKey } from "./_keys.ts";
import {
  Links,
  parseBlock,
  parseQueueOptions,
  type QueueConfig,
  type RedisQueueOptions,
} from "./queue.ts";

/**
 * Options of {@linkcode RedisJoinableQueue}.
 *
 * @example
 * ```ts
 * import type { RedisJoinableQueueOptions } from "@mp/multiprocessing/redis";
 * const options: RedisJoinableQueueOptions = {
 *   url: "redis://127.0.0.1:6379",
 *   name: "jobs",
 *   visibilityTimeout: 10_000,
 * };
 * console.log(options.visibilityTimeout); // 10000
 * ```
 */
export interface RedisJoinableQueueOptions extends RedisQueueOptions {
  /**
   * Ms after which an item taken by a consumer that stopped answering (it
   * died: its handle no longer heartbeats) goes back to the queue (default
   * 30000). Give every handle the same.
   */
  visibilityTimeout?: number;
}

/** Default visibility timeout (ms). */
const VISIBILITY_MS = 30_000;
/** Longest slice (ms) of a blocking read, between looks for abandoned items. */
const READ_SLICE_MS = 1_000;
/** Longest pause (ms) between tries of a put waiting for room, or of join. */
const POLL_MAX_MS = 50;

// Waiting items = entries not yet acknowledged minus those a consumer holds.
const PUT_BOUNDED = `
local waiting = redis.call('XLEN', KEYS[1]) - redis.call('XPENDING', KEYS[1], ARGV[3])[1]
if waiting >= tonumber(ARGV[2]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'd', ARGV[1])
return 1`;

const SIZE = `
return redis.call('XLEN', KEYS[1]) - redis.call('XPENDING', KEYS[1], ARGV[1])[1]`;

const DONE = `
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  return 1
end
return 0`;

type Entry = [id: Uint8Array, fields: Uint8Array[]];

/**
 * A {@linkcode RedisQueue} whose items are acknowledged: `get()` hands an
 * item out, `taskDone()` says it was handled, `join()` waits until every
 * item put was handled (Python's `JoinableQueue`, across programs).
 *
 * Delivery is at-least-once: while a handle holds items it got and has not
 * marked done, it heartbeats them; if its program dies (or stops answering)
 * for `visibilityTimeout` ms, those items are handed to the next `get`, of
 * any handle. A consumer that did part of an item's work before it died
 * sees that work done again, so make item handling idempotent (or check
 * before acting). `taskDone()` marks the oldest item this handle got and
 * has not marked yet.
 *
 * @example
 * ```ts ignore
 * import { RedisJoinableQueue } from "@mp/multiprocessing/redis";
 * await using q = new RedisJoinableQueue<number>({ url: "redis://127.0.0.1:6379", name: "work" });
 * await q.put(21);
 * const n = await q.get({ timeout: 1000 });
 * console.log(n * 2); // 42
 * await q.taskDone();
 * await q.join(1000);
 * ```
 */
export class RedisJoinableQueue<T = unknown> implements AsyncDisposable {
  #config: QueueConfig;
  #visibility: number;
  #links: Links;
  #key: string;
  #me = uniqueId();
  #group: Promise<void> | undefined;
  #held = new Fifo<string>();
  #heldSet = new Set<string>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** A handle on the queue `name` at `url`; see {@linkcode RedisJoinableQueueOptions}. */
  constructor(options: RedisJoinableQueueOptions) {
    this.#config = parseQueueOptions(options, "RedisJoinableQueue");
    checkMs(options.visibilityTimeout, "RedisJoinableQueue: visibilityTimeout");
    this.#visibility = options.visibilityTimeout ?? VISIBILITY_MS;
    this.#links = new Links(this.#config);
    this.#key = joinableKey(this.#config.name);
  }

  /** The queue's name in Redis. */
  get name(): string {
    return this.#config.name;
  }

  /** The most items the queue holds waiting (0: no limit). */
  get maxsize(): number {
    return this.#config.maxsize;
  }

  /** `RedisJoinableQueue { name: "jobs", maxsize: 0, closed: false }`: its own fields, no Redis round trip. */
  toString(): string {
    return repr("RedisJoinableQueue", {
      name: this.name,
      maxsize: this.maxsize,
      closed: this.#closed,
    });
  }

  /** {@linkcode RedisJoinableQueue.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  async #main(): Promise<Link> {
    if (this.#closed) {
      throw new ProcessError(
        `RedisJoinableQueue '${this.#config.name}' is closed: create a new one to use it again`,
      );
    }
    const l = await this.#links.main();
    this.#group ??= l.run(async (r) => {
      try {
        await r.xgroup("CREATE", this.#key, GROUP, "0", "MKSTREAM");
      } catch (e) {
        if (!String(e).includes("BUSYGROUP")) throw e;
      }
    });
    try {
      await this.#group;
    } catch (e) {
      this.#group = undefined;
      throw e;
    }
    return l;
  }

  /**
   * Appends `item`; with `maxsize`, waits for room.
   *
   * @param options `{ timeout: 0 }` or `{ block: false }`: do not wait.
   * @throws {Full} (rejects) when still full after `timeout`, or full and
   *   `block` is false.
   * @throws {RedisConnectionError} (rejects) when Redis cannot be reached.
   */
  async put(item: T, options?: BlockOptions): Promise<void> {
    const until = parseBlock(options, "put");
    const bytes = encode(item);
    const l = await this.#main();
    const max = this.#config.maxsize;
    if (max === 0) {
      await l.run((r) => r.xadd(this.#key, "*", "d", bytes));
      return;
    }
    for (let pause = 1;; pause = Math.min(pause * 2, POLL_MAX_MS)) {
      const ok = await l.run((r) =>
        r.eval(PUT_BOUNDED, 1, this.#key, bytes, max, GROUP)
      );
      if (ok === 1) return;
      const left = until - performance.now();
      if (left <= 0) {
        throw new Full(
          `RedisJoinableQueue '${this.#config.name}' is full (maxsize ${max})`,
        );
      }
      await sleep(Math.min(pause, left));
    }
  }

  /** {@linkcode RedisJoinableQueue.put} that throws `Full` at once when there is no room. */
  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  /**
   * Takes the oldest waiting item (or one a dead consumer held past the
   * visibility timeout), waiting for one. Mark it with `taskDone()`.
   *
   * @param options `{ timeout: 0 }` or `{ block: false }`: do not wait.
   * @throws {Empty} (rejects) when none came within `timeout`, or none is
   *   there and `block` is false.
   */
  async get(options?: BlockOptions): Promise<T> {
    const until = parseBlock(options, "get");
    const l = await this.#main();
    for (;;) {
      const claimed = await l.run((r) =>
        bufferCommand(
          r,
          "xautoclaim",
          this.#key,
          GROUP,
          this.#me,
          this.#visibility,
          "0-0",
          "COUNT",
          1,
        )
      ) as [Uint8Array, Entry[]];
      let entry: Entry | undefined = claimed[1].find((e) => e && e[1]);
      if (!entry) {
        const left = until - performance.now();
        const block = Math.min(left, READ_SLICE_MS);
        const read = block < 1
          ? await l.run((r) =>
            r.xreadgroupBuffer(
              "GROUP",
              GROUP,
              this.#me,
              "COUNT",
              1,
              "STREAMS",
              this.#key,
              ">",
            )
          )
          : await this.#links.blocking((b) =>
            b.run((r) =>
              r.xreadgroupBuffer(
                "GROUP",
                GROUP,
                this.#me,
                "COUNT",
                1,
                "BLOCK",
                Math.ceil(block),
                "STREAMS",
                this.#key,
                ">",
              )
            )
          );
        entry = (read as [Uint8Array, Entry[]][] | null)?.[0]?.[1]?.[0];
      }
      if (entry) {
        const id = new TextDecoder().decode(entry[0]);
        this.#hold(id);
        return decode(entry[1][1]) as T;
      }
      if (until - performance.now() <= 0) {
        throw new Empty(`RedisJoinableQueue '${this.#config.name}' is empty`);
      }
    }
  }

  /** {@linkcode RedisJoinableQueue.get} that throws `Empty` at once when there is no item. */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  #hold(id: string): void {
    if (this.#heldSet.has(id)) return;
    this.#held.push(id);
    this.#heldSet.add(id);
    if (this.#heartbeat === undefined) {
      // Resets the items' idle time; without it they go back to the queue.
      this.#heartbeat = setInterval(() => {
        const ids = [...this.#heldSet];
        if (ids.length === 0 || this.#closed) return;
        this.#links.main().then((l) =>
          l.run((r) =>
            r.xclaim(this.#key, GROUP, this.#me, 0, ...ids, "JUSTID")
          )
        ).catch(() => {
          // Redis away for a moment: the next beat tries again.
        });
      }, Math.max(Math.floor(this.#visibility / 3), 1));
      Deno.unrefTimer(this.#heartbeat);
    }
  }

  /**
   * Marks the oldest item this handle got (and has not marked) as done: it
   * leaves Redis for good.
   *
   * @throws {ProcessError} (rejects) when this handle holds no item.
   */
  async taskDone(): Promise<void> {
    const id = this.#held.shift();
    if (id === undefined) {
      throw new ProcessError(
        `taskDone() called more times than this handle got items from RedisJoinableQueue '${this.#config.name}'`,
      );
    }
    this.#heldSet.delete(id);
    if (this.#heldSet.size === 0) this.#stopHeartbeat();
    const l = await this.#main();
    await l.run((r) => r.eval(DONE, 1, this.#key, GROUP, id));
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  /**
   * Resolves once every item put (by any handle) was marked done.
   *
   * @param timeoutMs The most to wait; undefined: forever.
   * @throws {TimeoutError} (rejects) when items are still not done after
   *   `timeoutMs`.
   */
  async join(timeoutMs?: number): Promise<void> {
    checkTimeout(timeoutMs, "join timeout");
    const until = deadline(timeoutMs);
    const l = await this.#main();
    for (let pause = 1;; pause = Math.min(pause * 2, POLL_MAX_MS)) {
      if (await l.run((r) => r.xlen(this.#key)) === 0) return;
      const left = until - performance.now();
      if (left <= 0) {
        throw new TimeoutError(
          `RedisJoinableQueue '${this.#config.name}' still had items not marked done after ${timeoutMs} ms`,
        );
      }
      await sleep(Math.min(pause, left));
    }
  }

  /** The number of items waiting (not held by a consumer). */
  async qsize(): Promise<number> {
    const l = await this.#main();
    return await l.run((r) => r.eval(SIZE, 1, this.#key, GROUP)) as number;
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

  /**
   * Drops this handle's connections. Items it got and did not mark done go
   * back to the queue after the visibility timeout.
   */
  close(): void {
    this.#closed = true;
    this.#stopHeartbeat();
    this.#links.close();
  }

  /** Calls close(). */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
