/**
 * Finding a child's code by reference (Python's spawn: pickle by name,
 * re-import the module). Used by Process and Pool alike.
 *
 * @module
 */

import { ClassNotExportedError, TargetNotExportedError } from "../errors.ts";
import { show } from "../_show.ts";

/** The library's own folder (lib/): frames in it are not a caller's. */
const LIB_DIR = new URL("..", import.meta.url).href;
const MOD_URL = new URL("../../mod.ts", import.meta.url).href;

/** A target as it travels: the module to import and the export to call. */
export interface TargetRef {
  /** URL of the module that exports the target. */
  module: string;
  /** The exported name. */
  name: string;
}

/** The URL of the first caller on the stack outside this library. */
export function callerModule(): string | undefined {
  const stack = new Error().stack ?? "";
  for (const line of stack.split("\n").slice(1)) {
    const m = line.match(/\((.+?):\d+:\d+\)\s*$/) ??
      line.match(/^\s*at (?:async )?(.+?):\d+:\d+\s*$/);
    if (!m) continue;
    const url = m[1];
    if (url.startsWith(LIB_DIR) || url === MOD_URL) continue;
    if (url.startsWith("ext:") || url.startsWith("node:")) continue;
    return url;
  }
  return undefined;
}

/** Normalizes a `module` option (URL, `import.meta.url`, path) to a URL string. */
export function moduleUrl(module: string | URL | undefined): string {
  if (module === undefined) {
    const found = callerModule();
    if (!found) {
      throw new TypeError(
        "cannot tell which module defines the target: pass `module: import.meta.url`",
      );
    }
    return found;
  }
  if (module instanceof URL) return module.href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(module)) return module;
  return new URL(module, `file://${Deno.cwd()}/`).href;
}

/** Builds the reference for `fn` in `module`, failing fast on what cannot work. */
export function targetRef(
  fn: unknown,
  module: string | URL | undefined,
): TargetRef {
  const url = moduleUrl(module);
  if (typeof fn !== "function") {
    throw new TypeError(
      `target must be an exported function (or Process subclass), got ${
        show(fn)
      }`,
    );
  }
  const name = fn.name;
  if (!name || !/^[\p{L}_$][\p{L}\p{N}_$]*$/u.test(name)) {
    throw new TargetNotExportedError(
      url,
      name,
      name ? "it has no usable name" : undefined,
    );
  }
  return { module: url, name };
}

const loaded = new Map<string, Record<string, unknown>>();

/** Records a module namespace that the child entry imported statically. */
export function registerModule(url: string, ns: Record<string, unknown>): void {
  loaded.set(url, ns);
}

/** The target when its module is already loaded here (no await), else undefined. */
export function resolveLoadedRef(ref: TargetRef): unknown {
  return loaded.get(ref.module)?.[ref.name];
}

/**
 * Looks a target up in this process. Modules the child entry imported
 * statically are found without any permission; others are imported on demand
 * (which needs read permission for local files).
 */
export async function resolveRef(ref: TargetRef): Promise<unknown> {
  const ns = await namespace(ref.module);
  if (!(ref.name in ns)) {
    throw new TargetNotExportedError(
      ref.module,
      ref.name,
      undefined,
      await importedFrom(ref.module, ref.name),
    );
  }
  return ns[ref.name];
}

/** A class a manager can serve: constructible with `new`. */
export type ServedClass = new (...args: never[]) => object;

/** Whether `v` can be made with `new` (a class, or a function with a prototype). */
export function isClass(v: unknown): v is ServedClass {
  return typeof v === "function" &&
    typeof (v as { prototype?: unknown }).prototype === "object";
}

/** The reference for class `cls` exported from `module` (a URL); a class without a usable name fails now. */
export function classRefOf(cls: ServedClass, module: string): TargetRef {
  const name = cls.name;
  if (!name || !/^[\p{L}_$][\p{L}\p{N}_$]*$/u.test(name)) {
    throw new ClassNotExportedError(module, name, "it has no usable name");
  }
  return { module, name };
}

/**
 * Finds a class by reference, as a manager's server does (importing its
 * module); `expected`: the class the caller means, which must be the very
 * export found (an inline class, or one imported from elsewhere, is not).
 */
