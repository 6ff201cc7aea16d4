/**
 * What the encoder refuses, and how it says so: {@linkcode EncodeError}
 * and the reason for each kind of value a queue cannot carry, with where
 * it can go instead.
 *
 * @module
 */

import { isProxy } from "node:util/types";

/**
 * A shared object (one with `[reduceSymbol]`) that is not shared memory may
 * define this as the reason a queue cannot carry it, and where it can go
 * instead: the codec's error then says it (by default: "it holds shared
 * memory, ...").
 */
export const notQueueable: unique symbol = Symbol.for("mp.notQueueable");

/** Thrown when a value cannot be encoded; names where in the value the culprit sits. */
export class EncodeError extends TypeError {
  /**
   * True when `postMessage` can still carry the value faithfully (shared
   * memory and objects, a Blob, a MessagePort, a CryptoKey, ...), false when
   * structured clone refuses it too (or, for a URL, Headers, ... nested in
   * it, would silently make it `{}`).
   */
  readonly portable: boolean;
  /** Builds the message from the culprit's path and type. */
  constructor(path: string, type: string, why: string, portable = false) {
    super(`${path} is ${type}: ${why}`);
    this.name = "DataCloneError";
    this.portable = portable;
  }
}

/** How an {@linkcode EncodeError} names the culprit: `a Map`, `a function (f)`. */
export function describe(v: unknown): string {
  if (typeof v === "function") {
    return `a function${v.name ? ` (${v.name})` : ""}`;
  }
  if (typeof v === "symbol") return `a symbol (${String(v)})`;
  if (v === null || typeof v !== "object") return `a ${typeof v}`;
  if (isProxy(v)) return "a Proxy";
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name ? `a ${name}` : "an object";
}

export const CLONE_WHY =
  "it cannot be cloned to another process (only structured-cloneable values can be sent to one)";
export const SHARED_WHY =
  "it holds shared memory, which a queue cannot carry (a queue copies bytes); " +
  "pass shared objects to a child in its Process args instead";
export const BLOB_WHY =
  "a queue copies values synchronously and a Blob's bytes can only be read asynchronously; " +
  "send `new Uint8Array(await blob.arrayBuffer())` instead (with its type, or a File's name, if needed)";
export const DETACHED_WHY =
  "it is (or views) a detached ArrayBuffer, transferred away: there is nothing left to copy";
export const RESIZABLE_WHY =
  "it views a resizable ArrayBuffer, whose length tracking a queue cannot reproduce; " +
  "send a fixed copy (view.slice()) or the buffer itself";

/** What `postMessage` carries faithfully (see {@linkcode EncodeError.portable}). */
const PORTABLE = new Set([SHARED_WHY, BLOB_WHY, RESIZABLE_WHY]);
const HOST_PREFIX = "a queue cannot carry ";

/** Whether a value refused for `why` could still go by `postMessage`. */
export function isPortable(why: string): boolean {
  return PORTABLE.has(why) || why.startsWith(HOST_PREFIX);
}

export function hostWhy(o: object): string {
  const isA = (name: string) => {
    const c = (globalThis as Record<string, unknown>)[name];
    return typeof c === "function" && o instanceof c;
  };
  if (isA("MessagePort")) {
    return `${HOST_PREFIX}a port; pass it to a child in its Process args (or send it through a Pipe) instead`;
  }
  if (isA("CryptoKey")) {
    return `${HOST_PREFIX}a CryptoKey; send \`await crypto.subtle.exportKey(...)\` and import it on the other side`;
  }
  return `${HOST_PREFIX}this platform object (only postMessage can); send the data it holds instead`;
}

/**
 * Whether structured clone takes object `o` (not plain, of no kind the
 * codec knows) as an ordinary object rather than refusing it (Promise,
 * WeakMap, iterators, Intl objects, ...). Asked of `structuredClone`
 * itself (only for such rare objects), not of `node:v8`'s serializer:
 * loading `node:v8` would cost every child ~2 ms at start-up.
 * When it refuses, `o` is blamed only if none of its own values is what
 * it refused (then the codec meets that value and names it).
 */
export function clonesAsObject(o: object): boolean {
  try {
    structuredClone(o);
    return true;
  } catch {
    // o itself, or something in it
  }
  for (const k of Object.keys(o)) {
    const v = (o as Record<string, unknown>)[k];
    if (typeof v === "function" || typeof v === "symbol") return true;
    if (v !== null && typeof v === "object") {
      try {
        structuredClone(v);
      } catch {
        return true;
      }
    }
  }
  return false;
}
