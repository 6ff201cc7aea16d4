/**
 * What a manager's server does for each request: a table from the
 * request's op (`_wire.ts`) to its handler.
 *
 * @module
 */

import {
  OP_ADOPT,
  OP_CALL,
  OP_CALL_REFS,
  OP_CREATE,
  OP_DEBUG,
  OP_DECREF,
  OP_GET,
  OP_HELLO,
  OP_LEND,
  OP_REGISTER,
  OP_RELEASE,
  OP_SHUTDOWN,
  OP_TAKE,
} from "./_wire.ts";
import { ProcessError } from "../errors.ts";
import { resolveClass, type TargetRef } from "../process/_target.ts";
import type { Kind } from "./_kind.ts";
import { KINDS } from "./_kinds.ts";
import { type Client, LocalClient } from "./_clients.ts";
import { type ClassKind, noObject, type Server } from "./_server.ts";

/** A request's handler: `a`, `b`, `d` are the request's arguments. */
type Op = (s: Server, c: Client, a: unknown, b: unknown, d: unknown) => unknown;

/** Calls a method of an object (`refs`: its arguments hold references). */
function call(
  s: Server,
  c: Client,
  a: unknown,
  b: unknown,
  d: unknown,
  refs: boolean,
): unknown {
  const obj = s.objects.get(a as number);
  if (!obj) throw new ReferenceError(noObject(a));
  const methods = obj.methods;
  if (typeof b !== "string" || !Object.hasOwn(methods, b)) {
    throw new TypeError(noMethod(obj.kind, b, methods, s.classes));
  }
  if (!Array.isArray(d)) {
    throw new TypeError("the arguments of a call must be an array");
  }
  if (refs) {
    s.storeRefs(d);
    obj.hasRefs = true;
  }
  const result = methods[b](obj.value, d, c);
  if (result instanceof Promise) {
    return s.settle(obj, a as number, c, result);
  }
  return obj.hasRefs ? s.shareRefs(c, result) : result;
}

/** Creates an object of a built-in kind, a registered typeid or a class by reference. */
function create(
  s: Server,
  c: Client,
  a: unknown,
  b: unknown,
  d: unknown,
): unknown {
  const args = Array.isArray(b) ? b : [];
  if (Array.isArray(a)) {
    // A user's class by reference, [module, name]: this program's
    // processes only (a TCP client names a registered typeid).
    if (!c.local) {
      throw new TypeError(
        "a TCP client creates a user's class by its registered typeid: " +
          'client.create("Maths", ...args), after the serving program\'s ' +
          'Manager.register("Maths", Maths)',
      );
    }
    const ref = { module: String(a[0]), name: String(a[1]) };
    const known = s.classByRef(ref);
    if (known) return s.make(c, known, args, d === true);
    if (d === true) s.storeRefs(args);
    return loadClass(ref).then((cls) => {
      if (c.closed) return undefined;
      const kind = s.classByRef(ref) ?? s.addClass(ref, cls);
      return s.make(c, kind, args, false, d === true);
    });
  }
  const kind = typeof a === "string"
    ? Object.hasOwn(KINDS, a) ? a : s.classes.get(a)?.registered && a
    : undefined;
  if (!kind) {
    const made = [...Object.keys(KINDS), ...s.registered()];
    throw new TypeError(
      `a manager cannot create a '${String(a)}'; it makes: ${
        made.join(", ")
      } (a class of yours: Manager.register("${
        typeof a === "string" && a ? a : "Name"
      }", Class) in the serving program, before Manager.start())`,
    );
  }
  return s.make(c, kind, args, d === true);
}

/** Names an object (the name holds a reference). */
function register(
  s: Server,
  _c: Client,
  a: unknown,
  b: unknown,
): unknown {
  if (typeof a !== "string" || a === "") {
    throw new TypeError(
      `register(name, proxy): name must be a non-empty string, got ${typeof a}`,
    );
  }
  if (!s.objects.has(b as number)) {
    throw new ReferenceError(`register('${a}'): ${noObject(b)}`);
  }
  // The name holds a reference; the object it named before loses one.
  s.incref(null, b);
  const before = s.names.get(a);
  s.names.set(a, b as number);
  if (before !== undefined) s.decref(before);
  return undefined;
}

/** The object registered under a name; the caller holds a reference. */
function get(
  s: Server,
  c: Client,
  a: unknown,
): unknown {
  const oid = typeof a === "string" ? s.names.get(a) : undefined;
  if (oid === undefined) {
    const known = [...s.names.keys()];
    throw new ReferenceError(
      `no object is registered as '${String(a)}' on this manager; ${
        known.length
          ? `registered names: ${known.join(", ")}`
          : "nothing is registered (the serving program calls register(name, proxy))"
      }`,
    );
  }
  return [oid, s.incref(c, oid).kind];
}

