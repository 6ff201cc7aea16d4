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

import { loadThreads } from "../process/_threads.ts";
import {
  findUncloneable,
  loadRebuilders,
  rebuild,
  reduce,
} from "../reduction.ts";
import { resolveRef, type TargetRef } from "../process/_target.ts";
import { SLICE_MS, waitAsync } from "../shm/_wait.ts";
import { blockFor } from "../shm/_spin.ts";
import { SpareBuffers } from "../shm/_spares.ts";
import { currentIdent, haltIfEnded, isIdentAlive } from "../shm/_proctable.ts";
import {
  traceFollow,
  traceIdle,
  traceTaskEnd,
  traceTaskStart,
  tracing,
} from "../trace/_writer.ts";
import { TargetNotExportedError } from "../errors.ts";
import { Decoder, Encoder } from "../wire/_codec.ts";
import { R as RING_R, RecordRing, W as RING_W } from "./_record_ring.ts";
import {
  KIND_APPLY,
  KIND_MAP,
  numTaskHead,
  type PoolLink,
  PORT_BACK,
  PORT_CODEC,
  PORT_NUM,
  R_CODEC,
  R_INIT_FAILED,
  R_NUM,
  R_PORT,
  RESULT_DATA_AT,
  RESULT_LEN_WORD,
  SCALAR,
  serializeError,
  STARTED,
  T_CODEC,
  T_DEFS,
  T_NUM,
  T_PORT,
  T_STOP,
  TASK_CODEC_AT,
  TASK_COUNT_WORD,
  TASK_FN_WORD,
  TASK_KIND_WORD,
  TASK_LEN_WORD,
  TASK_LENS_WORD,
  TASK_SEQ_WORD,
  VARIED,
  type WireError,
  writeResultHead,
} from "./_protocol.ts";
import { isThenable } from "../_values.ts";

/** What a worker is told when it starts. */
export interface WorkerConfig {
  /** The initializer, by reference, or null. */
  initializer: TargetRef | null;
  /** Arguments for the initializer. */
  initargs: unknown[];
  /** End after this many tasks (0: never). */
  maxtasks: number;
}

/** Wake the parent once this many results are waiting... */
const FLUSH_COUNT = 512;
/** ...or once the oldest waited this long (ms). */
const FLUSH_MS = 1;
/** How long an idle worker blocks for its next task before it waits async (ms). */
const IDLE_BLOCK_MS = 2;
/** Block only if the event loop ran within this long (ms). */
const YIELD_MS = 10;

type Fn = (...args: unknown[]) => unknown;

/**
 * True when `v` (read as float64) is an int32 and not -0: the task then gets
 * `v | 0`, a V8 small integer, so its integer code is not compiled for
 * doubles (`fib(32)` took ~28 ms a call given doubles, ~16 ms given these).
 */
function isInt(v: number): boolean {
  return (v | 0) === v && (v !== 0 || 1 / v > 0);
}

/** The first result of {@linkcode mapNumbers} that was not a number. */
let notNumber: unknown;

/**
 * The numeric map loop, a function of its own so that it can be compiled
 * before a first big map needs it (see {@linkcode warmUpStep}): runs `fn`
 * over `src[from, from + n)` into `out` while the results are numbers, and
 * returns `n`, or `-1 - j` when result `j` (left in `notNumber`) was not one.
 */
function mapNumbers(
  fn: Fn,
  src: Float64Array,
  from: number,
  n: number,
  out: Float64Array,
): number {
  for (let j = 0; j < n; j++) {
    const v = src[from + j];
    const x = isInt(v) ? fn(v | 0) : fn(v);
    if (typeof x !== "number") {
      notNumber = x;
      return -1 - j;
    }
    out[j] = x;
  }
  return n;
}

/**
 * What the warm-up maps with: several functions, so that V8 compiles the
 * loop's call for any function (one would be inlined, and that code thrown
 * away at the user's).
 */
