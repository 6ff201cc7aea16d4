/**
 * Timelines of a program's processes: {@linkcode startTrace} (or the
 * environment variable `MP_TRACE=out.json`) writes a Chrome Trace Event
 * Format file with one track per process and pool worker (process start
 * and exit, each pool task or run of tiny tasks with its function and size,
 * waits on locks, queues, pipes, barriers and manager calls longer than a
 * threshold, the parent's submit and result points); {@linkcode renderTrace}
 * draws it as a self-contained HTML page. Chrome's `about:tracing` and
 * Perfetto (ui.perfetto.dev) open the file too.
 *
 * @example Trace a pool run and draw it
 * ```ts
 * import { Pool, renderTrace, startTrace, stopTrace } from "@mp/multiprocessing";
 *
 * export function work(ms: number): number {
 *   const end = performance.now() + ms;
 *   while (performance.now() < end);
 *   return ms;
 * }
 *
 * if (import.meta.main) {
 *   const path = await Deno.makeTempFile({ suffix: ".json" });
 *   startTrace(path);
 *   {
 *     await using pool = new Pool({ processes: 2 });
 *     await pool.map(work, [5, 5, 5, 40], 1);
 *   }
 *   stopTrace();
 *   console.log(await renderTrace(path)); // .../tmpXXXX.html
 * }
 * ```
 *
 * @module
 */

import { beginTrace, endTrace } from "./trace/_writer.ts";
import type { RenderTraceOptions } from "./trace/_view.ts";
export type { RenderTraceOptions } from "./trace/_view.ts";

/**
 * Options of {@linkcode startTrace}.
 *
 * @example Leave out waits shorter than 5 ms
 * ```ts
 * import { startTrace, stopTrace, type TraceOptions } from "@mp/multiprocessing";
 * const options: TraceOptions = { waitThresholdMs: 5 };
 * startTrace(await Deno.makeTempFile({ suffix: ".json" }), options);
 * stopTrace();
 * ```
 */
export interface TraceOptions {
  /** Waits (locks, queues, pipes, barriers, manager calls) shorter than this are left out (ms; default 1). */
  waitThresholdMs?: number;
}

/**
 * Starts writing a trace of this program to `path` (truncated): processes
 * started from now on, and pool workers, write their events to it as they
 * go, so a program that is killed leaves a trace that still opens. Same as
 * running the program with `MP_TRACE=path`.
 *
 * @param path Where the Chrome Trace Event Format (JSON) file goes.
 * @param options The wait threshold.
 * @throws {Error} When `path` cannot be written (named, with the fix), or a
 *   trace is being written already.
 *
 * @example Trace part of a program
 * ```ts
 * import { startTrace, stopTrace } from "@mp/multiprocessing";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * startTrace(path);
 * // ... pools, processes, locks ...
 * console.log(stopTrace() === path); // true
 * ```
 */
export function startTrace(path: string | URL, options?: TraceOptions): void {
  const p = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  if (typeof p !== "string" || p === "") {
    throw new TypeError(
      `startTrace(path): path must be a file path or file: URL, got ${
        p === "" ? '""' : typeof p
      }`,
    );
  }
  beginTrace(p, options);
}

/**
 * Stops the trace, writes out what is buffered, and closes the file (which
 * is then plain JSON). Processes still running stop writing to it.
 *
 * @returns The trace's path, or undefined when no trace was being written.
 *
 * @example
 * ```ts
 * import { stopTrace } from "@mp/multiprocessing";
 * console.log(stopTrace()); // undefined: no trace was started
 * ```
 */
export function stopTrace(): string | undefined {
  return endTrace();
}

/**
 * Draws the trace at `path` as a self-contained HTML page (inline SVG, no
 * network) beside it (`out.json` → `out.html`), and returns the page's path.
 * A trace cut short (the program was killed) draws too.
 *
 * @param path A trace written with `MP_TRACE` or {@linkcode startTrace}.
 * @param options Where the page goes, its width and title.
 * @returns The path of the page.
 * @throws {Deno.errors.NotFound} When there is no file at `path`.
 * @throws {SyntaxError} When the file is not a trace.
 *
 * @example Draw a trace
 * ```ts ignore
 * import { renderTrace } from "@mp/multiprocessing";
 * console.log(await renderTrace("out.json")); // out.html
 * ```
 */
export async function renderTrace(
  path: string | URL,
  options: RenderTraceOptions = {},
): Promise<string> {
  // Loaded when first used: every child loads the whole module graph of its
  // target's module, and the viewer would be 16 KB of it for nothing.
  const { drawTrace } = await import("./trace/_view.ts");
  return drawTrace(path, options);
}
