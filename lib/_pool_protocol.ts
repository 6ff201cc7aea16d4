/**
 * What a pool and its workers say to each other, shared by both sides.
 *
 * Each worker has two rings of records in shared memory (see
 * `_pool_ring.ts`): tasks one way, results the other. Arrays of numbers
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
 * Task records (parent -> worker), int32 fields then data:
 *
 * - `T_NUM`: `n, firstSeq, fnId, kind, L` (`L` = items per task, or -1 and
 *   then `n` lengths), then the items as float64 (8-aligned);
 * - `T_INT`: the same, the items as int32: when every item is an integer
 *   that int32 holds (and not -0), so that the task gets V8 small integers
 *   and its integer code is not compiled for doubles;
 * - `T_CODEC`: `n, firstSeq, fnId, kind`, then the codec bytes of the
 *   payloads array (from byte 16);
 * - `T_PORT`: one task, on the port: `[seq, fnId, kind, payload, mode]`,
 *   the payload structured-cloned (`PORT_CLONE`, shared objects reduced) or,
 *   too big for a record, float64 items (`PORT_NUM`), int32 items
 *   (`PORT_INT`) or codec bytes (`PORT_CODEC`) in a SharedArrayBuffer of its
 *   own;
 * - `T_DEFS`: codec bytes of `[[fnId, module, name], ...]`;
 * - `T_STOP`: finish the queued tasks, then end.
 *
 * Result records (worker -> parent), for the next `n` tasks in the order
 * sent: `R_NUM`: `n, L` (-2: one number per task, -1: lengths follow), the
 * busy time as float64 at byte 8, then lengths, then float64 values;
 * `R_CODEC`: `n`, busy time, codec bytes of `{ v: values, e: errors }` from
 * byte 16; `R_PORT`: `{ v, e, b }` on the port (or, too big for a record,
 * `{ num, b }` / `{ codec, b }` with a SharedArrayBuffer); `R_INIT_FAILED`: codec
 * bytes of the initializer's error.
 *
 * @module
 */

import { type Reduced, reduceSymbol, registerRebuilder } from "./reduction.ts";
export { rebuildError, serializeError, type WireError } from "./wire/_error.ts";

/** ctl word: sequence number of the task the worker started last. */
export const STARTED = 0;
/** Number of ctl words. */
export const CTL_WORDS = 1;
/** Bytes of each ring (a power of two). */
export const RING_BYTES = 1 << 20;

/** Task record: numeric map chunks. */
export const T_NUM = 1;
/** Task record: codec-encoded payloads. */
export const T_CODEC = 2;
/** Task record: one task on the port. */
export const T_PORT = 3;
/** Task record: function references. */
export const T_DEFS = 4;
/** Task record: end after the queued tasks. */
export const T_STOP = 5;
/** Task record: numeric map chunks of int32 values (as `T_NUM`, items as int32). */
export const T_INT = 6;

/** Result record: numbers. */
export const R_NUM = 1;
/** Result record: codec-encoded values and errors. */
export const R_CODEC = 2;
/** Result record: on the port. */
export const R_PORT = 3;
/** Result record: the initializer failed; the worker ends. */
export const R_INIT_FAILED = 4;

/** A task on the port: its payload structured-cloned. */
export const PORT_CLONE = 0;
/** A task on the port: its items as float64 in a SharedArrayBuffer. */
export const PORT_NUM = 1;
/** A task on the port: the codec's encoding of `[payload]` in a SharedArrayBuffer. */
export const PORT_CODEC = 2;
/** A task on the port: its items as int32 in a SharedArrayBuffer. */
export const PORT_INT = 3;

/** `fn(...payload)`. */
export const KIND_APPLY = 0;
/** `payload.map((x) => fn(x))`. */
export const KIND_MAP = 1;
/** `payload.map((args) => fn(...args))`. */
export const KIND_STAR = 2;

const TAG = "mp.PoolLink";

/** An error (or any thrown value) as it travels. */

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

/** True when every number of `a[from, to)` is an int32 and none is -0. */
export function allInt32(a: number[], from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const x = a[i];
    if ((x | 0) !== x || (x === 0 && 1 / x < 0)) return false;
  }
  return true;
}

/** True when every item of `a` is a number. */
export function allNumbers(a: unknown[]): boolean {
  for (let i = 0; i < a.length; i++) if (typeof a[i] !== "number") return false;
  return true;
}
