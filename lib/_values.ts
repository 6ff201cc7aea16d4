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
