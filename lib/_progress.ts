/**
 * Progress of a long pool call (`map`, `starmap`, `imap`, `imapUnordered`
 * and their async forms): a line on stderr when it is a terminal, or a
 * callback. The pool only adds to a counter as results arrive; drawing runs
 * on an unref'd timer a few times a second, so the cost per result is one
 * addition and the timer never keeps a program alive.
 *
 * @module
 */

import { show } from "./_show.ts";
import { checkKeys } from "./_options.ts";

/**
 * Where a pool call stands, as given to an `onProgress` callback.
 *
 * @example Draw your own progress
 * ```ts
 * import { Pool, type ProgressInfo } from "@mp/multiprocessing";
 * export function square(x: number) {
 *   return x * x;
 * }
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 2 });
 *   const progress = (p: ProgressInfo) =>
 *     console.log(`${p.done}/${p.total} at ${p.rate.toFixed(0)}/s`);
 *   await pool.map(square, [1, 2, 3], { progress });
 * }
 * ```
 */
export interface ProgressInfo {
  /** Items whose result arrived. */
  done: number;
  /** Items in all; undefined for an `imap` of an iterable of unknown length. */
  total: number | undefined;
  /** Milliseconds since the call began. */
  elapsedMs: number;
  /** Items a second so far. */
  rate: number;
  /** Milliseconds left at this rate; undefined while unknown. */
  etaMs: number | undefined;
  /** True for the last call: the call ended (done, failed, or stopped). */
  ended: boolean;
}

/**
 * How a pool call shows its progress: `true` draws a line on stderr when it
 * is a terminal (nothing otherwise), `"always"` draws on stderr even when it
 * is not (a line a second, for logs), a function is called with a
 * {@linkcode ProgressInfo} a few times a second and once at the end.
 *
 * @example
 * ```ts
 * import type { ProgressOption } from "@mp/multiprocessing";
 * const onTerminal: ProgressOption = true;
 * const own: ProgressOption = (p) => console.log(p.done, p.total);
 * ```
 */
export type ProgressOption =
  | boolean
  | "always"
  | ((progress: ProgressInfo) => void);

/**
 * Options of `map`, `starmap`, `imap`, `imapUnordered` and their async
 * forms, given in place of `chunksize`.
 *
 * @example A progress line on a long map
 * ```ts
 * import { type MapOptions, Pool } from "@mp/multiprocessing";
 * export function square(x: number) {
 *   return x * x;
 * }
 * if (import.meta.main) {
 *   await using pool = new Pool({ processes: 2 });
 *   const options: MapOptions = { chunksize: 100, progress: true };
 *   const squares = await pool.map(square, Array.from({ length: 10_000 }, (_, i) => i), options);
 *   console.log(squares.length); // 10000
 * }
 * ```
 */
export interface MapOptions {
  /** Items a task takes (as the positional `chunksize`). */
  chunksize?: number;
  /** Show progress (see {@linkcode ProgressOption}); default: none. */
  progress?: ProgressOption;
}

/** Redraw this often on a terminal (ms)... */
const TTY_MS = 200;
/** ...and this often into a log (ms). */
const LOG_MS = 1000;

/** Splits `chunksize` or a {@linkcode MapOptions} object; checks `progress`. */
export function mapOptions(
  arg: number | MapOptions | undefined,
  fallback?: number,
): { chunksize: number | undefined; progress: ProgressOption | undefined } {
  if (arg === null || typeof arg !== "object") {
    return { chunksize: arg ?? fallback, progress: undefined };
  }
  checkKeys(arg, ["chunksize", "progress"], "map option");
  const p = arg.progress;
  if (
    p !== undefined && typeof p !== "boolean" && p !== "always" &&
    typeof p !== "function"
  ) {
    throw new TypeError(
      `progress must be true (a line on stderr when it is a terminal), "always", false or a function, got ${
        show(p)
      }`,
    );
  }
  return { chunksize: arg.chunksize ?? fallback, progress: p };
}

/** Counts results and shows them; null when nothing is to be shown. */
export function startProgress(
  option: ProgressOption | undefined,
  total: number | undefined,
  label: string,
  fail?: (error: unknown) => void,
): Progress | null {
  if (!option) return null;
  let terminal = false;
  if (typeof option !== "function") {
    try {
      terminal = Deno.stderr.isTerminal();
    } catch {
      terminal = false;
    }
    if (!terminal && option !== "always") return null;
  }
  const p = new Progress(option, total, label, terminal);
  p.fail = fail;
  return p;
}

