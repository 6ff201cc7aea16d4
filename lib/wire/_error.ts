/**
 * Errors as they cross a process boundary: one wire form for every channel
 * (a child's failure to start, pool results, manager replies), and one way
 * back to an error of the same class.
 *
 * @module
 */

import * as errors from "../errors.ts";
import {
  exportedAs,
  resolveLoadedRef,
  resolveRef,
  type TargetRef,
} from "../process/_target.ts";
import { settlesWithin } from "../shm/_wait.ts";

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
  /** The user's class, when the sender found it exported (by name, as targets). */
  cls?: TargetRef;
  /** The error's `cause`, in the same form. */
  cause?: WireError;
}

/** How deep a chain of causes travels. */
const MAX_CAUSES = 8;

/** Turns a thrown value into its wire form. */
export function serializeError(e: unknown, depth = 0): WireError {
  if (e instanceof Error) {
    const out: WireError = {
      isError: true,
      name: String(e.name),
      message: String(e.message),
      stack: e.stack ?? `${e.name}: ${e.message}`,
    };
    const cls = userClass(e);
    if (cls) out.cls = cls;
    if (Object.hasOwn(e, "cause") && depth < MAX_CAUSES) {
      out.cause = serializeError(e.cause, depth + 1);
    }
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

/**
 * `w` as a {@linkcode WireError}, whatever a peer sent (a TCP server may be
 * anything): fields of the wrong type become defaults, a bad `cls` goes.
 */
export function wireErrorOf(w: unknown, depth = 0): WireError {
  const e = (w && typeof w === "object" ? w : {}) as Partial<WireError>;
  const out: WireError = {
    isError: e.isError !== false,
    name: typeof e.name === "string" ? e.name : "Error",
    message: typeof e.message === "string" ? e.message : String(w),
    stack: typeof e.stack === "string" ? e.stack : "",
  };
  if ("value" in e) out.value = e.value;
  if (e.props && typeof e.props === "object") out.props = e.props;
  const c = e.cls as Partial<TargetRef> | undefined;
  if (c && typeof c.module === "string" && typeof c.name === "string") {
    out.cls = { module: c.module, name: c.name };
  }
  if (e.cause !== undefined && depth < MAX_CAUSES) {
    out.cause = wireErrorOf(e.cause, depth + 1);
  }
  return out;
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
const KNOWN = new Set<unknown>([
  ...Object.values(BUILTIN),
  ...Object.values(errors),
]);

/**
 * The nearest class of `e` (its own, else a base class) that is exported
 * from a module loaded here, unless it is a built-in or one of ours (those
 * travel by name).
 */
function userClass(e: Error): TargetRef | undefined {
  let c: unknown = e.constructor;
  for (let i = 0; typeof c === "function" && !KNOWN.has(c) && i < 16; i++) {
    const ref = exportedAs(c);
    if (ref) return ref;
    c = Object.getPrototypeOf(c);
  }
  return undefined;
}

/** Classes looked up by "module#name": the class, or null (not an error class). */
const classes = new Map<string, (abstract new () => Error) | null>();

function keyOf(ref: TargetRef): string {
  return `${ref.module}#${ref.name}`;
}

function remember(ref: TargetRef, v: unknown): void {
  classes.set(
    keyOf(ref),
    typeof v === "function" && v.prototype instanceof Error
      ? v as abstract new () => Error
      : null,
  );
}

/** The class `ref` names when it is known here without an import. */
function knownClass(
  ref: TargetRef,
): (abstract new () => Error) | null | undefined {
  const key = keyOf(ref);
  if (!classes.has(key)) {
    const v = resolveLoadedRef(ref);
    if (v !== undefined) remember(ref, v);
  }
  return classes.get(key);
}

/** Longest wait for a module that names an error's class (then: as if unknown). */
export const CLASS_IMPORT_MS = 5_000;

/**
 * Calls `use` with {@linkcode rebuildError}'s error once the modules that
 * export its class (and its causes' classes) are imported here: at once
 * when nothing needs importing. An import that fails, or takes more than
 * `timeoutMs`, leaves that error as if its class were unknown.
 */
export function withRebuiltError(
  w: WireError,
  use: (error: unknown) => void,
  unknownClass?: (w: WireError) => Error,
  timeoutMs: number = CLASS_IMPORT_MS,
): void {
  const missing: TargetRef[] = [];
  for (let c: WireError | undefined = w; c; c = c.cause) {
    if (c.cls && knownClass(c.cls) === undefined) missing.push(c.cls);
  }
  if (missing.length === 0) return use(rebuildError(w, unknownClass));
  Promise.all(missing.map((ref) => {
    const loading = resolveRef(ref).then(
      (v) => remember(ref, v),
      () => remember(ref, null),
    );
    return settlesWithin(loading, timeoutMs);
  })).then(() => use(rebuildError(w, unknownClass)));
}

/**
 * Rebuilds a worker's error in the parent: its own class when the sender
 * found it exported and it is known here (see {@linkcode rebuildErrorAsync}),
 * the same class when it is a built-in error or one of this module's, else
 * an `Error` with the same `name`; message, stack, cause and cloneable
 * extra properties are the child's. A thrown non-Error value comes back as
 * itself. `unknownClass` makes the error for a class this process does not
 * know (by default an `Error` with the same name).
 */
export function rebuildError(
  w: WireError,
  unknownClass?: (w: WireError) => Error,
): unknown {
  if (!w.isError) return w.value;
  let err: Error;
  const builtin = Object.hasOwn(BUILTIN, w.name) ? BUILTIN[w.name] : undefined;
  const cls = (errors as Record<string, unknown>)[w.name];
  const own = w.cls && knownClass(w.cls);
  if (own) {
    // The user's class, without running its constructor (whatever it takes).
    err = new Error(w.message);
    Object.setPrototypeOf(err, own.prototype);
    if (err.name !== w.name) err.name = w.name;
  } else if (builtin) err = new builtin(w.message);
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
  if (w.cause) {
    // As `new Error(m, { cause })` has it: own, not enumerable.
    Object.defineProperty(err, "cause", {
      value: rebuildError(w.cause, unknownClass),
      writable: true,
      configurable: true,
    });
  }
  err.stack = w.stack;
  return err;
}
