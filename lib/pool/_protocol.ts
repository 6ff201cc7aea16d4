/**
 * What a pool and its workers say to each other, shared by both sides.
 *
 * Each worker has two rings of records in shared memory (see
 * `_record_ring.ts`): tasks one way, results the other. Arrays of numbers
 * (the common `map` case) travel as raw Float64 values; other values with
 * the queues' binary codec; values the codec cannot carry (this module's
 * shared objects, which must be transferred) through a MessagePort, with a
 * ring record marking their place in the order. A control word holds the
 * sequence number of the task the worker started last, so that when a
 * worker dies the parent knows which of the tasks it was sent had started
 * (those fail) and which had not (those go to another worker). All workers
 * of a pool bump one shared word after writing results, so the parent waits
 * on a single address.
 *
 * The records' layouts are defined once, below (`TASK_*`, `RESULT_*`,
 * `numTaskHead`, `writeTaskHead`, `writeResultHead`), and both sides read
 * and write through them.
 *
 * @module
 */

import { type Reduced, reduceSymbol, registerRebuilder } from "../reduction.ts";
export {
  rebuildError,
  serializeError,
  type WireError,
} from "../wire/_error.ts";

/** ctl word: sequence number of the task the worker started last. */
export const STARTED = 0;
/** Number of ctl words. */
export const CTL_WORDS = 1;
/** Bytes of each ring (a power of two). */
export const RING_BYTES = 1 << 20;

/**
 * Task record: numeric map chunks, items as float64 (layout: `TASK_*`); the
 * worker hands an int32 item (not -0) to the task as a V8 small integer, so
 * that its integer code is not compiled for doubles.
 */
export const T_NUM = 1;
/** Task record: codec-encoded payloads (layout: `TASK_*`, from `TASK_CODEC_AT`). */
export const T_CODEC = 2;
/**
 * Task record: one task, on the port as `[seq, fnId, kind, payload, mode,
 * len]` (see the `PORT_*` modes; `len`: how much of a SharedArrayBuffer
 * payload is used); the record keeps its place in the order.
 */
export const T_PORT = 3;
/** Task record: codec bytes of `[[fnId, module, name], ...]`. */
export const T_DEFS = 4;
/** Task record: end after the queued tasks. */
export const T_STOP = 5;

/** Result record: numbers (layout: `RESULT_*`). */
export const R_NUM = 1;
/** Result record: codec-encoded values and errors (layout: `RESULT_*`). */
export const R_CODEC = 2;
/**
 * Result record: on the port, `{ v, e, b }` (values reduced, errors, busy
 * ms), or, too big for a record, `{ num, len, b }` / `{ codec, len, b }`
 * with a SharedArrayBuffer (its first `len` numbers or bytes), or no result:
 * `{ back }`, a big task's SharedArrayBuffer handed back once read.
 */
export const R_PORT = 3;
/** Result record: codec bytes of the initializer's error; the worker ends. */
export const R_INIT_FAILED = 4;

/** A task on the port: its payload structured-cloned. */
export const PORT_CLONE = 0;
/** A task on the port: its items as float64 in a SharedArrayBuffer. */
export const PORT_NUM = 1;
/** A task on the port: the codec's encoding of `[payload]` in a SharedArrayBuffer. */
export const PORT_CODEC = 2;
/** No task: a big result's SharedArrayBuffer, read, handed back for the next one. */
export const PORT_BACK = 3;

/** `fn(...payload)`. */
export const KIND_APPLY = 0;
/** `payload.map((x) => fn(x))`. */
export const KIND_MAP = 1;
/** `payload.map((args) => fn(...args))`. */
export const KIND_STAR = 2;

// ---- record layouts ----------------------------------------------------
//
// A record starts 8-aligned in its ring; offsets below are int32 words
// (`*_WORD`, index `(at >> 2) + word`) or bytes from the record's start
// (`*_AT`).

/**
 * Task records `T_NUM`, `T_CODEC`: how many tasks (`n`), the
 * first's sequence number (the rest follow it), the function id and kind.
 */
export const TASK_COUNT_WORD = 0;
/** The first task's sequence number (see {@linkcode TASK_COUNT_WORD}). */
export const TASK_SEQ_WORD = 1;
/** The tasks' function id (see {@linkcode TASK_COUNT_WORD}). */
export const TASK_FN_WORD = 2;
/** The tasks' kind (see {@linkcode TASK_COUNT_WORD}). */
export const TASK_KIND_WORD = 3;
/**
 * `T_NUM`: items per task, or {@linkcode VARIED} and then `n` lengths from
 * {@linkcode TASK_LENS_WORD}; the items (float64) start at
 * {@linkcode numTaskHead}.
 */