/** The length of `items` if it has one cheaply (an array, a Set, a Map). */
export function lengthOf(items: unknown): number | undefined {
  if (Array.isArray(items)) return items.length;
  if (items instanceof Set || items instanceof Map) return items.size;
  return undefined;
}

let live = 0;

/** How many progress timers run (tests check none is left: unref'd timers escape Deno's sanitizer). */
export function liveProgressTimers(): number {
  return live;
}

/** One call's progress: `add` per result, drawn by a timer. */
export class Progress {
  done = 0;
  total: number | undefined;
  #start = performance.now();
  #option: ProgressOption;
  #label: string;
  #terminal: boolean;
  #timer: ReturnType<typeof setInterval> | undefined;
  #shown = -1;
  #drawn = false;
  #ended = false;
  /** Where an error the callback throws while the call runs goes: the call fails with it. */
  fail: ((error: unknown) => void) | undefined;

  constructor(
    option: ProgressOption,
    total: number | undefined,
    label: string,
    terminal: boolean,
  ) {
    this.#option = option;
    this.total = total;
    this.#label = label || "pool";
    this.#terminal = terminal;
    this.#timer = setInterval(
      () => {
        const thrown = this.#tick(false);
        if (thrown === undefined) return;
        this.#stop();
        if (this.fail) this.fail(thrown);
        else rethrowLater(thrown);
      },
      terminal || typeof option === "function" ? TTY_MS : LOG_MS,
    );
    Deno.unrefTimer(this.#timer as unknown as number);
    live++;
  }

  /** `n` more items are done. */
  add(n: number): void {
    this.done += n;
  }

  /**
   * The call ended: a last report, and the line cleared.
   *
   * @returns what the callback threw on that report (the call then fails with it), if it did
   */
  end(): unknown {
    if (this.#ended) return undefined;
    this.#stop();
    return this.#tick(true);
  }

  #stop(): void {
    this.#ended = true;
    clearInterval(this.#timer);
    live--;
  }

  /** Where the call stands now. */
  info(ended: boolean): ProgressInfo {
    const elapsedMs = performance.now() - this.#start;
    const rate = elapsedMs > 0 ? this.done / (elapsedMs / 1000) : 0;
    const left = this.total === undefined ? undefined : this.total - this.done;
    const etaMs = left === undefined || rate <= 0
      ? undefined
      : (left / rate) * 1000;
    return {
      done: this.done,
      total: this.total,
      elapsedMs,
      rate,
      etaMs,
      ended,
    };
  }

  /** One report; returns what a callback threw (`undefined` if nothing). */
  #tick(ended: boolean): unknown {
    if (!ended && this.done === this.#shown && !this.#terminal) return;
    this.#shown = this.done;
    const info = this.info(ended);
    if (typeof this.#option === "function") {
      try {
        this.#option(info);
      } catch (e) {
        return e ?? new Error(`the progress callback threw ${e}`);
      }
      return;
    }
    if (this.#terminal) {
      // The line is cleared at the end: results printed after it stay clean.
      if (ended) {
        if (this.#drawn) write("\r\x1b[2K");
        return;
      }
      this.#drawn = true;
      write(`\r\x1b[2K${formatProgress(this.#label, info)}`);
    } else write(`${formatProgress(this.#label, info)}\n`);
  }
}

function write(text: string): void {
  try {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) {
      off += Deno.stderr.writeSync(bytes.subarray(off));
    }
  } catch {
    // stderr closed: nothing to show progress on.
  }
}

function duration(ms: number): string {
  if (ms < 9950) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** `square 4,200/10,000 42% 1,234/s 3s eta 5s` */
export function formatProgress(label: string, p: ProgressInfo): string {
  const n = (x: number) => Math.round(x).toLocaleString("en-US");
  const of = p.total === undefined
    ? `${n(p.done)}`
    : `${n(p.done)}/${n(p.total)} ${
      p.total > 0 ? Math.floor((100 * p.done) / p.total) : 100
    }%`;
  const eta = p.etaMs === undefined ? "" : ` eta ${duration(p.etaMs)}`;
  return `${label} ${of} ${n(p.rate)}/s ${duration(p.elapsedMs)}${eta}${
    p.ended ? " done" : ""
  }`;
}

/** An error with no call left to fail: reported as an event listener's is. */
export function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
