/**
 * The loop a pool worker runs: it is an ordinary `Process` whose target is
 * {@linkcode poolWorker}. It runs the initializer once, then takes task
 * records from its ring, looks each task's function up by reference (the
 * same `resolveRef` a `Process` child uses), runs the tasks one after the
 * other (awaiting async ones), and writes results back in batches: at once
 * for slow tasks, every few hundred results or every millisecond for tiny
 * ones.
 *
 * @module
 */

import { receiveMessageOnPort } from "node:worker_threads";
import { findUncloneable, rebuild, reduce } from "./reduction.ts";
import { resolveRef, type TargetRef } from "./_target.ts";
import { SLICE_MS, waitAsync } from "./_wait.ts";
import { currentIdent, isIdentAlive } from "./_proctable.ts";
import { TargetNotExportedError } from "./errors.ts";
import { Decoder, Encoder } from "./_codec.ts";
import { R as RING_R, Ring, W as RING_W } from "./_pool_ring.ts";
import {
  KIND_APPLY,
  KIND_MAP,
  type PoolLink,
  R_CODEC,
  R_INIT_FAILED,
  R_NUM,
  R_PORT,
  serializeError,
  STARTED,
  T_CODEC,
  T_DEFS,
  T_NUM,
  T_PORT,
  T_STOP,
  type WireError,
} from "./_pool_protocol.ts";

/** What a worker is told when it starts. */
export interface WorkerConfig {
  /** The initializer, by reference, or null. */
  initializer: TargetRef | null;
  /** Arguments for the initializer. */
  initargs: unknown[];
  /** End after this many tasks (0: never). */
  maxtasks: number;
}

/** Write results once this many are waiting... */
const FLUSH_COUNT = 512;
/** ...or once the oldest waited this long (ms). */
const FLUSH_MS = 1;

type Fn = (...args: unknown[]) => unknown;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") &&
    typeof (v as PromiseLike<unknown>).then === "function";
}

/** True once this process asked to end (`Deno.exit`, `self.close()`): let it unwind. */
function ending(): boolean {
  return !isIdentAlive(currentIdent());
}

async function lookUp(ref: TargetRef | undefined): Promise<Fn> {
  if (!ref) throw new TypeError("internal: a task names an unknown function");
  const found = await resolveRef(ref);
  if (typeof found !== "function") {
    throw new TargetNotExportedError(
      ref.module,
      ref.name,
      "the export is not a function",
    );
  }
  return found as Fn;
}

/** Where a task's input sits once taken off the ring. */
interface Input {
  seq: number;
  fnId: number;
  kind: number;
  /** Generic payload (args, items, or args lists)... */
  payload?: unknown[];
  /** ...or numeric items `nums[from, from + len)`. */
  nums?: Float64Array;
  from?: number;
  len?: number;
}

