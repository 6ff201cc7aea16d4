/**
 * The timeline writer: every process of the program appends its own events
 * to one Chrome Trace Event Format file (the JSON array form, which Chrome,
 * Perfetto and `renderTrace` open). Off by default; the hooks elsewhere are
 * one `if (tracing)` each, so a program that does not trace pays a boolean.
 *
 * How the pieces meet:
 * - the main program opens (and truncates) the file at `startTrace` or, with
 *   `MP_TRACE=out.json`, when this module loads, so a bad path fails at once;
 * - every child gets the program's trace control (shared memory: on/off,
 *   the path, the epoch) in its init message (`traceShare` / `attachTrace`)
 *   and follows it (an async wait on it, which starting or stopping the
 *   trace wakes), so a trace started after a pool's workers reaches them
 *   too; it appends its own batches to the file
 *   with `O_APPEND`; each batch is whole lines, so batches of different
 *   threads never cut into each other;
 * - timestamps are `performance.timeOrigin + performance.now()`, an epoch
 *   clock that every worker shares (checked: a child's stamp falls between
 *   its parent's stamps before and after it), minus the trace's start;
 * - the file is `[` + the first event, then one `,{event}` line per event:
 *   valid JSON once a `]` is added, and Chrome's format allows that `]` to be
 *   missing, so a program killed mid-run leaves a trace that opens
 *   (`renderTrace` also drops a last line cut in half).
 *
 * Runs of tiny tasks (and of results arriving back to back) are merged into
 * one span with a count, and waits shorter than a threshold are left out,
 * which keeps a trace of a long run to a few tens of MB.
 *
 * @module
 */

import { showNumber } from "../_show.ts";

/**
 * What every child is given, tracing or not: the program's trace control, in
 * shared memory, so that a trace started after a child (a pool's workers)
 * reaches it too. Int32 [0]: the trace's generation (0: none), [1]: the
 * path's length in bytes; Float64 [1]: the epoch (ms), [2]: the wait
 * threshold (ms); the path's bytes from byte 32.
 */
export interface TraceShare {
  ctl: SharedArrayBuffer;
}

const CONTROL_BYTES = 4096;
const PATH_AT = 32;

/** True while this thread writes a trace: the one check hot paths make. */
export let tracing = false;

/** A wait is written when it lasted at least this long (ms), unless set. */
const WAIT_THRESHOLD_MS = 1;
/** A task shorter than this (ms) is merged with its neighbours of the same function. */
const TINY_TASK_MS = 0.2;
/** Spans of one kind closer than this (ms) merge. */
const MERGE_GAP_MS = 0.5;
/**
 * Slices of one wait this close (ms) are one wait: between two slices the
 * waiter goes back through the event loop, ~1 ms on a loaded machine.
 */
const WAIT_GAP_MS = 5;
/** Write out once this many events are buffered... */
const FLUSH_EVENTS = 2048;
/** ...or this long after the first of them (ms). */
const FLUSH_MS = 100;

let control: SharedArrayBuffer | undefined;
let ctl: Int32Array | undefined;
let path = "";
let generation = 0;
let epoch = 0;
let waitThreshold = WAIT_THRESHOLD_MS;
let tid = 0;
let file: Deno.FsFile | undefined;
let owner = false;
let buf: string[] = [];
let timer: ReturnType<typeof setTimeout> | undefined;
let warned = false;
let currentTid = 0;
let currentName = "MainProcess";
const encoder = new TextEncoder();
/** This process's children: name and start (kept tracing or not, for a trace started later). */
const spawned = new Map<number, { name: string; at: number }>();

/** Now on the trace's clock (ms since the epoch, shared by all workers). */
export function traceNow(): number {
  return performance.timeOrigin + performance.now();
}

/** µs since the trace started: whole µs, one decimal below 100 µs. */
function us(epochMs: number): number {
  const v = (epochMs - epoch) * 1000;
  return v < 100 ? Math.round(v * 10) / 10 : Math.round(v);
}

function dus(ms: number): number {
  const v = ms * 1000;
  return v < 100 ? Math.round(v * 10) / 10 : Math.round(v);
}

function push(line: string): void {
  buf.push(line);
  if (buf.length >= FLUSH_EVENTS) flushTrace();
  else schedule();
}

/** A flush soon (unref'd: it never keeps the program alive). */
function schedule(): void {
  if (timer !== undefined) return;
  timer = setTimeout(() => {
    timer = undefined;
    flushTrace();
  }, FLUSH_MS);
  Deno.unrefTimer(timer as unknown as number);
}

