/**
 * The Redis pool's wire: what a task entry and a result hold, and the Lua
 * scripts that add tasks and finish them (one round trip for a batch).
 * Shared by the pool (callers) and the worker program.
 *
 * @module
 */

import { rebuildError, type WireError } from "../_wire_error.ts";
import * as redisErrors from "./errors.ts";

/**
 * A task entry's header (field `h`, the same bytes for every task of one
 * caller, function and kind; field `s` holds the task's number in its
 * caller, field `p` its arguments' codec bytes).
 */
export type Header = [
  caller: string,
  module: string,
  name: string,
  kind: number,
  maxTries: number,
  resultTtl: number,
];

/** A result (an item of the caller's result list). */
export type Reply =
  | [seq: number, status: typeof OK, value: Uint8Array]
  | [seq: number, status: typeof FAILED, error: WireError]
  | [seq: number, status: typeof POISON, dead: [tries: number, id: string]];

/** The task returned; the value is the result's codec bytes. */
export const OK = 0;
/** The task threw (not retried). */
export const FAILED = 1;
/** The task ended its worker `maxTries` times: moved to the dead letters. */
export const POISON = 2;

/** Most entries of a dead-letter stream (older ones are trimmed). */
export const DEAD_MAXLEN = 10_000;

/** KEYS[1] the task stream; ARGV: header, number, payload per task. Returns the ids. */
export const ADD_LUA = `
local ids = {}
for i = 1, #ARGV, 3 do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'h', ARGV[i], 's', ARGV[i + 1], 'p', ARGV[i + 2])
end
return ids`;

/**
 * KEYS[1] the task stream; ARGV[1] the group, then per task: entry id,
 * result list, caller key, result bytes, the result's ttl (ms). A result
 * whose caller is gone (its key expired) is dropped.
 */
export const FINISH_LUA = `
for i = 2, #ARGV, 5 do
  if redis.call('EXISTS', ARGV[i + 2]) == 1 then
    redis.call('RPUSH', ARGV[i + 1], ARGV[i + 3])
    redis.call('PEXPIRE', ARGV[i + 1], ARGV[i + 4])
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return 0`;

const REDIS_ERRORS = redisErrors as unknown as Record<string, unknown>;

/** A task's error as the caller sees it: the class it had, when known here. */
export function rebuildRemote(w: WireError): unknown {
  return rebuildError(w, (w) => {
    const err = new Error(w.message);
    const cls = Object.hasOwn(REDIS_ERRORS, w.name)
      ? REDIS_ERRORS[w.name]
      : undefined;
    if (typeof cls === "function") Object.setPrototypeOf(err, cls.prototype);
    err.name = w.name;
    if (w.props) Object.assign(err, w.props);
    err.stack = w.stack;
    return err;
  });
}
