/**
 * What a Redis pool worker's child runs for one task (a call, or a chunk of
 * a map) given as its function's reference and its arguments' codec bytes,
 * answered with the result's codec bytes (the child's serving loop,
 * `_serve.ts`, reads the task and writes the result).
 *
 * @module
 */

import { resolveRef } from "../process/_target.ts";
import { KIND_APPLY, KIND_STAR } from "../pool/_protocol.ts";
import { decodeBytes, encodeWith } from "./_bytes.ts";
import { isThenable } from "../_values.ts";

const alloc = (n: number) => new Uint8Array(n);

/** Runs `module`'s export `name` over the arguments in `payload` (codec bytes). */
export async function runRedisTask(
  module: string,
  name: string,
  kind: number,
  payload: Uint8Array,
): Promise<Uint8Array> {
  const fn = await resolveRef({ module, name });
  if (typeof fn !== "function") {
    throw new TypeError(
      `'${name}' exported from ${module} is ${typeof fn}, not a function: a pool task must be an exported function`,
    );
  }
  const args = decodeBytes(payload) as unknown[];
  if (kind === KIND_APPLY) {
    let r = fn(...args);
    if (isThenable(r)) r = await r;
    return encodeWith(r, alloc);
  }
  const out = new Array(args.length);
  for (let i = 0; i < args.length; i++) {
    let r = kind === KIND_STAR ? fn(...(args[i] as unknown[])) : fn(args[i]);
    if (isThenable(r)) r = await r;
    out[i] = r;
  }
  return encodeWith(out, alloc);
}