export const TASK_LEN_WORD = 4;
/** `T_NUM` with {@linkcode VARIED} lengths: the first length. */
export const TASK_LENS_WORD = 5;
/** `T_CODEC`: the codec bytes of the payloads array start here. */
export const TASK_CODEC_AT = 16;
/** A length word's value: the tasks' lengths differ and follow, one each. */
export const VARIED = -1;
/** `RESULT_LEN_WORD`'s value: one number per task (an apply's result). */
export const SCALAR = -2;

/** Bytes before the items of a numeric task record of `n` tasks. */
export function numTaskHead(n: number, len: number): number {
  return (TASK_LENS_WORD * 4 + (len === VARIED ? n * 4 : 0) + 7) & ~7;
}

/** Writes the head words of a task record at word `h`. */
export function writeTaskHead(
  i32: Int32Array,
  h: number,
  n: number,
  seq: number,
  fnId: number,
  kind: number,
): void {
  i32[h + TASK_COUNT_WORD] = n;
  i32[h + TASK_SEQ_WORD] = seq;
  i32[h + TASK_FN_WORD] = fnId;
  i32[h + TASK_KIND_WORD] = kind;
}

/**
 * Result records `R_NUM`, `R_CODEC`, for the next `n` tasks in the order
 * sent: `n`, then (`R_NUM`) items per task, {@linkcode SCALAR} or
 * {@linkcode VARIED} (lengths from {@linkcode RESULT_LENS_WORD}); the busy
 * time (ms, float64) at {@linkcode RESULT_BUSY_AT}; the values (float64
 * from {@linkcode numResultHead}, or codec bytes of `{ v, e }` from
 * {@linkcode RESULT_DATA_AT}).
 */
export const RESULT_COUNT_WORD = 0;
/** `R_NUM`: items per task (see {@linkcode RESULT_COUNT_WORD}). */
export const RESULT_LEN_WORD = 1;
/** `R_NUM` with {@linkcode VARIED} lengths: the first length. */
export const RESULT_LENS_WORD = 4;
/** The tasks' busy time, float64. */
export const RESULT_BUSY_AT = 8;
/**
 * Where the data start: `R_CODEC`'s codec bytes of `{ v: values, e: errors }`,
 * `R_NUM`'s float64 values (after the lengths, if {@linkcode VARIED}).
 */
export const RESULT_DATA_AT = 16;

/** Bytes before the values of an `R_NUM` record of `n` tasks. */
export function numResultHead(n: number, len: number): number {
  return RESULT_DATA_AT + (len === VARIED ? ((n * 4 + 7) & ~7) : 0);
}

/** Writes a result record's count and busy time at byte `at`. */
export function writeResultHead(
  i32: Int32Array,
  f64: Float64Array,
  at: number,
  n: number,
  busy: number,
): void {
  i32[(at >> 2) + RESULT_COUNT_WORD] = n;
  f64[(at + RESULT_BUSY_AT) >> 3] = busy;
}

const TAG = "mp.PoolLink";

/** A worker's end of its channel, as it crosses into the worker. */
export class PoolLink {
  /** The port for what the rings cannot carry (shared objects). */
  readonly port: MessagePort;
  /** This worker's control words. */
  readonly ctl: Int32Array;
  /** The pool's result signal, shared by all its workers. */
  readonly signal: Int32Array;
  /** The tasks ring's memory. */
  readonly tasks: SharedArrayBuffer;
  /** The results ring's memory. */
  readonly results: SharedArrayBuffer;

  /** Wraps the worker's port and shared memory. */
  constructor(
    port: MessagePort,
    ctl: Int32Array,
    signal: Int32Array,
    tasks: SharedArrayBuffer,
    results: SharedArrayBuffer,
  ) {
    this.port = port;
    this.ctl = ctl;
    this.signal = signal;
    this.tasks = tasks;
    this.results = results;
  }

  /** Moves the port into the worker; the memory is shared. */
  [reduceSymbol](): Reduced {
    return {
      tag: TAG,
      state: [
        this.port,
        this.ctl.buffer,
        this.signal.buffer,
        this.tasks,
        this.results,
      ],
      transfer: [this.port],
    };
  }
}

registerRebuilder(TAG, (state) => {
  const [port, ctl, signal, tasks, results] = state as [
    MessagePort,
    SharedArrayBuffer,
    SharedArrayBuffer,
    SharedArrayBuffer,
    SharedArrayBuffer,
  ];
  return new PoolLink(
    port,
    new Int32Array(ctl),
    new Int32Array(signal),
    tasks,
    results,
  );
});

/** True when every item of `a` is a number. */
export function allNumbers(a: unknown[]): boolean {
  for (let i = 0; i < a.length; i++) if (typeof a[i] !== "number") return false;
  return true;
}
