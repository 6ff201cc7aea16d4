/**
 * The Redis key names of queues and pools, in one place (a queue's list,
 * a pool's task stream, its results, its dead letters).
 *
 * @module
 */

/** The list of a `RedisQueue`. */
export const queueKey = (name: string): string => `mp:queue:${name}`;
/** The stream of a `RedisJoinableQueue`. */
export const joinableKey = (name: string): string => `mp:jqueue:${name}`;
/** The consumer group of joinable queues and pools. */
export const GROUP = "mp";
/** The task stream of a pool. */
export const tasksKey = (pool: string): string => `mp:pool:${pool}:tasks`;
/** The dead-letter stream of a pool. */
export const deadKey = (pool: string): string => `mp:pool:${pool}:dead`;
/** The result list of one caller of a pool. */
export const resultsKey = (pool: string, caller: string): string =>
  `mp:pool:${pool}:results:${caller}`;
/** Present while a caller of a pool waits for results. */
export const callerKey = (pool: string, caller: string): string =>
  `mp:pool:${pool}:caller:${caller}`;
/** The workers of a pool that are alive (hash: id -> description). */
export const workersKey = (pool: string): string => `mp:pool:${pool}:workers`;
