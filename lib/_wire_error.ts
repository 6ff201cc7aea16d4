/**
 * Errors as they cross a process boundary: one wire form for every channel
 * (a child's failure to start, pool results, manager replies), and one way
 * back to an error of the same class.
 *
 * @module
 */

import * as errors from "./errors.ts";

/** An error (or any thrown value) as it travels. */
export interface WireError {
  /** True when an Error was thrown (then name, message, stack hold it). */
  isError: boolean;
  name: string;
  message: string;
  stack: string;
  /** The thrown value itself, when it was not an Error and could be cloned. */
  value?: unknown;
  /** Extra own properties of the error that could be cloned (`code`, ...). */
  props?: Record<string, unknown>;
}

/** Turns a thrown value into its wire form. */
export function serializeError(e: unknown): WireError {
  if (e instanceof Error) {
    const out: WireError = {
      isError: true,
      name: String(e.name),
      message: String(e.message),
      stack: e.stack ?? `${e.name}: ${e.message}`,
    };
    for (const key of Object.keys(e)) {
      if (key === "name" || key === "message" || key === "stack") continue;
      try {
        const v = structuredClone(
          (e as unknown as Record<string, unknown>)[key],
        );
        (out.props ??= {})[key] = v;
      } catch {
        // Not cloneable: left out.
      }
    }
    return out;
  }
  let value: unknown;
  let cloneable = true;
  try {
    value = structuredClone(e);
  } catch {
    cloneable = false;
  }
  const text = String(e);
  return cloneable
    ? { isError: false, name: "", message: text, stack: text, value }
    : { isError: false, name: "", message: text, stack: text, value: text };
}

const BUILTIN: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Rebuilds a worker's error in the parent: the same class when it is a
 * built-in error or one of this module's, else an `Error` with the same
 * `name`; message, stack and cloneable extra properties are the child's.
 * A thrown non-Error value comes back as itself.
 */
/**
 * `unknownClass` makes the error for a class this process does not know
 * (by default an `Error` with the same name).
 */
export function rebuildError(
  w: WireError,
  unknownClass?: (w: WireError) => Error,
): unknown {
  if (!w.isError) return w.value;
  let err: Error;
  const builtin = Object.hasOwn(BUILTIN, w.name) ? BUILTIN[w.name] : undefined;
  const cls = (errors as Record<string, unknown>)[w.name];
  if (builtin) err = new builtin(w.message);
  else if (typeof cls === "function" && cls.prototype instanceof Error) {
    // One of this module's classes (whatever its constructor takes).
    err = new Error(w.message);
    Object.setPrototypeOf(err, cls.prototype);
    err.name = w.name;
  } else if (unknownClass) return unknownClass(w);
  else {
    err = new Error(w.message);
    err.name = w.name;
  }
  if (w.props) Object.assign(err, w.props);
  err.stack = w.stack;
  return err;
}