/** A complete span ("X") on track `t`, from `t0` (epoch ms) for `ms`. */
export function traceSpan(
  t: number,
  name: string,
  t0: number,
  ms: number,
  cat?: string,
  args?: Record<string, unknown>,
): void {
  push(
    `,{"ph":"X",${cat ? `"cat":"${cat}",` : ""}"name":${
      JSON.stringify(name)
    },"ts":${us(t0)},"dur":${dus(ms)},"pid":1,"tid":${t}${
      args ? `,"args":${JSON.stringify(args)}` : ""
    }}\n`,
  );
}

/** An instant ("i") on track `t`. */
export function traceInstant(
  t: number,
  name: string,
  at: number,
  args?: Record<string, unknown>,
): void {
  push(
    `,{"ph":"i","s":"t","name":${JSON.stringify(name)},"ts":${
      us(at)
    },"pid":1,"tid":${t}${args ? `,"args":${JSON.stringify(args)}` : ""}}\n`,
  );
}

function meta(t: number, name: string, sort: number): void {
  push(
    `,{"ph":"M","name":"thread_name","pid":1,"tid":${t},"args":{"name":${
      JSON.stringify(name)
    }}}\n,{"ph":"M","name":"thread_sort_index","pid":1,"tid":${t},"args":{"sort_index":${sort}}}\n`,
  );
}

// ---- merging runs of short spans ------------------------------------------

interface Run {
  t: number;
  name: string;
  /** "" for tasks (they go without one). */
  cat: string;
  start: number;
  end: number;
  count: number;
  items: number;
  /** A run shorter than this in all is dropped (waits below the threshold). */
  min: number;
}

const runs = new Map<string, Run>();

function closeRun(key: string): void {
  const r = runs.get(key);
  if (!r) return;
  runs.delete(key);
  const ms = r.end - r.start;
  if (ms < r.min) return;
  const args: Record<string, unknown> = {};
  if (r.count > 1) args.count = r.count;
  if (r.items > 1) args.items = r.items;
  traceSpan(
    r.t,
    r.count > 1 && r.cat !== "wait" ? `${r.name} ×${r.count}` : r.name,
    r.start,
    ms,
    r.cat || undefined,
    r.count > 1 || r.items > 1 ? args : undefined,
  );
}

function addToRun(
  key: string,
  t: number,
  name: string,
  cat: string,
  start: number,
  end: number,
  items: number,
  min: number,
): void {
  const r = runs.get(key);
  if (r && r.name === name && start - r.end < MERGE_GAP_MS) {
    r.end = Math.max(r.end, end);
    r.count++;
    r.items += items;
    return;
  }
  if (r) closeRun(key);
  runs.set(key, { t, name, cat, start, end, count: 1, items, min });
  schedule();
}

// ---- the hooks ----------------------------------------------------------

let taskName = "";
let taskItems = 1;

/** A pool worker starts a task of `items` items with function `name`. */
export function traceTaskStart(name: string | undefined, items: number): void {
  taskName = name ?? "?";
  taskItems = items;
}

/** The task begun at `t0` (performance.now()) took `busy` ms; `failed` if it threw. */
export function traceTaskEnd(t0: number, busy: number, failed: boolean): void {
  const start = performance.timeOrigin + t0;
  if (busy < TINY_TASK_MS && !failed) {
    addToRun("task", tid, taskName, "", start, start + busy, taskItems, 0);
    return;
  }
  closeRun("task");
  const args = taskItems > 1 || failed
    ? {} as Record<string, unknown>
    : undefined;
  if (args && taskItems > 1) args.items = taskItems;
  if (args && failed) args.failed = true;
  // A task has no "cat": the most common event, so the shortest.
  traceSpan(tid, taskName, start, busy, undefined, args);
}

/** A pool worker is about to tell the parent results are there: write out what it holds first. */
export function traceIdle(): void {
  closeRun("task");
  flushTrace();
}

/** The pool queued `chunks` for `name` (undefined: an imap, fed lazily in chunks of `size`). */
export function traceSubmit(
  name: string | undefined,
  chunks: unknown[][] | undefined,
  size: number,
): void {
  let items = 0;
  for (const c of chunks ?? []) items += size === 0 ? 1 : c.length;
  traceInstant(
    tid,
    `submit ${name || "?"}`,
    traceNow(),
    chunks ? { chunks: chunks.length, items } : { chunksize: size },
  );
}