/** The pool worker's main loop (the target of every pool worker process). */
export async function poolWorker(
  link: PoolLink,
  config: WorkerConfig,
): Promise<void> {
  const { port, ctl, signal } = link;
  const tasks = new Ring(link.tasks);
  const results = new Ring(link.results);
  const encoder = new Encoder();
  const decoder = new Decoder();
  const wake = () => {
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };

  /** Reserves room in the results ring, waiting for the parent to read; -1: too big. */
  const room = async (length: number): Promise<number> => {
    if (length > results.maxPayload) return -1;
    while (true) {
      const seen = Atomics.load(results.hdr, RING_R);
      const at = results.begin(length);
      if (at >= 0) return at;
      wake();
      await waitAsync(results.hdr, RING_R, seen, SLICE_MS);
    }
  };

  const viaPort = async (msg: unknown, transfer: Transferable[]) => {
    while (results.begin(0) < 0) {
      const seen = Atomics.load(results.hdr, RING_R);
      wake();
      await waitAsync(results.hdr, RING_R, seen, SLICE_MS);
    }
    port.postMessage(msg, transfer);
    results.commit(R_PORT, 0);
    wake();
  };

  if (config.initializer) {
    try {
      const init = await lookUp(config.initializer);
      const r = init(...config.initargs);
      if (isThenable(r)) await r;
    } catch (e) {
      if (ending()) throw e;
      const size = encoder.encode(serializeError(e));
      const at = await room(size);
      if (at >= 0) {
        encoder.copyTo(results.u8, at, 0, size);
        results.commit(R_INIT_FAILED, size);
        wake();
      }
      return;
    }
  }

  const refs: (TargetRef | undefined)[] = [];
  const fns: (Fn | undefined)[] = [];
  const lookupErrors: (WireError | undefined)[] = [];
  // Results not yet written.
  let values: unknown[] = [];
  let errs: [number, WireError][] | undefined;
  /** 1: all arrays of numbers; 2: all numbers; 0: none yet; -1: other. */
  let numMode = 0;
  let busy = 0;
  let oldest = 0;
  let done = 0;

  const flush = async (): Promise<void> => {
    const n = values.length;
    if (n === 0) return;
    const vs = values, es = errs, mode = errs ? -1 : numMode, b = busy;
    values = [];
    errs = undefined;
    numMode = 0;
    busy = 0;
    if (mode > 0) {
      // Numbers: raw float64.
      let uniform = -2;
      let total = n;
      if (mode === 1) {
        uniform = (vs[0] as number[]).length;
        total = 0;
        for (let i = 0; i < n; i++) {
          const len = (vs[i] as number[]).length;
          if (len !== uniform) uniform = -1;
          total += len;
        }
      }
      const head = 16 + (uniform === -1 ? ((n * 4 + 7) & ~7) : 0);
      const length = head + total * 8;
      const at = await room(length);
      if (at >= 0) {
        const i32 = results.i32, f64 = results.f64;
        const h = at >> 2;
        i32[h] = n;
        i32[h + 1] = uniform;
        f64[(at + 8) >> 3] = b;
        let k = (at + head) >> 3;
        if (mode === 2) {
          for (let i = 0; i < n; i++) f64[k++] = vs[i] as number;
        } else {
          for (let i = 0; i < n; i++) {
            const v = vs[i] as number[];
            if (uniform === -1) i32[h + 4 + i] = v.length;
            for (let j = 0; j < v.length; j++) f64[k++] = v[j];
          }
        }
        results.commit(R_NUM, length);
        wake();
        return;
      }
    }
    let size = -1;
    try {
      size = encoder.encode({ v: vs, e: es });
    } catch {
      // Not for the codec (shared objects, functions): the port below.
    }
    if (size >= 0) {
      const at = await room(16 + size);
      if (at >= 0) {
        results.i32[at >> 2] = n;
        results.f64[(at + 8) >> 3] = b;
        encoder.copyTo(results.u8, at + 16, 0, size);
        results.commit(R_CODEC, 16 + size);
        wake();
        return;
      }
    }
    const transfer: Transferable[] = [];
    let wire: unknown;
    try {
      wire = reduce(vs, transfer);
      structuredClone(wire, { transfer: [] });
    } catch {
      // Some result cannot be sent: that task fails, the others go through.
      let errList = es ?? [];
      for (let i = 0; i < n; i++) {
        try {
          structuredClone(reduce(vs[i], []));
        } catch (e) {
          const bad = findUncloneable(vs[i], "the result");
          vs[i] = undefined;
          errList = errList.filter(([j]) => j !== i);
          errList.push([
            i,
            serializeError(
              new TypeError(
                bad
                  ? `${bad.path} is a ${bad.type}, which cannot be sent back from a pool worker; return plain data`
                  : `the result cannot be sent back from a pool worker: ${
                    (e as Error).message
                  }`,
              ),
            ),
          ]);
        }
      }
      errList.sort((a, b) => a[0] - b[0]);
      transfer.length = 0;
      wire = reduce(vs, transfer);
      await viaPort({ v: wire, e: errList, b }, transfer);
      return;
    }
    await viaPort({ v: wire, e: es, b }, transfer);
  };

  const run = async (input: Input): Promise<void> => {
    const { fnId, kind } = input;
    let fn = fns[fnId];
    if (!fn && !lookupErrors[fnId]) {
      try {
        fn = fns[fnId] = await lookUp(refs[fnId]);
      } catch (e) {
        if (ending()) throw e;
        lookupErrors[fnId] = serializeError(e);
      }
    }
    Atomics.store(ctl, STARTED, input.seq);
    if (values.length === 0) oldest = performance.now();
    const t0 = performance.now();
    try {
      if (!fn) throw lookupErrors[fnId];
      let v: unknown;
      if (kind === KIND_APPLY) {
        v = fn(...input.payload!);
        if (isThenable(v)) v = await v;
        if (numMode !== -1) {
          numMode = typeof v === "number" && numMode !== 1 ? 2 : -1;
        }
      } else {
        let nums = true;
        let out: unknown[];
        if (input.nums) {
          const src = input.nums, from = input.from!, n = input.len!;
          out = new Array(n);
          for (let j = 0; j < n; j++) {
            let x = fn(src[from + j]);
            if (isThenable(x)) x = await x;
            if (typeof x !== "number") nums = false;
            out[j] = x;
          }
        } else {
          const payload = input.payload!;
          const n = payload.length;
          out = new Array(n);
          const star = kind !== KIND_MAP;
          for (let j = 0; j < n; j++) {
            let x = star ? fn(...(payload[j] as unknown[])) : fn(payload[j]);
            if (isThenable(x)) x = await x;
            if (typeof x !== "number") nums = false;
            out[j] = x;
          }
        }
        v = out;
        if (numMode !== -1) numMode = nums && numMode !== 2 ? 1 : -1;
      }
      values.push(v);
    } catch (e) {
      if (ending()) throw e;
      (errs ??= []).push([
        values.length,
        fn ? serializeError(e) : e as WireError,
      ]);
      values.push(undefined);
    }
    const t1 = performance.now();
    busy += t1 - t0;
    done++;
    if (values.length >= FLUSH_COUNT || t1 - oldest >= FLUSH_MS) await flush();
  };

  /** True when the worker reached maxtasksperchild. */
  const spent = () => config.maxtasks > 0 && done >= config.maxtasks;

  while (true) {
    const seen = Atomics.load(tasks.hdr, RING_W);
    if (!tasks.next()) {
      await flush();
      await waitAsync(tasks.hdr, RING_W, seen);
      continue;
    }
    const { i32, f64 } = tasks;
    const at = tasks.at;
    const type = tasks.type;
    if (type === T_STOP) {
      tasks.release();
      await flush();
      return;
    }
    if (type === T_DEFS) {
      const defs = decoder.decode(tasks.u8, at, at + tasks.length) as [
        number,
        string,
        string,
      ][];
      tasks.release();
      for (const [id, module, name] of defs) refs[id] = { module, name };
      continue;
    }
    if (type === T_PORT) {
      const r = receiveMessageOnPort(port as never) as
        | { message: [number, number, number, unknown] }
        | undefined;
      if (!r) {
        // Posted before the record was written: it is on its way.
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      tasks.release();
      const [seq, fnId, kind, payload] = r.message;
      await run({ seq, fnId, kind, payload: rebuild(payload) as unknown[] });
      if (spent()) break;
      continue;
    }
    const h = at >> 2;
    const n = i32[h], first = i32[h + 1], fnId = i32[h + 2], kind = i32[h + 3];
    if (type === T_NUM) {
      const uniform = i32[h + 4];
      const lens = uniform === -1 ? i32.slice(h + 5, h + 5 + n) : undefined;
      const head = (20 + (uniform === -1 ? n * 4 : 0) + 7) & ~7;
      const start = (at + head) >> 3;
      const nums = f64.slice(start, start + ((tasks.length - head) >> 3));
      tasks.release();
      let from = 0;
      for (let i = 0; i < n; i++) {
        const len = lens ? lens[i] : uniform;
        await run({ seq: first + i, fnId, kind, nums, from, len });
        from += len;
      }
    } else if (type === T_CODEC) {
      const payloads = decoder.decode(
        tasks.u8,
        at + 16,
        at + tasks.length,
      ) as unknown[][];
      tasks.release();
      for (let i = 0; i < n; i++) {
        await run({ seq: first + i, fnId, kind, payload: payloads[i] });
      }
    } else {
      tasks.release();
    }
    if (spent()) break;
  }
  await flush();
}