const WARM_UP_FNS: Fn[] = [
  (x) => (x as number) + 1,
  (x) => (x as number) * 2,
  (x) => (x as number) - 0.5,
  (x) => (x as number) * (x as number),
  (x) => -(x as number),
];
/** Items a warm-up step maps (a few µs: a task that comes waits for the step). */
const WARM_UP_ITEMS = 100;
/** Warm-up steps left: 80k items in all, what V8 needed here to compile it. */
let warmUpsLeft = 800;
/** Set by the first numeric map task: only a pool that maps numbers warms up (its apply calls' round trips would wait for the steps). */
let mappedNumbers = false;
let warmUpIn: Float64Array | undefined;
let warmUpOut: Float64Array | undefined;

/**
 * One step of the warm-up a worker runs while idle once it ran a numeric map
 * task (small: a task that comes meanwhile waits for the step to end): V8
 * compiles `mapNumbers` then, not in the middle of a first big map, where
 * its compile threads wait for the cores both workers compute on (a fresh
 * pool's first map of 100k items, after one of 1,000: median 7.0 ms with
 * it, 8.6 ms without, 40 pools each, interleaved; the first five calls
 * 24.3 ms beside 27.0).
 */
function warmUpStep(): void {
  if (!warmUpIn || !warmUpOut) {
    warmUpIn = new Float64Array(WARM_UP_ITEMS);
    warmUpOut = new Float64Array(WARM_UP_ITEMS);
    // Integers and not: both of the loop's calls.
    for (let i = 0; i < WARM_UP_ITEMS; i++) warmUpIn[i] = i % 2 ? i : i + 0.5;
  }
  warmUpsLeft--;
  const fn = WARM_UP_FNS[warmUpsLeft % WARM_UP_FNS.length];
  mapNumbers(fn, warmUpIn, 0, WARM_UP_ITEMS, warmUpOut);
  if (warmUpsLeft === 0) warmUpIn = warmUpOut = undefined;
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
  /** ...or numeric items `nums[from, from + len)` (int32 ones arrive as small integers). */
  nums?: Float64Array;
  from?: number;
  len?: number;
}

/** Bytes of an `R_NUM` record of one result (num 1: an array of numbers, 2: a number). */
function numLength(v: unknown, num: number): number {
  return RESULT_DATA_AT + (num === 1 ? (v as number[]).length : 1) * 8;
}

/** How many items a task carries (1 for an apply), for the trace. */
function taskItems(input: Input): number {
  return input.len ?? (input.kind === KIND_APPLY ? 1 : input.payload!.length);
}