/** The pool took `n` results (results arriving back to back make one span). */
export function traceResult(n: number): void {
  const now = traceNow();
  addToRun("result", tid, "results", "result", now, now, n, 0);
}

/** The library's folder (lib/), whose frames are not the program's. */
const LIB = new URL("..", import.meta.url).href;
/** The private machinery under a public call (the flat `_` files and the subsystems' folders). */
const PRIVATE = /^(_|(shm|wire|process|trace)\/|manager\/_(wire|auth)\.ts$)/;

/**
 * What a wait is called: the library call the program made (the outermost
 * frame in this library before the program's own code: `Barrier.wait`, not
 * the `Condition.wait` under it), "manager call" for a manager client's, or
 * null for the pool's and the manager server's own idle waits.
 */
export function waitLabel(stack: string | undefined): string | null {
  let label: string | null = "wait";
  for (const line of (stack ?? "").split("\n").slice(1)) {
    // "at [async ]Name [as alias] (file:line:col)" or "at file:line:col".
    const m = /^at (?:async )?(?:(.+?) \()?(\S+?):\d+:\d+\)?$/.exec(
      line.trim(),
    );
    if (!m) continue;
    const fn = m[1]?.replace(/ \[as [^\]]*\]$/, "");
    const file = m[2];
    if (!file.startsWith(LIB)) break; // the program's code
    const base = file.slice(LIB.length);
    if (base === "shm/_wait.ts" || base.startsWith("trace/")) continue;
    if (
      /^(pool|pool\/_dispatch|pool\/_worker|manager\/_server)\.ts$/.test(base)
    ) return null;
    if (base === "manager/_channel.ts") return "manager call";
    if (PRIVATE.test(base)) continue; // shm/_owner, shm/_ring, ...: under a public call
    label = fn ? fn.replace(/^Object\./, "") : "wait";
  }
  return label;
}

/**
 * One logical wait: the slices of a wait on one shared word (a lock's, a
 * queue's: they wait in slices, going back through the event loop between
 * two) that follow each other, and any async waits on it in flight.
 */
interface Wait {
  start: number;
  end: number;
  inFlight: number;
  /** The stack of its first slice (the later ones may not show the call). */
  site: Error;
}

const waits = new Map<string, Wait>();
const wordIds = new WeakMap<ArrayBufferLike, number>();
let nextWordId = 1;

function waitKey(i32: Int32Array, index: number): string {
  let id = wordIds.get(i32.buffer);
  if (id === undefined) wordIds.set(i32.buffer, id = nextWordId++);
  return `${id}:${(i32.byteOffset >> 2) + index}`;
}

function closeWait(key: string): void {
  const w = waits.get(key)!;
  waits.delete(key);
  if (w.end - w.start < waitThreshold) return;
  const label = waitLabel(w.site.stack);
  if (label !== null) traceSpan(tid, label, w.start, w.end - w.start, "wait");
}

/** The wait on `key` going on from `start` (epoch ms), or a new one. */
function waitAt(key: string, start: number, site: () => Error): Wait {
  const w = waits.get(key);
  if (w && (w.inFlight > 0 || start - w.end < WAIT_GAP_MS)) return w;
  if (w) closeWait(key);
  const fresh = { start, end: start, inFlight: 0, site: site() };
  waits.set(key, fresh);
  schedule();
  return fresh;
}

/** A blocking wait on `i32[index]` from `t0` (performance.now()) until now. */
export function traceWait(t0: number, i32: Int32Array, index: number): void {
  const o = performance.timeOrigin, end = o + performance.now();
  const key = waitKey(i32, index);
  const w = waits.get(key);
  // A short wait that goes on no other is left out at once (no stack taken).
  const goesOn = w && (w.inFlight > 0 || o + t0 - w.end < WAIT_GAP_MS);
  if (end - (o + t0) < waitThreshold && !goesOn) {
    return;
  }
  const at = waitAt(key, o + t0, () => new Error());
  at.end = Math.max(at.end, end);
}

/** Traces an async wait on `i32[index]` (see `shm/_wait.ts`). */
export function traceAsyncWait<T>(
  p: Promise<T>,
  i32: Int32Array,
  index: number,
): Promise<T> {
  const key = waitKey(i32, index);
  const w = waitAt(key, traceNow(), () => new Error());
  w.inFlight++;
  return p.then((v) => {
    w.inFlight--;
    w.end = Math.max(w.end, traceNow());
    return v;
  });
}

