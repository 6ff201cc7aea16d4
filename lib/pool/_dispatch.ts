/**
 * The local pool's transport: its worker processes, each with a ring of
 * task records and a ring of result records (`_protocol.ts`), the
 * dispatch that writes queued tasks to the workers with room, and the loop
 * that drains results. A worker that dies is replaced; the tasks it had
 * started fail, the ones it had not go to another.
 *
 * @module
 */

import { threads } from "../process/_threads.ts";
import { type Permissions, Process, whenEnded } from "../process.ts";
import { findUncloneable, rebuild, reduce } from "../reduction.ts";
import { SLICE_MS, waitAsync } from "../shm/_wait.ts";
import { Spinner } from "../shm/_spin.ts";
import { SpareBuffers } from "../shm/_spares.ts";
import { ProcessError } from "../errors.ts";
import { Decoder, EncodeError, Encoder } from "../wire/_codec.ts";
import { RecordRing } from "./_record_ring.ts";
import {
  CTL_WORDS,
  numResultHead,
  numTaskHead,
  PoolLink,
  PORT_BACK,
  PORT_CLONE,
  PORT_CODEC,
  PORT_NUM,
  R_CODEC,
  R_INIT_FAILED,
  R_NUM,
  R_PORT,
  RESULT_BUSY_AT,
  RESULT_COUNT_WORD,
  RESULT_DATA_AT,
  RESULT_LEN_WORD,
  RESULT_LENS_WORD,
  RING_BYTES,
  SCALAR,
  STARTED,
  T_CODEC,
  T_DEFS,
  T_NUM,
  T_PORT,
  T_STOP,
  TASK_CODEC_AT,
  TASK_LEN_WORD,
  TASK_LENS_WORD,
  VARIED,
  type WireError,
  writeTaskHead,
} from "./_protocol.ts";
import type { Task } from "./_jobs.ts";
import { Fifo } from "../_fifo.ts";
import { poolWorker, type WorkerConfig } from "./_worker.ts";
import { traceResult, tracing } from "../trace/_writer.ts";
import { withRebuiltError } from "../wire/_error.ts";
import type { PoolCore, Transport } from "./_core.ts";

const WORKER_MODULE = new URL("./_worker.ts", import.meta.url).href;

/** How much work (ms, by the measured task time) a worker may have queued. */
const TARGET_QUEUED_MS = 4;
/** Most tasks in flight to one worker. */
const MAX_IN_FLIGHT = 1024;
/** Most codec-encoded tasks in one ring record. */
const CODEC_RUN = 256;
/** The longest the second worker waits for the first one's first result (ms). */
const START_GAP_MS = 20;

interface Worker {
  proc: Process;
  name: string;
  port: MessagePort;
  ctl: Int32Array;
  tasks: RecordRing;
  results: RecordRing;
  inflight: Fifo<Task>;
  nextSeq: number;
  sent: number;
  defsSent: number;
  /** active: takes tasks; retiring: got its last task (maxtasksperchild); stopping: told to end. */
  state: "active" | "retiring" | "stopping" | "dead";
}

let workerCounter = 0;

/** How the local pool runs its tasks: worker processes and their rings. */
export class Dispatcher implements Transport {
  #core: PoolCore;
  #pending: Fifo<Task>;
  #module: string | undefined;
  #permissions: Permissions;
  #daemon: boolean;
  #config: WorkerConfig;
  #signal = new Int32Array(new SharedArrayBuffer(4));
  #workers = new Set<Worker>();
  #inflight = 0;
  #perTask: number | undefined;
  #receiving: Promise<void> | null = null;
  #portLate = false;
  #dispatching = false;
  #redispatch = false;
  #encoder = new Encoder();
  #decoder = new Decoder();
  #spinner = new Spinner();
  /** Buffers of big tasks, handed back by the workers once read. */
  #spares = new SpareBuffers();

  constructor(
    core: PoolCore,
    config: WorkerConfig,
    permissions: Permissions,
  ) {
    this.#core = core;
    this.#pending = core.pending;
    this.#module = core.module;
    this.#config = config;
    this.#permissions = permissions;
    // Web Workers keep the program alive; node:worker_threads workers can be
    // unref'd (like Python's daemonic pool workers) but take no permissions.
    this.#daemon = permissions === "inherit";
  }