/** The pool worker's main loop (the target of every pool worker process). */
export async function poolWorker(
  link: PoolLink,
  config: WorkerConfig,
): Promise<void> {
  const { port, ctl, signal } = link;
  const { receiveMessageOnPort } = await loadThreads();
  const tasks = new RecordRing(link.tasks);
  const results = new RecordRing(link.results);
  const encoder = new Encoder();
  const decoder = new Decoder();
  /** Buffers of big results, handed back by the parent once read. */
  const spares = new SpareBuffers();
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

  /** Hands a big task's buffer, read, back to the parent (if the ring has room). */
  const giveBack = (back: SharedArrayBuffer) => {
    if (results.begin(0) < 0) return;
    port.postMessage({ back });
    results.commit(R_PORT, 0);
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
  // Results are written as each task ends (so a worker that dies loses no
  // finished result), but the parent is woken in batches.
  let unwoken = 0;
  let oldest = 0;
  let done = 0;
  const wakeNow = () => {
    if (unwoken === 0) return;
    unwoken = 0;
    if (tracing) traceIdle(); // its tasks' spans before the parent sees them done
    wake();
  };
  const maybeWake = () => {
    if (unwoken >= FLUSH_COUNT || performance.now() - oldest >= FLUSH_MS) {
      wakeNow();
    }
  };

  /** Writes a numeric outcome (num 1: an array of numbers, 2: a number) at `at`. */
  const putNum = (
    at: number,
    length: number,
    v: unknown,
    num: number,
    busy: number,
  ) => {
    const i32 = results.i32, f64 = results.f64;
    writeResultHead(i32, f64, at, 1, busy);
    const len = (at >> 2) + RESULT_LEN_WORD;
    const k = (at + RESULT_DATA_AT) >> 3;
    if (num === 2) {
      i32[len] = SCALAR;
      f64[k] = v as number;
    } else {
      const a = v as number[] | Float64Array;
      i32[len] = a.length;
      f64.set(a, k);
    }
    results.commit(R_NUM, length);
  };

  /** Writes the codec's last encoding (`size` bytes) at `at`. */
  const putCodec = (at: number, size: number, busy: number) => {
    writeResultHead(results.i32, results.f64, at, 1, busy);
    encoder.copyTo(results.u8, at + RESULT_DATA_AT, 0, size);
    results.commit(R_CODEC, RESULT_DATA_AT + size);
  };

  /** Writes one outcome now if the ring has room and no port is needed. */
  const writeNow = (
    v: unknown,
    err: WireError | undefined,
    num: number,
    busy: number,
  ): boolean => {
    if (num > 0 && !err) {
      const length = numLength(v, num);
      const at = results.begin(length);
      if (at < 0) return false;
      putNum(at, length, v, num, busy);
      return true;
    }
    let size: number;
    try {
      size = encoder.encode({ v: [v], e: err ? [[0, err]] : undefined });
    } catch {
      return false;
    }
    const at = results.begin(RESULT_DATA_AT + size);
    if (at < 0) return false;
    putCodec(at, size, busy);
    return true;
  };

  /** Writes one outcome, waiting for room, or by the port. */
  const write = async (
    v: unknown,
    err: WireError | undefined,
    num: number,
    busy: number,
  ): Promise<void> => {
    if (num > 0 && !err) {
      const length = numLength(v, num);
      if (num === 1 && length > results.maxPayload) {
        // Too big for a ring record: its own shared memory, by the port.
        const a = v as number[] | Float64Array;
        const big = new Float64Array(spares.take(a.length * 8), 0, a.length);
        big.set(a);
        // The bare buffer: Deno walks every index of a typed array it receives.
        return viaPort(
          { v: undefined, b: busy, num: big.buffer, len: a.length },
          [],
        );
      }
      const at = await room(length);
      if (at >= 0) return putNum(at, length, v, num, busy);
    }
    const e = err ? [[0, err]] : undefined;
    let size = -1;
    try {
      size = encoder.encode({ v: [v], e });
    } catch {
      // Not for the codec (shared objects, functions): the port below.
    }
    if (size >= 0) {
      if (RESULT_DATA_AT + size > results.maxPayload) {
        // Too big for a ring record: in shared memory of its own, by the port.
        const bytes = spares.take(size);
        encoder.copyTo(new Uint8Array(bytes), 0, 0, size);
        return viaPort({ v: undefined, b: busy, codec: bytes, len: size }, []);
      }
      const at = await room(RESULT_DATA_AT + size);
      if (at >= 0) {
        // The encoding may have been replaced while waiting: redo it.
        putCodec(at, encoder.encode({ v: [v], e }), busy);
        return;
      }
    }
    const transfer: Transferable[] = [];
    try {
      const wire = reduce([v], transfer);
      await viaPort({ v: wire, e, b: busy }, transfer);
    } catch (x) {
      // The result cannot be sent back: the task fails instead.
      const bad = findUncloneable(v, "the result");
      const error = serializeError(
        new TypeError(
          bad
            ? `${bad.path} is a ${bad.type}, which cannot be sent back from a pool worker; return plain data`
            : `the result cannot be sent back from a pool worker: ${
              (x as Error).message
            }`,
        ),
      );
      await viaPort({ v: [undefined], e: [[0, error]], b: busy }, []);
    }
  };

  /** Records a task's outcome; a promise only when it has to wait. */
  const finish = (
    v: unknown,
    err: WireError | undefined,
    num: number,
    t0: number,
  ): Promise<void> | undefined => {
    done++;
    const busy = performance.now() - t0;
    if (tracing) traceTaskEnd(t0, busy, err !== undefined);
    if (unwoken++ === 0) oldest = t0;
    if (writeNow(v, err, num, busy)) {
      maybeWake();
      return undefined;
    }
    return write(v, err, num, busy).then(maybeWake);
  };

  const failed = (e: unknown, t0: number): Promise<void> | undefined => {
    if (ending()) throw e;
    return finish(undefined, serializeError(e), 0, t0);
  };

  /** Goes on with a map chunk once item `j` gave a promise `x`. */
  const mapOn = async (
    fn: Fn,
    input: Input,
    out: unknown[],
    j: number,
    x: PromiseLike<unknown>,
    nums: boolean,
    t0: number,
  ): Promise<void> => {
    const star = input.kind !== KIND_MAP;
    const n = out.length;
    try {
      let y: unknown = await x;
      while (true) {
        if (typeof y !== "number") nums = false;
        out[j++] = y;
        if (j >= n) break;
        const v = input.nums ? input.nums[input.from! + j] : 0;
        y = input.nums
          ? (isInt(v) ? fn(v | 0) : fn(v))
          : star
          ? fn(...(input.payload![j] as unknown[]))
          : fn(input.payload![j]);
        if (isThenable(y)) y = await y;
      }
    } catch (e) {
      return failed(e, t0);
    }
    return finish(out, undefined, nums ? 1 : 0, t0);
  };

  /**
   * Runs one task. Sync task functions with room in the ring never touch a
   * promise (this is most of the speed of tiny tasks); a promise is
   * returned only when something had to wait.
   */
  const run = (input: Input): Promise<void> | undefined => {
    const fn = fns[input.fnId];
    if (!fn) return resolveAndRun(input);
    Atomics.store(ctl, STARTED, input.seq);
    if (tracing) traceTaskStart(refs[input.fnId]?.name, taskItems(input));
    const t0 = performance.now();
    try {
      if (input.kind === KIND_APPLY) {
        const v = fn(...input.payload!);
        if (isThenable(v)) {
          return Promise.resolve(v).then(
            (r) => finish(r, undefined, typeof r === "number" ? 2 : 0, t0),
            (e) => failed(e, t0),
          );
        }
        return finish(v, undefined, typeof v === "number" ? 2 : 0, t0);
      }
      let nums = true;
      if (input.nums) {
        mappedNumbers = true;
        const src = input.nums, from = input.from!, n = input.len!;
        // Numbers out go straight into float64: no array of boxed numbers
        // for the garbage collector, one copy into the ring.
        const outF = new Float64Array(n);
        const ran = mapNumbers(fn, src, from, n, outF);
        if (ran === n) return finish(outF, undefined, 1, t0);
        let j = -1 - ran;
        const x = notNumber;
        notNumber = undefined;
        const out = new Array(n);
        for (let k = 0; k < j; k++) out[k] = outF[k];
        if (isThenable(x)) return mapOn(fn, input, out, j, x, true, t0);
        out[j] = x;
        for (j++; j < n; j++) {
          const v = src[from + j];
          const y = isInt(v) ? fn(v | 0) : fn(v);
          if (isThenable(y)) return mapOn(fn, input, out, j, y, false, t0);
          out[j] = y;
        }
        return finish(out, undefined, 0, t0);
      }
      const payload = input.payload!;
      const n = payload.length;
      const out = new Array(n);
      const star = input.kind !== KIND_MAP;
      for (let j = 0; j < n; j++) {
        const x = star ? fn(...(payload[j] as unknown[])) : fn(payload[j]);
        if (isThenable(x)) return mapOn(fn, input, out, j, x, nums, t0);
        if (typeof x !== "number") nums = false;
        out[j] = x;
      }
      return finish(out, undefined, nums ? 1 : 0, t0);
    } catch (e) {
      return failed(e, t0);
    }
  };

  /** Looks the task's function up first (once per function). */
  const resolveAndRun = async (input: Input): Promise<void> => {
    const { fnId } = input;
    if (!lookupErrors[fnId]) {
      try {
        fns[fnId] = await lookUp(refs[fnId]);
        return run(input);
      } catch (e) {
        if (ending()) throw e;
        lookupErrors[fnId] = serializeError(e);
      }
    }
    Atomics.store(ctl, STARTED, input.seq);
    if (tracing) traceTaskStart(refs[fnId]?.name, taskItems(input));
    return finish(undefined, lookupErrors[fnId], 0, performance.now());
  };

  /** True when the worker reached maxtasksperchild. */
  const spent = () => config.maxtasks > 0 && done >= config.maxtasks;

  let yielded = performance.now();
  while (true) {
    const seen = Atomics.load(tasks.hdr, RING_W);
    if (!tasks.next()) {
      wakeNow();
      if (warmUpsLeft > 0 && mappedNumbers) {
        warmUpStep();
        continue;
      }
      // A futex wait wakes within ~10 us, an async one through the event
      // loop takes several times that: block briefly for the next task,
      // unless the event loop (the task's own timers) has waited too long.
      if (
        performance.now() - yielded < YIELD_MS &&
        blockFor(tasks.hdr, RING_W, seen, IDLE_BLOCK_MS)
      ) {
        haltIfEnded();
        continue;
      }
      await waitAsync(tasks.hdr, RING_W, seen);
      yielded = performance.now();
      continue;
    }
    traceFollow(); // a trace started meanwhile traces this record's tasks
    const { i32, f64 } = tasks;
    const at = tasks.at;
    const type = tasks.type;
    if (type === T_STOP) {
      tasks.release();
      wakeNow();
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
        | { message: [number, number, number, unknown, number, number] }
        | undefined;
      if (!r) {
        // Posted before the record was written: it is on its way.
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      tasks.release();
      const [seq, fnId, kind, payload, mode, len] = r.message;
      let p: Promise<void> | undefined;
      if (mode === PORT_BACK) {
        spares.give(payload as SharedArrayBuffer);
        continue;
      } else if (mode === PORT_NUM) {
        const nums = new Float64Array(payload as SharedArrayBuffer, 0, len);
        // The task reads its items from the buffer as it goes: hand it back after.
        const ran = run({ seq, fnId, kind, nums, from: 0, len });
        if (ran) await ran;
        giveBack(nums.buffer as SharedArrayBuffer);
      } else if (mode === PORT_CODEC) {
        const bytes = new Uint8Array(payload as SharedArrayBuffer);
        const [one] = decoder.decode(bytes, 0, len) as unknown[][];
        giveBack(bytes.buffer as SharedArrayBuffer);
        p = run({ seq, fnId, kind, payload: one as unknown[] });
      } else {
        await loadRebuilders(payload);
        p = run({ seq, fnId, kind, payload: rebuild(payload) as unknown[] });
      }
      if (p) await p;
      if (spent()) break;
      continue;
    }
    const h = at >> 2;
    const n = i32[h + TASK_COUNT_WORD], first = i32[h + TASK_SEQ_WORD];
    const fnId = i32[h + TASK_FN_WORD], kind = i32[h + TASK_KIND_WORD];
    if (type === T_NUM) {
      const uniform = i32[h + TASK_LEN_WORD];
      const lens = uniform === VARIED
        ? i32.slice(h + TASK_LENS_WORD, h + TASK_LENS_WORD + n)
        : undefined;
      const head = numTaskHead(n, uniform);
      const nums = f64.slice((at + head) >> 3, (at + tasks.length) >> 3);
      tasks.release();
      let from = 0;
      for (let i = 0; i < n; i++) {
        const len = lens ? lens[i] : uniform;
        const p = run({ seq: first + i, fnId, kind, nums, from, len });
        if (p) await p;
        from += len;
      }
    } else if (type === T_CODEC) {
      const payloads = decoder.decode(
        tasks.u8,
        at + TASK_CODEC_AT,
        at + tasks.length,
      ) as unknown[][];
      tasks.release();
      for (let i = 0; i < n; i++) {
        const p = run({ seq: first + i, fnId, kind, payload: payloads[i] });
        if (p) await p;
      }
    } else {
      tasks.release();
    }
    if (spent()) break;
  }
  wakeNow();
}