/** The parent started child `ident` named `name` (called tracing or not). */
export function traceSpawn(ident: number, name: string): void {
  spawned.set(ident, { name, at: traceNow() });
  if (tracing) meta(ident, name, ident);
}

/** The parent saw child `ident` end with `code` (called tracing or not). */
export function traceEnded(ident: number, name: string, code: number): void {
  const child = spawned.get(ident);
  if (child === undefined) return;
  spawned.delete(ident);
  if (!tracing) return;
  const t0 = Math.max(child.at, epoch);
  traceSpan(ident, name, t0, traceNow() - t0, "process", { exitCode: code });
}

/** Names the tracks of the children started before the trace. */
function nameChildren(): void {
  for (const [ident, { name }] of spawned) meta(ident, name, ident);
}

// ---- starting, stopping, writing -------------------------------------------

function controlWords(): Int32Array {
  if (!ctl) {
    control = new SharedArrayBuffer(CONTROL_BYTES);
    ctl = new Int32Array(control, 0, 2);
  }
  return ctl;
}

/** What a child needs to trace to the same file as this program, now or later. */
export function traceShare(): TraceShare {
  controlWords();
  return { ctl: control! };
}

/** In a child: follow the program's trace (as track `ident`), now and as it starts and stops. */
export function attachTrace(
  s: TraceShare | undefined,
  ident: number,
  name: string,
): void {
  currentTid = ident;
  currentName = name;
  tid = ident;
  if (!s) return;
  control = s.ctl;
  ctl = new Int32Array(control, 0, 2);
  watch();
}

/**
 * Follows the control word from now on: an async wait on it, which the
 * main program's `beginTrace` / `endTrace` wake. Not a timer: a Web
 * Worker's first timer costs 4-11 ms (Deno sets timers up on first use),
 * which every child's start-up paid; a pending async wait keeps no worker
 * alive.
 */
function watch(): void {
  for (;;) {
    follow();
    const w = Atomics.waitAsync(ctl!, 0, generation);
    if (w.async) {
      w.value.then(watch);
      return;
    }
  }
}

/** In a child: takes up a trace started or stopped since it last looked (an Atomics.load when nothing changed). */
export function traceFollow(): void {
  if (ctl !== undefined && Atomics.load(ctl, 0) !== generation) follow();
}

/** Takes up the trace the control word says (started, stopped, another). */
function follow(): void {
  const g = Atomics.load(ctl!, 0);
  if (g === generation) return;
  // What is buffered belongs to the trace that ended.
  buf = [];
  runs.clear();
  waits.clear();
  closeFile();
  generation = g;
  tracing = g !== 0;
  if (!tracing) return;
  const f64 = new Float64Array(control!, 8, 2);
  epoch = f64[0];
  waitThreshold = f64[1];
  const len = Atomics.load(ctl!, 1);
  path = new TextDecoder().decode(
    new Uint8Array(control!, PATH_AT, len).slice(),
  );
  owner = false;
  warned = false;
  nameChildren();
}

function closeFile(): void {
  try {
    file?.close();
  } catch {
    // Closed already.
  }
  file = undefined;
}

/**
 * Writes out the buffered events, and the merged runs that can grow no more
 * (all of them when `ending`: this process ends).
 */
export function flushTrace(ending = false): void {
  if (timer !== undefined) {
    clearTimeout(timer);
    timer = undefined;
  }
  if (!tracing) return;
  const now = traceNow();
  for (const [key, r] of [...runs]) {
    if (ending || now - r.end >= MERGE_GAP_MS) closeRun(key);
  }
  for (const [key, w] of [...waits]) {
    if (ending || (w.inFlight === 0 && now - w.end >= WAIT_GAP_MS)) {
      closeWait(key);
    }
  }
  if (timer !== undefined) {
    // closeRun pushed, which scheduled another flush: this one does it.
    clearTimeout(timer);
    timer = undefined;
  }
  if (runs.size > 0 || waits.size > 0) schedule();
  if (buf.length === 0) return;
  if (Atomics.load(ctl!, 0) !== generation) {
    // Stopped (the file ends with `]`) or another trace began meanwhile.
    follow();
    return;
  }
  const text = buf.join("");
  buf = [];
  if (!file) {
    try {
      file = Deno.openSync(path, { append: true });
    } catch (e) {
      tracing = false;
      if (!warned) {
        warned = true;
        console.error(
          `trace: process ${tid} cannot write the trace file ${
            JSON.stringify(path)
          } (${
            (e as Error).message
          }); its events are left out of the trace: give its permissions write access to that file to trace it`,
        );
      }
      return;
    }
  }
  writeAll(file, encoder.encode(text));
}

