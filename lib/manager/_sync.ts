/**
 * Event, Condition and Barrier, as a manager serves them.
 *
 * @module
 */

import { BrokenBarrierError, ProcessError } from "../errors.ts";
import {
  type Caller,
  describe,
  firstLive,
  type Kind,
  park,
  type Waiter,
  waitOptions,
} from "./_kind.ts";
import { acquire, release, ServerLock } from "./_locks.ts";

// ---------------------------------------------------------------- Event

export class ServerEvent {
  flag = false;
  waiters: Waiter<boolean>[] = [];
}

export const event: Kind = {
  create: () => new ServerEvent(),
  methods: {
    set: (e: ServerEvent) => {
      e.flag = true;
      for (const w of [...e.waiters]) w.resolve(true);
    },
    clear: (e: ServerEvent) => void (e.flag = false),
    isSet: (e: ServerEvent) => e.flag,
    wait: (e: ServerEvent, [timeout], c) => {
      if (e.flag) return true;
      const o = waitOptions({ timeout }, "wait()");
      if (o.timeout === 0) return false;
      return park(e.waiters, c, o.timeout, (w) => w.resolve(false));
    },
  },
};

// ---------------------------------------------------------------- Condition

/**
 * A condition variable over a server lock (its own RLock, or a manager
 * Lock/RLock given to `manager.Condition(lock)`). `wait` releases the lock
 * wholly (an RLock's depth is kept), parks, then takes the lock again before
 * it answers, as Python's `threading.Condition.wait` does.
 */
export class ServerCondition {
  waiters: Waiter<boolean>[] = [];
  constructor(readonly lock: ServerLock) {}

  mustHold(c: Caller, what: string): void {
    if (this.lock.owner?.id !== c.id) {
      throw new ProcessError(
        `Condition.${what}() without holding its lock: acquire it first (\`await using _ = await cond.hold()\`)`,
      );
    }
  }
}

/** Takes `l` for `c` once it is free (no timeout: as Python, after a wait). */
export function lockFor(
  l: ServerLock,
  c: Caller,
): Promise<unknown> | undefined {
  if (l.owner === null) {
    l.grant(c);
    return undefined;
  }
  return park(l.waiters, c, undefined, () => {});
}

export async function conditionWait(
  cond: ServerCondition,
  timeout: unknown,
  c: Caller,
): Promise<boolean> {
  const o = waitOptions({ timeout }, "wait()");
  cond.mustHold(c, "wait");
  const l = cond.lock;
  const depth = l.count;
  l.handOff();
  let notified = false;
  try {
    if (o.timeout !== 0) {
      notified = await park(
        cond.waiters,
        c,
        o.timeout,
        (w) => w.resolve(false),
      );
    }
  } finally {
    await lockFor(l, c);
    l.count = depth;
  }
  return notified;
}

export function notifyCount(n: unknown): number {
  const k = n === undefined ? 1 : n;
  if (typeof k !== "number" || !Number.isInteger(k) || k < 0) {
    throw new RangeError(
      `notify(n): n must be a non-negative integer, got ${describe(k)}`,
    );
  }
  return k;
}

export const condition: Kind = {
  create: ([lock], lookup) => {
    if (lock === undefined || lock === null) {
      return new ServerCondition(new ServerLock(true, "RLock"));
    }
    const obj = lookup(lock, "Condition(lock)");
    if (!(obj.value instanceof ServerLock)) {
      throw new TypeError(
        `Condition(lock): lock must be a manager Lock or RLock, got a ${obj.kind}`,
      );
    }
    return new ServerCondition(obj.value);
  },
  methods: {
    acquire: (cv: ServerCondition, args, c) => acquire(cv.lock, args, c),
    release: (cv: ServerCondition, _a, c) => release(cv.lock, c),
    locked: (cv: ServerCondition) => cv.lock.owner !== null,
    wait: (cv: ServerCondition, [timeout], c) => conditionWait(cv, timeout, c),
    notify: (cv: ServerCondition, [n], c) => {
      let k = notifyCount(n);
      cv.mustHold(c, "notify");
      for (; k > 0; k--) {
        const w = firstLive(cv.waiters);
        if (!w) break;
        w.resolve(true);
      }
    },
    notifyAll: (cv: ServerCondition, _a, c) => {
      cv.mustHold(c, "notifyAll");
      for (const w of [...cv.waiters]) w.resolve(true);
    },
  },
};