/** Drops one of the caller's references to each object. */
function decref(
  s: Server,
  c: Client,
  a: unknown,
): unknown {
  if (Array.isArray(a)) { for (const oid of a) s.release(c, oid); }
  return undefined;
}

/** Holds a reference for a proxy on its way to another process. */
function lend(
  s: Server,
  _c: Client,
  a: unknown,
  b: unknown,
): unknown {
  if (typeof b !== "string") throw new TypeError("lend: bad token");
  const t = s.tokens.get(b);
  if (t && !t.lent) {
    // Taken already (the taker counted itself): nothing to hold.
    s.tokens.delete(b);
    return undefined;
  }
  if (t) throw new TypeError("lend: token used twice");
  s.incref(null, a);
  s.tokens.set(b, { oid: a as number, lent: true, at: Date.now() });
  return undefined;
}

/** A proxy arrived: the caller holds a reference, the lent one goes. */
function take(
  s: Server,
  c: Client,
  a: unknown,
  b: unknown,
): unknown {
  s.incref(c, a);
  if (typeof b !== "string") return undefined;
  const t = s.tokens.get(b);
  if (t?.lent) {
    s.tokens.delete(b);
    s.decref(t.oid);
  } else {
    // The lend is still on its way (another channel): it holds nothing
    // when it comes.
    s.tokens.set(b, {
      oid: a as number,
      lent: false,
      at: Date.now(),
    });
  }
  return undefined;
}

/** Every object with its reference count. */
function debug(
  s: Server,
): unknown {
  return s.debugInfo();
}

/** Who the server is. */
function hello(
  s: Server,
): unknown {
  return { serverId: s.config.serverId };
}

/** Serves a new local channel. */
function adopt(
  s: Server,
  c: Client,
  a: unknown,
  b: unknown,
): unknown {
  if (!c.local) throw new TypeError("adopt is local only");
  s.adopt(new LocalClient(a as MessagePort, b as SharedArrayBuffer));
  return undefined;
}

/** Drops this local channel. */
function release(
  s: Server,
  c: Client,
): unknown {
  if (c instanceof LocalClient) queueMicrotask(() => s.drop(c));
  return undefined;
}

/** Stops the server (its owner only). */
function shutdown(
  s: Server,
  c: Client,
): unknown {
  if (!c.local) {
    throw new ProcessError(
      "only the program that started the manager can shut it down",
    );
  }
  queueMicrotask(() => s.stop());
  return undefined;
}

/** The server's answer to each request, by its op. */
export const OPS: Record<number, Op | undefined> = {
  [OP_CALL]: (s, c, a, b, d) => call(s, c, a, b, d, false),
  [OP_CALL_REFS]: (s, c, a, b, d) => call(s, c, a, b, d, true),
  [OP_CREATE]: create,
  [OP_REGISTER]: register,
  [OP_GET]: get,
  [OP_DECREF]: decref,
  [OP_LEND]: lend,
  [OP_TAKE]: take,
  [OP_DEBUG]: debug,
  [OP_HELLO]: hello,
  [OP_ADOPT]: adopt,
  [OP_RELEASE]: release,
  [OP_SHUTDOWN]: shutdown,
};

const IMPORTING = Symbol.for("mp.importing");
/** Class modules being imported now. */
let importing = 0;

/**
 * Imports a class's module here, marked as a child's import is (see
 * `process/_prelude.ts`): a module whose top level starts a manager or a process
 * (no `if (import.meta.main)` guard) fails with a `ProcessError` saying so,
 * instead of each server starting another, which would import it again.
 */
export async function loadClass(ref: TargetRef): Promise<unknown> {
  const g = globalThis as Record<symbol, unknown>;
  importing++;
  g[IMPORTING] = true;
  try {
    return await resolveClass(ref);
  } finally {
    if (--importing === 0) delete g[IMPORTING];
  }
}

/** Why a proxy of `kind` cannot call `method`, and what it can call. */
function noMethod(
  kind: string,
  method: unknown,
  methods: Kind["methods"],
  classes: Map<string, ClassKind>,
): string {
  const m = typeof method === "string" ? `'${method}'` : String(method);
  const names = Object.keys(methods);
  const has = names.length
    ? `its methods are: ${names.join(", ")}`
    : "it has no public methods";
  const cls = classes.get(kind);
  if (!cls) return `a ${kind} proxy has no method ${m}; ${has}`;
  return `class ${cls.ref.name} (served as '${kind}') has no method ${m}; ${has}. ` +
    "A manager serves a class's public methods: those of its prototype " +
    "(not fields, accessors, or names beginning with _); add the method to the class " +
    "(reach other state through a method)";
}