  wantsMore(): boolean {
    return this.#pending.length < this.#totalWindow() + this.#core.processes;
  }

  cap(): number {
    return 2 * (this.#totalWindow() + this.#core.processes);
  }

  idle(): boolean {
    return this.#inflight === 0;
  }

  receiving(): Promise<void> | null {
    return this.#receiving;
  }

  /** Stops idle workers once closed and done; true once all ended. */
  settle(): boolean {
    if (!this.#core.terminated && this.#core.idle()) {
      this.#cancelStarts();
      for (const w of this.#workers) {
        if (w.state === "active" || w.state === "retiring") {
          w.state = "stopping";
          if (w.tasks.begin(0) >= 0) w.tasks.commit(T_STOP, 0);
          else w.proc.terminate();
        }
      }
    }
    return this.#workers.size === 0 && this.#receiving === null;
  }

  stop(): void {
    this.#cancelStarts();
    for (const w of [...this.#workers]) w.proc.terminate();
    Atomics.add(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
  }

  /**
   * Starts the pool's `n` workers. Creating a worker blocks this thread for
   * its whole start (Deno 2.9: ~50 ms a node:worker_threads worker, ~17 ms a
   * Web Worker), so they start one after another whatever we do: the first
   * now, each other one on its own event-loop turn, after the first answered
   * a task or after {@linkcode START_GAP_MS}. A first call is then answered
   * after one worker's start, not after all of them (2 workers: ~95 -> ~60 ms).
   */
  startAll(n: number): void {
    this.spawn();
    this.#unstarted = n - 1;
    if (this.#unstarted > 0) this.#startNext(START_GAP_MS);
  }

  #unstarted = 0;
  #startTimer: ReturnType<typeof setTimeout> | undefined;
  #startDue = 0;

  /**
   * Starts one more of the pool's first workers in `ms`; a start due sooner
   * stays (results arriving faster than a timer must not keep pushing it back).
   */
  #startNext(ms: number): void {
    if (this.#startTimer !== undefined) {
      if (ms >= this.#startDue) return;
      clearTimeout(this.#startTimer);
    }
    this.#startDue = ms;
    const timer = this.#startTimer = setTimeout(() => {
      this.#startTimer = undefined;
      if (this.#unstarted <= 0 || this.#core.terminated || this.#core.broken) {
        return;
      }
      this.#unstarted--;
      this.#spawnSafely();
      this.dispatch();
      if (this.#unstarted > 0) this.#startNext(0);
    }, ms);
    // An unreachable pool must not be held alive by its own start-up.
    Deno.unrefTimer(timer);
  }

  /** The first workers not started yet will not be needed (closed and idle, or stopped). */
  #cancelStarts(): void {
    this.#unstarted = 0;
    clearTimeout(this.#startTimer);
    this.#startTimer = undefined;
  }

  spawn(): void {
    const { port1, port2 } = new MessageChannel();
    const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
    const tasks = new RecordRing(RING_BYTES);
    const results = new RecordRing(RING_BYTES);
    const name = `PoolWorker-${++workerCounter}`;
    const link = new PoolLink(
      port2,
      ctl,
      this.#signal,
      tasks.buffer,
      results.buffer,
    );
    const proc = new Process({
      target: poolWorker,
      args: [link, this.#config],
      name,
      daemon: this.#daemon,
      module: WORKER_MODULE,
      permissions: this.#permissions,
      preload: this.#module ? [this.#module] : [],
    });
    const w: Worker = {
      proc,
      name,
      port: port1,
      ctl,
      tasks,
      results,
      inflight: new Fifo(),
      nextSeq: 1,
      sent: 0,
      defsSent: 0,
      state: "active",
    };
    try {
      proc.start().catch(() => {});
    } catch (e) {
      port1.close();
      port2.close();
      throw e;
    }
    this.#workers.add(w);
    whenEnded(proc).then(
      () => this.#workerEnded(w),
      (e) => {
        this.#core.breakPool(e);
        this.#workerEnded(w);
      },
    );
  }

  #window(): number {
    const t = this.#perTask;
    if (t === undefined) return 1;
    return Math.max(
      1,
      Math.min(MAX_IN_FLIGHT, Math.floor(TARGET_QUEUED_MS / Math.max(t, 1e-4))),
    );
  }

  #totalWindow(): number {
    return this.#window() * this.#core.processes;
  }

  /** Sends queued tasks to workers with room, evenly. */
  dispatch(): void {
    if (this.#dispatching) {
      this.#redispatch = true;
      return;
    }
    this.#dispatching = true;
    try {
      do {
        this.#redispatch = false;
        this.#dispatchOnce();
      } while (this.#redispatch);
    } finally {
      this.#dispatching = false;
    }
    for (const f of this.#core.feeders) f.poke();
  }

  #dispatchOnce(): void {
    if (
      this.#core.terminated || this.#core.broken || this.#pending.length === 0
    ) return;
    const win = this.#window();
    const max = this.#config.maxtasks;
    const ready: [Worker, number][] = [];
    for (const w of this.#workers) {
      if (w.state !== "active") continue;
      let room = win - w.inflight.length;
      if (max) room = Math.min(room, max - w.sent);
      if (room > 0) ready.push([w, room]);
    }
    ready.sort((a, b) => a[0].inflight.length - b[0].inflight.length);
    let left = ready.length;
    for (const [w, room] of ready) {
      const share = Math.ceil(this.#pending.length / left--);
      const n = Math.min(room, share);
      if (n <= 0) continue;
      const batch: Task[] = [];
      while (batch.length < n && this.#pending.length > 0) {
        const t = this.#pending.shift()!;
        if (!t.job.over) batch.push(t);
      }
      if (batch.length) {
        const rest = this.#send(w, batch);
        // The worker's ring is full: those wait for the next round.
        if (rest.length) this.#pending.unshiftAll(rest);
      }
      if (this.#pending.length === 0) break;
    }
    if (this.#inflight > 0) this.#receive();
  }

  /** Writes `batch` to `w`'s ring; returns the tasks that did not fit. */
  #send(w: Worker, batch: Task[]): Task[] {
    const ring = w.tasks;
    if (w.defsSent < this.#core.fnDefs.length) {
      const defs: [number, string, string][] = [];
      for (let id = w.defsSent; id < this.#core.fnDefs.length; id++) {
        defs.push([
          id,
          this.#core.fnDefs[id].module,
          this.#core.fnDefs[id].name,
        ]);
      }
      const size = this.#encoder.encode(defs);
      const at = ring.begin(size);
      if (at < 0) return batch;
      this.#encoder.copyTo(ring.u8, at, 0, size);
      ring.commit(T_DEFS, size);
      w.defsSent = this.#core.fnDefs.length;
    }
    let i = 0;
    while (i < batch.length) {
      const t = batch[i];
      let j = i + 1;
      const limit = t.num
        ? batch.length
        : Math.min(batch.length, i + CODEC_RUN);
      while (
        j < limit && batch[j].fnId === t.fnId && batch[j].kind === t.kind &&
        batch[j].num === t.num
      ) j++;
      const wrote = t.num
        ? this.#writeNum(w, batch, i, j)
        : this.#writeCodec(w, batch, i, j);
      if (wrote === 0) break;
      i += wrote;
    }
    if (this.#config.maxtasks && w.sent >= this.#config.maxtasks) {
      // It ends after these; its replacement starts now.
      w.state = "retiring";
      this.#spawnSafely();
    }
    return i < batch.length ? batch.slice(i) : [];
  }

  #sent(w: Worker, t: Task): void {
    t.seq = w.nextSeq++;
    w.inflight.push(t);
    this.#inflight++;
    w.sent++;
  }

  /** Writes tasks `[i, j)` (numeric map chunks) as one record; returns how many went. */
  #writeNum(w: Worker, batch: Task[], i: number, j: number): number {
    const ring = w.tasks;
    const max = ring.maxPayload;
    // As many as fit in one record.
    let total = 0;
    let uniform = batch[i].payload.length;
    let end = i;
    for (; end < j; end++) {
      const len = batch[end].payload.length;
      const u = len === uniform ? uniform : VARIED;
      const bytes = numTaskHead(end - i + 1, u) + (total + len) * 8;
      if (bytes > max) break;
      uniform = u;
      total += len;
    }
    if (end === i) {
      // Too big for a ring record: its own shared memory, sent by the port
      // (sharing it costs the same whatever its size).
      const p = batch[i].payload as number[];
      const big = new Float64Array(
        this.#spares.take(p.length * 8),
        0,
        p.length,
      );
      big.set(p);
      // The bare buffer: Deno walks every index of a typed array it receives.
      return this.#writePort(w, batch[i], PORT_NUM, big.buffer, p.length);
    }
    const n = end - i;
    const head = numTaskHead(n, uniform);
    const at = ring.begin(head + total * 8);
    if (at < 0) return 0;
    const i32 = ring.i32, f64 = ring.f64, h = at >> 2;
    writeTaskHead(i32, h, n, w.nextSeq, batch[i].fnId, batch[i].kind);
    i32[h + TASK_LEN_WORD] = uniform;
    let k = (at + head) >> 3;
    for (let x = 0; x < n; x++) {
      const p = batch[i + x].payload as number[];
      if (uniform === VARIED) i32[h + TASK_LENS_WORD + x] = p.length;
      // One builtin copy, not a loop of ours: as quick before V8 has
      // compiled this code as after (a cold loop ran 3-8x slower).
      f64.set(p, k);
      k += p.length;
    }
    ring.commit(T_NUM, head + total * 8);
    for (let x = i; x < end; x++) this.#sent(w, batch[x]);
    return n;
  }

  /** Writes tasks `[i, j)` with the codec as one record; returns how many went. */
  #writeCodec(w: Worker, batch: Task[], i: number, j: number): number {
    const ring = w.tasks;
    while (true) {
      const payloads: unknown[] = [];
      for (let x = i; x < j; x++) payloads.push(batch[x].payload);
      let size: number;
      try {
        size = this.#encoder.encode(payloads);
      } catch (e) {
        // Something the codec cannot carry (a shared object, a function):
        // narrow it down; a single such task goes by the port, unless
        // structured clone would not carry it faithfully either (a URL
        // would arrive as `{}`): then the task fails with the codec's error.
        if (j - i === 1) {
          if (e instanceof EncodeError && !e.portable) {
            batch[i].job.error(batch[i].index, this.#uncloneable(batch[i], e));
            return 1;
          }
          return this.#writePort(w, batch[i]);
        }
        j = i + ((j - i) >> 1);
        continue;
      }
      if (TASK_CODEC_AT + size > ring.maxPayload) {
        if (j - i === 1) {
          // Too big for a ring record: the encoding in shared memory of its
          // own, by the port. (The encoding is of the one-task array.)
          const bytes = this.#spares.take(size);
          this.#encoder.copyTo(new Uint8Array(bytes), 0, 0, size);
          return this.#writePort(w, batch[i], PORT_CODEC, bytes, size);
        }
        j = i + ((j - i) >> 1);
        continue;
      }
      const at = ring.begin(TASK_CODEC_AT + size);
      if (at < 0) return 0;
      const t = batch[i];
      writeTaskHead(ring.i32, at >> 2, j - i, w.nextSeq, t.fnId, t.kind);
      this.#encoder.copyTo(ring.u8, at + TASK_CODEC_AT, 0, size);
      ring.commit(T_CODEC, TASK_CODEC_AT + size);
      for (let x = i; x < j; x++) this.#sent(w, batch[x]);
      return j - i;
    }
  }

  /**
   * Sends one task through the port: its payload structured-cloned (shared
   * objects transferred), or the first `len` numbers or bytes of `bytes`
   * (numbers, or the codec's encoding) in shared memory. Returns 1, or 0
   * when the ring is full.
   */
  #writePort(
    w: Worker,
    t: Task,
    mode = PORT_CLONE,
    bytes?: SharedArrayBuffer,
    len = 0,
  ): number {
    const ring = w.tasks;
    if (ring.begin(0) < 0) {
      if (bytes) this.#spares.give(bytes);
      return 0;
    }
    const undo: (() => void)[] = [];
    try {
      const transfer: Transferable[] = [];
      const wire = bytes ?? reduce(t.payload, transfer, undo);
      w.port.postMessage(
        [w.nextSeq, t.fnId, t.kind, wire, mode, len],
        transfer,
      );
    } catch (e) {
      for (const f of undo) f(); // what reducing lent for the way
      t.job.error(t.index, this.#uncloneable(t, e));
      return 1;
    }
    ring.commit(T_PORT, 0);
    this.#sent(w, t);
    return 1;
  }

  /** Hands a big result's buffer, read, back to the worker that made it (if its ring has room). */
  #giveBack(w: Worker, b: SharedArrayBuffer): void {
    if (w.state === "dead" || w.tasks.begin(0) < 0) return;
    w.port.postMessage([0, 0, 0, b, PORT_BACK, 0]);
    w.tasks.commit(T_PORT, 0);
  }

  #uncloneable(t: Task, e: unknown): TypeError {
    const d = this.#core.describe(t.job) ?? { what: "items", size: 1 };
    const payload = t.payload as unknown[];
    const base = d.what === "args" ? 0 : t.index * d.size;
    for (let i = 0; i < payload.length; i++) {
      const path = d.what === "args" ? `args[${i}]` : `${d.what}[${base + i}]`;
      const bad = findUncloneable(payload[i], path);
      if (bad) {
        return new TypeError(
          `${bad.path} is a ${bad.type}, which cannot be sent to a pool worker ` +
            `(only structured-cloneable values and this module's shared objects can); pass plain data instead`,
        );
      }
    }
    return new TypeError(
      `a task cannot be sent to a pool worker: ${(e as Error).message}`,
    );
  }

  #spawnSafely(): void {
    try {
      this.spawn();
    } catch (e) {
      this.#core.breakPool(e);
    }
  }

  /** Receives results while tasks are in flight (holding the program alive). */
  #receive(): void {
    if (this.#receiving) return;
    this.#receiving = (async () => {
      while (
        this.#inflight > 0 && !this.#core.terminated && !this.#core.broken
      ) {
        const seen = Atomics.load(this.#signal, 0);
        let got = false;
        this.#portLate = false;
        try {
          for (const w of this.#workers) if (this.#drain(w)) got = true;
          if (got) this.dispatch();
          if (got && this.#unstarted > 0) this.#startNext(0);
        } catch (e) {
          // A corrupt record or the like: fail loudly, never hang.
          this.#core.breakPool(e);
          return;
        }
        if (got) {
          // Let the consumers of the results run before the next round.
          await null;
          continue;
        }
        // A result due within microseconds (a quick task): watch for it
        // (the spinner stops itself while that does not pay).
        if (this.#spinner.spin(this.#signal, 0, seen)) continue;
        // Holds nothing: who waits on a result (get, wait, an imap's next,
        // join) holds the program, so an unreachable pool never does.
        await waitAsync(
          this.#signal,
          0,
          seen,
          this.#portLate ? 1 : SLICE_MS,
          false,
        );
      }
    })().finally(() => {
      this.#receiving = null;
      // Tasks may have gone in flight as the loop ended.
      if (this.#inflight > 0 && !this.#core.terminated && !this.#core.broken) {
        this.#receive();
      } else this.#core.checkQuiet();
    });
  }

  /** Takes every result record a worker wrote; true if there was one. */
  #drain(w: Worker): boolean {
    const ring = w.results;
    let got = false;
    while (!this.#core.terminated && ring.next()) {
      const at = ring.at;
      const type = ring.type;
      if (type === R_NUM) {
        const i32 = ring.i32, f64 = ring.f64, h = at >> 2;
        const n = i32[h + RESULT_COUNT_WORD];
        const uniform = i32[h + RESULT_LEN_WORD];
        let k = (at + numResultHead(n, uniform)) >> 3;
        for (let i = 0; i < n; i++) {
          const t = w.inflight.shift();
          if (!t) break;
          this.#inflight--;
          const len = uniform === SCALAR
            ? 1
            : uniform === VARIED
            ? i32[h + RESULT_LENS_WORD + i]
            : uniform;
          t.job.resultNum(t.index, f64, k, len);
          k += len;
        }
        this.#measure(f64[(at + RESULT_BUSY_AT) >> 3], n);
      } else if (type === R_CODEC) {
        const n = ring.i32[(at >> 2) + RESULT_COUNT_WORD];
        const busy = ring.f64[(at + RESULT_BUSY_AT) >> 3];
        const msg = this.#decoder.decode(
          ring.u8,
          at + RESULT_DATA_AT,
          at + ring.length,
        ) as {
          v: unknown[];
          e?: [number, WireError][];
        };
        this.#deliver(w, msg.v, msg.e);
        this.#measure(busy, n);
      } else if (type === R_PORT) {
        const r = threads().receiveMessageOnPort(w.port as never) as
          | {
            message: {
              v: unknown;
              e?: [number, WireError][];
              b: number;
              num?: SharedArrayBuffer;
              codec?: SharedArrayBuffer;
              len?: number;
              back?: SharedArrayBuffer;
            };
          }
          | undefined;
        if (!r) {
          // Posted before the record was written: it is on its way.
          this.#portLate = true;
          return got;
        }
        const { num, codec, len, back } = r.message;
        if (back) {
          // A big task's buffer, read: for a later one.
          this.#spares.give(back);
          ring.release();
          continue;
        }
        if (codec) {
          const msg = this.#decoder.decode(
            new Uint8Array(codec),
            0,
            len!,
          ) as { v: unknown[]; e?: [number, WireError][] };
          this.#giveBack(w, codec);
          this.#deliver(w, msg.v, msg.e);
          this.#measure(r.message.b, msg.v.length);
        } else if (num) {
          // One big array of numbers, in shared memory of its own.
          const t = w.inflight.shift();
          if (t) {
            this.#inflight--;
            t.job.resultNum(t.index, new Float64Array(num, 0, len), 0, len!);
          }
          this.#giveBack(w, num);
          this.#measure(r.message.b, 1);
        } else {
          const values = rebuild(r.message.v) as unknown[];
          this.#deliver(w, values, r.message.e);
          this.#measure(r.message.b, values.length);
        }
      } else if (type === R_INIT_FAILED) {
        const e = this.#decoder.decode(ring.u8, at, at + ring.length);
        ring.release();
        withRebuiltError(e as WireError, (x) => this.#core.breakPool(x));
        return true;
      }
      ring.release();
      got = true;
      if (tracing) traceResult(1);
    }
    return got;
  }

  #deliver(w: Worker, values: unknown[], errs?: [number, WireError][]): void {
    let k = 0;
    for (let i = 0; i < values.length; i++) {
      const t = w.inflight.shift();
      if (!t) break;
      this.#inflight--;
      if (errs && k < errs.length && errs[k][0] === i) {
        // The user's error class may need its module imported here first.
        withRebuiltError(errs[k++][1], (e) => t.job.error(t.index, e));
      } else t.job.result(t.index, values[i]);
    }
  }

  #measure(busy: number, n: number): void {
    if (n <= 0) return;
    const est = busy / n;
    this.#perTask = this.#perTask === undefined
      ? est
      : 0.5 * this.#perTask + 0.5 * est;
  }

