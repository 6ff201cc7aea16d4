/**
 * Every kind a manager's server can create, by its factory's name, and
 * the kind of a user's class.
 *
 * @module
 */

import { array, dict, list, namespace, value } from "./_containers.ts";
import type { Kind, Method } from "./_kind.ts";
import { lockKind, semaphoreKind } from "./_locks.ts";
import { queue } from "./_queue.ts";
import { barrier, condition, event } from "./_sync.ts";

/** Every kind a manager can create, by the name its factory uses. */
export const KINDS: Record<string, Kind> = {
  list,
  dict,
  Namespace: namespace,
  Value: value,
  Array: array,
  Queue: queue,
  Lock: lockKind(false, "Lock"),
  RLock: lockKind(true, "RLock"),
  Semaphore: semaphoreKind(false),
  BoundedSemaphore: semaphoreKind(true),
  Event: event,
  Condition: condition,
  Barrier: barrier,
};

// ---------------------------------------------------------------- a user's class

/**
 * The public methods of `cls` (Python's default `exposed`): every function
 * on its prototype chain below `Object.prototype`, but the constructor,
 * accessors and names that begin with `_`.
 */
export function publicMethods(cls: { prototype: unknown }): string[] {
  const names = new Set<string>();
  for (
    let p = cls.prototype as object | null;
    p !== null && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name === "constructor" || name.startsWith("_")) continue;
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (d && typeof d.value === "function") names.add(name);
    }
  }
  return [...names];
}

/**
 * The kind of a user's class served by a manager (`manager.create(Cls)`,
 * `Manager.register(typeid, Cls)`): objects made with `new cls(...args)`,
 * whose public methods proxies may call (an async one's promise is waited
 * for, as a parked call's).
 */
export function classKind(
  cls: new (...args: unknown[]) => object,
): Kind {
  const methods: Record<string, Method> = {};
  for (const name of publicMethods(cls)) {
    methods[name] = (
      self: Record<string, (...a: unknown[]) => unknown>,
      args,
    ) => self[name](...args);
  }
  return { create: (args) => new cls(...args), methods };
}