// ---------------------------------------------------------------- Barrier

/**
 * Python's `threading.Barrier`, served: a wait parks until `parties` waits
 * are parked, then all resolve with their arrival index (0..parties-1). A
 * wait that times out, or `abort()`, breaks it: every wait then rejects
 * with `BrokenBarrierError` until `reset()`. A waiter whose client is gone
 * no longer counts as arrived.
 */
export class ServerBarrier {
  waiters: Waiter<number>[] = [];
  broken = false;
  constructor(readonly parties: number, readonly timeout: number | undefined) {}

  live(): number {
    return this.waiters.filter((w) => !w.caller.closed).length;
  }
  /** Rejects every waiter with `BrokenBarrierError`. */
  fail(why: string): void {
    for (const w of [...this.waiters]) w.reject(new BrokenBarrierError(why));
  }
  break(why: string): void {
    this.broken = true;
    this.fail(why);
  }
}

export const BROKEN_HINT = "reset() it to use it again";

export const barrier: Kind = {
  create: ([parties, options]) => {
    if (
      typeof parties !== "number" || !Number.isInteger(parties) || parties < 1
    ) {
      throw new RangeError(
        `Barrier parties must be a positive integer, got ${describe(parties)}`,
      );
    }
    if (options !== undefined && options !== null) {
      if (typeof options !== "object") {
        throw new TypeError(
          `Barrier(parties, options): options must be an object like { timeout: 1000 }, got ${typeof options}`,
        );
      }
      if ((options as Record<string, unknown>).action !== undefined) {
        throw new TypeError(
          "a manager Barrier takes no action: a function cannot reach the server; " +
            "run it yourself in the process whose wait() resolved parties - 1",
        );
      }
    }
    const o = waitOptions(options, "Barrier");
    return new ServerBarrier(parties, o.timeout);
  },
  methods: {
    wait: (b: ServerBarrier, [timeout], c) => {
      const o = waitOptions(
        { timeout: timeout === undefined ? b.timeout : timeout },
        "wait()",
      );
      if (b.broken) {
        throw new BrokenBarrierError(`the barrier is broken; ${BROKEN_HINT}`);
      }
      // Dead clients' waits are dropped as they go; prune any not seen yet.
      for (const w of [...b.waiters]) if (w.caller.closed) w.done();
      if (b.waiters.length + 1 >= b.parties) {
        const arrived = [...b.waiters];
        arrived.forEach((w, i) => w.resolve(i));
        return b.parties - 1;
      }
      const why = (ms: number | undefined) =>
        `a wait on the barrier timed out after ${ms} ms (${b.live()} of ${b.parties} parties had arrived); ${BROKEN_HINT}`;
      if (o.timeout === 0) {
        b.break(why(0));
        throw new BrokenBarrierError(why(0));
      }
      return park(b.waiters, c, o.timeout, () => b.break(why(o.timeout)));
    },
    reset: (b: ServerBarrier) => {
      b.broken = false;
      b.fail("the barrier was reset while this wait was parked");
    },
    abort: (b: ServerBarrier) =>
      b.break(`the barrier was aborted (abort()); ${BROKEN_HINT}`),
    parties: (b: ServerBarrier) => b.parties,
    nWaiting: (b: ServerBarrier) => b.live(),
    broken: (b: ServerBarrier) => b.broken,
  },
};