function writeAll(f: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
}

/** Options of {@linkcode beginTrace}. */
export interface TraceStartOptions {
  /** Waits shorter than this (ms) are left out (default 1). */
  waitThresholdMs?: number;
}

/** Opens `path` for a new trace (main program or any process): throws when it cannot. */
export function beginTrace(
  to: string,
  options: TraceStartOptions = {},
  fromEnv = false,
): void {
  if (tracing) {
    throw new Error(
      `a trace is already being written to ${
        JSON.stringify(path)
      }: call stopTrace() before starting another`,
    );
  }
  const threshold = options.waitThresholdMs ?? WAIT_THRESHOLD_MS;
  if (
    typeof threshold !== "number" || !(threshold >= 0) ||
    !Number.isFinite(threshold)
  ) {
    throw new RangeError(
      `waitThresholdMs must be a non-negative number of milliseconds, got ${
        showNumber(threshold)
      }`,
    );
  }
  const bytes = encoder.encode(to);
  if (bytes.length > CONTROL_BYTES - PATH_AT) {
    throw new RangeError(
      `the trace file's path is ${bytes.length} bytes long, more than ${
        CONTROL_BYTES - PATH_AT
      }: give a shorter one`,
    );
  }
  let f: Deno.FsFile;
  try {
    // Appending, as the children do: every write lands at the end.
    f = Deno.openSync(to, { create: true, append: true });
    f.truncateSync(0);
  } catch (e) {
    throw new Error(
      `cannot write the trace file ${JSON.stringify(to)}: ${
        (e as Error).message
      }; give a path in a directory this program may write${
        fromEnv ? " (or unset MP_TRACE)" : ""
      }`,
      { cause: e },
    );
  }
  const words = controlWords();
  epoch = traceNow();
  waitThreshold = threshold;
  new Float64Array(control!, 8, 2).set([epoch, threshold]);
  new Uint8Array(control!, PATH_AT, bytes.length).set(bytes);
  Atomics.store(words, 1, bytes.length);
  // Last: a child that sees the new generation finds the rest in place.
  generation = 1 + ((Math.random() * 0x7ffffff0) | 0);
  Atomics.store(words, 0, generation);
  Atomics.notify(words, 0);
  file = f;
  path = to;
  owner = true;
  tid = currentTid;
  tracing = true;
  buf = [];
  writeAll(
    f,
    encoder.encode(
      `[{"ph":"M","name":"process_name","pid":1,"tid":${tid},"args":{"name":${
        JSON.stringify(`deno ${Deno.mainModule}`)
      },"epochMs":${epoch}}}\n`,
    ),
  );
  meta(tid, currentName, tid);
  nameChildren();
  traceInstant(tid, "trace start", epoch);
  flushTrace();
}

/** Ends the trace this program writes; returns its path (undefined: none). */
export function endTrace(): string | undefined {
  if (!tracing || !owner) return undefined;
  traceInstant(tid, "trace end", traceNow());
  flushTrace(true);
  Atomics.store(ctl!, 0, 0);
  Atomics.notify(ctl!, 0);
  generation = 0;
  tracing = false;
  try {
    writeAll(file!, encoder.encode("]\n"));
  } catch {
    // Closed already (the program is ending).
  }
  closeFile();
  owner = false;
  return path;
}

// A child flushes as it ends (see the bootstrap); the main program here.
addEventListener("unload", () => {
  if (owner) endTrace();
  else if (tracing) flushTrace(true);
});

// MP_TRACE=out.json traces the main program from the start. (A child is
// told by its parent instead: it is importing its module now.)
if (
  (globalThis as Record<symbol, unknown>)[Symbol.for("mp.importing")] !== true
) {
  let path: string | undefined;
  try {
    // Asked first, so that a program without env permission gets no prompt.
    const env = { name: "env", variable: "MP_TRACE" } as const;
    if (Deno.permissions.querySync(env).state === "granted") {
      path = Deno.env.get("MP_TRACE");
    }
  } catch {
    // No env permission: not asked to trace.
  }
  if (path) beginTrace(path, {}, true);
}
