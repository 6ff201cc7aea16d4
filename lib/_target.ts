/**
 * Finding a child's code by reference (Python's spawn: pickle by name,
 * re-import the module). Used by Process and Pool alike.
 *
 * @module
 */

import { TargetNotExportedError } from "./errors.ts";

const LIB_DIR = new URL(".", import.meta.url).href;
const MOD_URL = new URL("../mod.ts", import.meta.url).href;

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
        fn === null ? "null" : typeof fn
      }`,
    );
  }
  const name = fn.name;
  if (!name || !/^[\p{L}_$][\p{L}\p{N}_$]*$/u.test(name)) {
    throw new TargetNotExportedError(url, name, "it has no usable name");
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
  let ns = loaded.get(ref.module);
  if (!ns) {
    ns = await import(ref.module) as Record<string, unknown>;
    loaded.set(ref.module, ns);
  }
  if (!(ref.name in ns)) {
    throw new TargetNotExportedError(ref.module, ref.name);
  }
  return ns[ref.name];
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