export async function resolveClass(
  ref: TargetRef,
  expected?: unknown,
): Promise<ServedClass> {
  let ns = loaded.get(ref.module);
  if (!ns) {
    ns = await import(ref.module) as Record<string, unknown>;
    loaded.set(ref.module, ns);
  }
  const found = Object.hasOwn(ns, ref.name) ? ns[ref.name] : undefined;
  if (found === undefined) {
    throw new ClassNotExportedError(ref.module, ref.name);
  }
  if (expected !== undefined && found !== expected) {
    throw new ClassNotExportedError(
      ref.module,
      ref.name,
      "that module exports another value by that name",
    );
  }
  if (!isClass(found)) {
    throw new TypeError(
      `'${ref.name}' exported from ${ref.module} is not a class (a ${typeof found}): ` +
        "a manager makes its objects with `new`: pass a class",
    );
  }
  return found;
}

/**
 * The reference of `fn` in the first of `candidates` (module URLs) that
 * exports it under its own name, as a child will look it up; else
 * `TargetNotExportedError` naming them.
 */
export async function findExported(
  fn: unknown,
  candidates: string[],
): Promise<TargetRef> {
  let first: TargetRef | undefined;
  for (const url of candidates) {
    const ref = targetRef(fn, url);
    first ??= ref;
    let found: unknown;
    try {
      found = await resolveRef(ref);
    } catch (e) {
      if (e instanceof TargetNotExportedError) continue;
      throw e;
    }
    if (found === fn) return ref;
  }
  throw new TargetNotExportedError(
    first!.module,
    first!.name,
    candidates.length > 1
      ? `nor from ${candidates.slice(1).join(", ")}`
      : undefined,
    await importedFrom(first!.module, first!.name),
  );
}

/**
 * The module among `module`'s static imports that exports a function
 * `name`, when one does and this process may read `module`'s source: for
 * the error of a target imported from elsewhere. Only modules `module`
 * imports are looked at, so nothing new is evaluated.
 */
export async function importedFrom(
  module: string,
  name: string,
): Promise<string | undefined> {
  if (!module.startsWith("file:")) return undefined;
  const path = new URL(module);
  // Never prompt: a source we may not read gives no hint.
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    return undefined;
  }
  let source: string;
  try {
    source = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  const imports = source.matchAll(
    /(?:^|[;\s])import\s+(?!type\s)[^'"`;]*?\bfrom\s*(["'])([^"']+)\1/g,
  );
  for (const [, , spec] of imports) {
    // Relative or full URLs only (bare specifiers go through an import map).
    if (!/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(spec)) continue;
    try {
      const url = new URL(spec, module).href;
      if (typeof (await namespace(url))[name] === "function") return url;
    } catch {
      // Not importable from here: no hint from it.
    }
  }
  return undefined;
}

async function namespace(url: string): Promise<Record<string, unknown>> {
  let ns = loaded.get(url);
  if (!ns) {
    ns = await import(url) as Record<string, unknown>;
    loaded.set(url, ns);
  }
  return ns;
}

// Which export each class was found as: searched once per class (again only
// once more modules are loaded here).
const exportedCache = new WeakMap<
  object,
  { ref: TargetRef | undefined; modules: number }
>();

/**
 * Where `value` (a class, say) is exported from, among the modules loaded in
 * this process by {@linkcode registerModule} or {@linkcode resolveRef}: what
 * lets a user's error class travel by name, as targets do.
 */
export function exportedAs(value: object): TargetRef | undefined {
  const cached = exportedCache.get(value);
  if (cached && (cached.ref || cached.modules === loaded.size)) {
    return cached.ref;
  }
  let ref: TargetRef | undefined;
  search: for (const [module, ns] of loaded) {
    for (const name of Object.keys(ns)) {
      let v: unknown;
      try {
        v = ns[name];
      } catch {
        continue; // not initialized yet (an import cycle)
      }
      if (v === value) {
        ref = { module, name };
        break search;
      }
    }
  }
  exportedCache.set(value, { ref, modules: loaded.size });
  return ref;
}
