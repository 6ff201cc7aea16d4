/**
 * The locks a manager serves: Lock, RLock, Semaphore, BoundedSemaphore,
 * owned per client; a client that goes releases what it held.
 *
 * @module
 */

import { ProcessError } from "../errors.ts";
import {
  type Caller,
  describe,
  firstLive,
  type Kind,
  park,
  type Waiter,
  waitOptions,
} from "./_kind.ts";

// ---------------------------------------------------------------- locks

export class ServerLock {
  owner: Caller | null = null;
  count = 0;
  waiters: Waiter<boolean>[] = [];
  releaseOnClose: (() => void) | null = null;
  constructor(readonly reentrant: boolean, readonly name: string) {}

  grant(c: Caller): void {
    this.owner = c;
    this.count = 1;
    // A client that leaves while holding the lock releases it.
    this.releaseOnClose = c.onClose(() => {
      if (this.owner === c) this.handOff();
    });
  }
  handOff(): void {
    this.releaseOnClose?.();
    this.releaseOnClose = null;
    this.owner = null;
    this.count = 0;
    const w = firstLive(this.waiters);
    if (w) {
      this.grant(w.caller);
      w.resolve(true);
    }
  }
}

export function acquire(l: ServerLock, args: unknown[], c: Caller): unknown {
  const o = waitOptions(args[0], "acquire()", "blocking");
  if (l.owner === null) {
    l.grant(c);
    return true;
  }
  if (l.reentrant && l.owner.id === c.id) {
    l.count++;
    return true;
  }
  if (!o.block || o.timeout === 0) return false;
  return park(l.waiters, c, o.timeout, (w) => w.resolve(false));
}

export function release(l: ServerLock, c: Caller): void {
  if (l.owner === null) {
    throw new ProcessError(
      `release() of an unlocked ${l.name}: acquire it first (or use \`await using _ = await lock.hold()\`)`,
    );
  }
  if (l.reentrant) {
    if (l.owner.id !== c.id) {
      throw new ProcessError(
        `release() of an ${l.name} held by another process: only its holder can release it`,
      );
    }
    if (--l.count > 0) return;
  }
  l.handOff();
}

export function lockKind(reentrant: boolean, name: string): Kind {
  return {
    create: () => new ServerLock(reentrant, name),
    methods: {
      acquire: (l: ServerLock, args, c) => acquire(l, args, c),
      release: (l: ServerLock, _a, c) => release(l, c),
      locked: (l: ServerLock) => l.owner !== null,
    },
  };
}

export class ServerSemaphore {
  waiters: Waiter<boolean>[] = [];
  constructor(public value: number, readonly bound: number | null) {}
}

export function semaphoreKind(bounded: boolean): Kind {
  const name = bounded ? "BoundedSemaphore" : "Semaphore";
  return {
    create: ([v]) => {
      const value = v ?? 1;
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
        throw new RangeError(
          `${name} value must be a non-negative integer, got ${
            describe(value)
          }`,
        );
      }
      return new ServerSemaphore(value, bounded ? value : null);
    },
    methods: {
      acquire: (s: ServerSemaphore, args, c) => {
        const o = waitOptions(args[0], "acquire()", "blocking");
        if (s.value > 0) {
          s.value--;
          return true;
        }
        if (!o.block || o.timeout === 0) return false;
        return park(s.waiters, c, o.timeout, (w) => w.resolve(false));
      },
      release: (s: ServerSemaphore, [n]) => {
        const times = n === undefined ? 1 : n;
        if (
          typeof times !== "number" || !Number.isInteger(times) || times < 1
        ) {
          throw new RangeError(
            `release(n): n must be a positive integer, got ${describe(times)}`,
          );
        }
        if (s.bound !== null && s.value + times > s.bound) {
          throw new ProcessError(
            `BoundedSemaphore released too many times (past its start value ${s.bound})`,
          );
        }
        for (let i = 0; i < times; i++) {
          const w = firstLive(s.waiters);
          if (w) w.resolve(true);
          else s.value++;
        }
      },
      getValue: (s: ServerSemaphore) => s.value,
    },
  };
}
