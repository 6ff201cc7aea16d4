/**
 * What every pool (the local `Pool`, the Redis pool) checks of its
 * arguments, and how it cuts a map into chunks.
 *
 * @module
 */

import { show, showNumber } from "../_show.ts";
import { checkKeys } from "../_options.ts";

/** Throws unless `chunksize` is undefined or a positive integer. */
export function checkChunksize(chunksize: unknown): void {
  if (
    chunksize !== undefined &&
    (typeof chunksize !== "number" || !Number.isInteger(chunksize) ||
      chunksize < 1)
  ) {
    throw new RangeError(
      `chunksize must be a positive integer (or undefined for the default), got ${
        showNumber(chunksize)
      }`,
    );
  }
}

/** Throws unless `fn` is a function. */
export function checkFn(fn: unknown, what: string): void {
  if (typeof fn !== "function") {
    throw new TypeError(
      `${what} must be an exported function, got ${show(fn)}`,
    );
  }
}

/**
 * Throws unless `callbacks` is an object of `callback` / `errorCallback`
 * functions: a wrong one would otherwise throw, uncaught, only when the
 * result comes.
 */
export function checkCallbacks(callbacks: unknown): void {
  if (callbacks === null || typeof callbacks !== "object") {
    throw new TypeError(
      `callbacks must be an object like { callback, errorCallback }, got ${
        show(callbacks)
      }`,
    );
  }
  const names = ["callback", "errorCallback"] as const;
  checkKeys(callbacks, names, "callbacks key");
  for (const name of names) {
    const f = (callbacks as Record<string, unknown>)[name];
    if (f !== undefined && typeof f !== "function") {
      throw new TypeError(
        `${name} must be a function or undefined, got ${show(f)}`,
      );
    }
  }
}

/** Throws unless `items` is an iterable or async iterable. */
export function checkItems(items: unknown, what: string): void {
  if (
    items === null || items === undefined ||
    (typeof (items as Iterable<unknown>)[Symbol.iterator] !== "function" &&
      typeof (items as AsyncIterable<unknown>)[Symbol.asyncIterator] !==
        "function")
  ) {
    throw new TypeError(
      `${what} must be an iterable or async iterable, got ${show(items)}`,
    );
  }
}

/** Throws unless every item of `argsList` is an array (starmap's `fn(...args)`). */
export function checkArgsLists(argsList: unknown[]): void {
  for (let i = 0; i < argsList.length; i++) {
    if (!Array.isArray(argsList[i])) {
      throw new TypeError(
        `argsList[${i}] is ${
          show(argsList[i])
        }, not an array of arguments: starmap calls fn(...args) for each; write starmap(fn, [[a, b], ...])`,
      );
    }
  }
}

/**
 * Cuts `list` into chunks of `chunksize` items; without one, Python's
 * default: about four chunks per worker.
 */
export function splitChunks(
  list: unknown[],
  chunksize: number | undefined,
  processes: number,
): { size: number; chunks: unknown[][] } {
  const size = chunksize ?? (Math.ceil(list.length / (processes * 4)) || 1);
  const chunks: unknown[][] = [];
  for (let i = 0; i < list.length; i += size) {
    chunks.push(list.slice(i, i + size));
  }
  return { size, chunks };
}
