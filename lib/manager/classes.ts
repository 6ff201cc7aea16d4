/**
 * Users' classes a manager serves: the registry of `Manager.register` and
 * how a class is named to the server.
 *
 * @module
 */

import {
  classRefOf,
  isClass,
  moduleUrl,
  type TargetRef,
} from "../process/_target.ts";

/**
 * Options of {@linkcode Manager.register} (the static one).
 *
 * @example
 * ```ts ignore
 * import { Manager, type RegisterOptions } from "@mp/multiprocessing";
 * import { Maths } from "./maths.ts";
 * const options: RegisterOptions = { module: new URL("./maths.ts", import.meta.url) };
 * Manager.register("Maths", Maths, options);
 * ```
 */
export interface RegisterOptions {
  /**
   * The module that exports the class (a URL, `import.meta.url`, or a
   * path); default: the module calling `register`.
   */
  module?: string | URL;
}

/**
 * A class a manager can serve (`manager.create(Cls)`,
 * `Manager.register(typeid, Cls)`): anything made with `new`.
 *
 * @example
 * ```ts
 * import type { ManagedClass } from "@mp/multiprocessing";
 * class Maths {
 *   add(a: number, b: number): number {
 *     return a + b;
 *   }
 * }
 * const served: ManagedClass = Maths;
 * console.log(served.name); // Maths
 * ```
 */
export type ManagedClass = new (...args: never[]) => object;

/** Users' classes registered with `Manager.register`, by typeid. */
export const registry = new Map<
  string,
  { cls: ManagedClass; ref: TargetRef }
>();
/** The module each class was last found in (so a create need not look again). */
export const verified = new WeakMap<ManagedClass, string>();

/** The reference a class is served by: as registered, else its export from `module`. */
export function classRef(cls: unknown, what: string): TargetRef {
  if (!isClass(cls)) {
    throw new TypeError(
      `${what}: expected a class (made with \`new\`), got ${
        cls === null
          ? "null"
          : typeof cls === "function"
          ? `the function '${
            cls.name || "anonymous"
          }' (an arrow function or method, which \`new\` cannot make)`
          : typeof cls
      }; pass an exported class: \`export class Maths { ... }\``,
    );
  }
  for (const r of registry.values()) if (r.cls === cls) return r.ref;
  return classRefOf(cls, moduleUrl(undefined));
}

/** The typeid `cls` was registered by, when it was. */
export function typeidOf(cls: unknown): string | undefined {
  for (const [typeid, r] of registry) if (r.cls === cls) return typeid;
  return undefined;
}