  /** A worker ended: expected (stop, retirement, terminate) or not (a death). */
  #workerEnded(w: Worker): void {
    if (w.state === "dead") return;
    const prev = w.state;
    if (!this.#core.terminated) this.#drain(w);
    w.state = "dead";
    this.#workers.delete(w);
    const code = w.proc.exitCode;
    const started = Atomics.load(w.ctl, STARTED);
    const lost = w.inflight.drain();
    this.#inflight -= lost.length;
    try {
      w.port.close();
    } catch {
      // Already closed.
    }
    if (this.#core.terminated || this.#core.broken) {
      this.#core.checkQuiet();
      return;
    }
    const requeue: Task[] = [];
    for (const t of lost) {
      if (t.seq <= started) {
        t.job.error(
          t.index,
          new ProcessError(
            `pool worker '${w.name}' died (exit code ${code}) while running this task; ` +
              `the pool replaced the worker and goes on`,
          ),
        );
      } else requeue.push(t);
    }
    if (
      prev !== "stopping" && started === 0 && lost.length === requeue.length
    ) {
      // It ended before running anything: its replacements would too.
      if (prev === "active") {
        this.#core.breakPool(
          new ProcessError(
            `pool worker '${w.name}' ended (exit code ${code}) before it ran any task, ` +
              `so the pool cannot run tasks; check the pool's initializer and module`,
          ),
        );
        return;
      }
    }
    if (requeue.length) this.#pending.unshiftAll(requeue);
    if (prev === "active" && !this.#core.idle()) this.#spawnSafely();
    this.dispatch();
    this.#core.checkQuiet();
  }
}
