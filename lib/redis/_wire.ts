/**
 * The Redis pool's wire: what a task entry and a result hold, and the Lua
 * scripts that add tasks and finish them (one round trip for a batch).
 * Shared by the pool (callers) and the worker program.
 *
 * @module
 */

import { rebuildError, type WireError } from "../wire/_error.ts";
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

/**
 * KEYS[1] the task stream; ARGV: pairs of a header and the packed tasks
 * that share it (per task: u32 number, u32 length, the arguments' bytes),
 * so a batch is a few arguments, not three a task. Returns the entry ids.
 */
export const ADD_LUA = `
local ids = {}
for a = 1, #ARGV, 2 do
  local h, s, pos = ARGV[a], ARGV[a + 1], 1
  while pos <= #s do
    local seq, len
    seq, len, pos = struct.unpack('<I4I4', s, pos)
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'h', h, 's', seq, 'p', string.sub(s, pos, pos + len - 1))
    pos = pos + len
  end
end
return ids`;

/**
 * KEYS[1] the task stream; ARGV[1] the group, ARGV[2] the number n of
 * entries finished, then their n ids, then per caller: its result list,
 * its key, the results' ttl (ms), and its results (one item: the codec's
 * bytes of an array of replies). Results of a caller that is gone (its key
 * expired) are dropped.
 */
export const FINISH_LUA = `
local n = tonumber(ARGV[2])
local i = 3 + n
while i <= #ARGV do
  if redis.call('EXISTS', ARGV[i + 1]) == 1 then
    redis.call('RPUSH', ARGV[i], ARGV[i + 3])
    redis.call('PEXPIRE', ARGV[i], ARGV[i + 2])
  end
  i = i + 4
end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3, 2 + n))
redis.call('XDEL', KEYS[1], unpack(ARGV, 3, 2 + n))
return 0`;

/** Most entries one finish script acknowledges (Lua's unpack has a limit). */
export const FINISH_BATCH = 1000;

/** Packs tasks for ADD_LUA: per task u32 number, u32 length, bytes. */
export function packTasks(
  tasks: { seq: number; bytes: Uint8Array }[],
  alloc: (n: number) => Uint8Array,
): Uint8Array {
  let n = 0;
  for (const t of tasks) n += 8 + t.bytes.length;
  const out = alloc(n);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = 0;
  for (const t of tasks) {
    view.setUint32(at, t.seq, true);
    view.setUint32(at + 4, t.bytes.length, true);
    out.set(t.bytes, at + 8);
    at += 8 + t.bytes.length;
  }
  return out;
}

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
