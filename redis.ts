/**
 * Past one machine: the module's queues and pool on Redis
 * (`@mp/multiprocessing/redis`). Producers, consumers, pool callers and
 * pool workers may be any programs on any machines that reach the same
 * Redis. Values travel in the module's codec, never as code.
 *
 * @example
 * ```ts ignore
 * import { RedisQueue } from "@mp/multiprocessing/redis";
 * await using q = new RedisQueue<string>({ url: "redis://127.0.0.1:6379", name: "jobs" });
 * await q.put("hello");
 * console.log(await q.get()); // hello
 * ```
 *
 * @module
 */
export {
  ModuleNotAllowedError,
  PoisonTaskError,
  RedisConnectionError,
} from "./lib/redis/errors.ts";
export { RedisQueue, type RedisQueueOptions } from "./lib/redis/queue.ts";
export {
  RedisJoinableQueue,
  type RedisJoinableQueueOptions,
} from "./lib/redis/joinable_queue.ts";
export { RedisPool, type RedisPoolOptions } from "./lib/redis/pool.ts";
export {
  AsyncResult,
  BasePool,
  type IMapIterator,
  type MapOptions,
  type ProgressInfo,
  type ProgressOption,
  type ResultCallbacks,
} from "./lib/pool.ts";
