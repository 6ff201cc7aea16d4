/**
 * What kind of value a walk over a message meets: the few checks that
 * `reduction.ts` (shared objects inside a child's arguments) and the
 * manager's proxy walks share.
 *
 * @module
 */

/** Whether `v` is a plain object (`{}` or `Object.create(null)`). */
export function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether structured clone copies `v` as a unit, so that a walk looking for
 * shared objects or proxies need not look inside it: buffers and views,
 * dates, regexps, errors, boxed primitives, ports.
 */
export function isOpaque(v: object): boolean {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer ||
    v instanceof SharedArrayBuffer || v instanceof Date ||
    v instanceof RegExp || v instanceof Error || v instanceof Boolean ||
    v instanceof Number || v instanceof String || v instanceof BigInt ||
    v instanceof MessagePort;
}

/**
 * Deno marks the platform objects whose clone it refuses (URL, Headers,
 * Request, Response, streams, ...) with this symbol on their prototype;
 * `structuredClone` checks it only at the top (nested ones become `{}`),
 * so the codec and the walk of a child's arguments check it everywhere.
 */
let platform:
  | { mark: symbol | undefined; classes: (new (...args: never[]) => object)[] }
  | undefined;

/**
 * True for a platform object structured clone refuses. Looked up on first
 * need: touching `Request`, `Response` or the streams loads their code,
 * which every child would pay at start-up.
 */
export function isRefusedPlatformObject(o: object): boolean {
  platform ??= {
    mark: Object.getOwnPropertySymbols(URL.prototype).find((s) =>
      s.description === "[[NotSerializable]]"
    ),
    // The same classes, for a runtime without the mark.
    classes: [
      "URL",
      "URLSearchParams",
      "Headers",
      "Request",
      "Response",
      "ReadableStream",
      "WritableStream",
      "TransformStream",
    ].flatMap((name) => {
      const c = (globalThis as Record<string, unknown>)[name];
      return typeof c === "function" ? [c as new () => object] : [];
    }),
  };
  const { mark, classes } = platform;
  return (mark !== undefined &&
    (o as Record<symbol, unknown>)[mark] === true) ||
    classes.some((c) => o instanceof c);
}

/** Why a refused platform object cannot be sent, and what to send instead. */
export function platformWhy(o: object): string {
  const has = (name: string) => {
    const c = (globalThis as Record<string, unknown>)[name];
    return typeof c === "function" && o instanceof c;
  };
  const fix = has("URL")
    ? "send url.href and rebuild it with new URL(href)"
    : has("URLSearchParams")
    ? "send params.toString() and rebuild it with new URLSearchParams(string)"
    : has("Headers")
    ? "send [...headers] and rebuild it with new Headers(entries)"
    : has("Request") || has("Response")
    ? "send the parts you need (url, status, [...headers]) and the body as bytes (await r.arrayBuffer())"
    : "read the data out of it (a stream's chunks, ...) and send that";
  return `structured clone cannot copy this platform object (structuredClone throws DataCloneError for it); ${fix}`;
}

/** Why a Proxy cannot be sent, and what to send instead. */
export const PROXY_WHY: string =
  "structured clone cannot copy a Proxy (structuredClone throws DataCloneError for it); " +
  "send a plain copy of the data it stands for";

/** True for a promise or any other thenable (what `await` would wait on). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") &&
    typeof (v as PromiseLike<unknown>).then === "function";
}
