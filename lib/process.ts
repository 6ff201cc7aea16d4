/**
 * Processes: a child runs an exported function (or an exported `Process`
 * subclass's `run()`) in its own worker, with its own memory, in parallel.
 *
 * @example
 * ```ts
 * import { Process } from "@mp/multiprocessing";
 *
 * export function greet(name: string) {
 *   console.log(`hello, ${name}`);
 * }
 *
 * if (import.meta.main) {
 *   const p = new Process({ target: greet, args: ["world"] });
 *   await p.start();
 *   await p.join();
 *   console.log(p.exitCode); // 0
 * }
 * ```
 *
 * @module
 */

import { findUncloneable, reduce } from "./reduction.ts";
import {
  allocateIdent,
  currentIdent,
  isIdentAlive,
  markDead,
  tableBuffer,
} from "./shm/_proctable.ts";
import {
  type ChildHandle,
  type Permissions,
  spawnWorker,
} from "./process/_spawn.ts";
import { moduleUrl, type TargetRef, targetRef } from "./process/_target.ts";
import { type WireError, withRebuiltError } from "./wire/_error.ts";
import { ProcessError } from "./errors.ts";
import { repr } from "./_inspect.ts";
import { show } from "./_show.ts";
import { checkKeys } from "./_options.ts";

const PROCESS_OPTIONS = [
  "target",
  "args",
  "kwargs",
  "name",
  "daemon",
  "module",
  "permissions",
  "preload",
];
import { checkTimeout, keepAlive, settlesWithin } from "./shm/_wait.ts";
import {
  traceEnded,
  type TraceShare,
  traceShare,
  traceSpawn,
} from "./trace/_writer.ts";

export type { Permissions } from "./process/_spawn.ts";

/**
 * Options of {@linkcode Process}.
 *
 * @example
 * ```ts
 * import type { ProcessOptions } from "@mp/multiprocessing";
 * export function greet(name: string) {
 *   console.log(`hello, ${name}`);
 * }
 * const options: ProcessOptions<[string]> = { target: greet, args: ["world"], name: "Greeter" };
 * console.log(options.name); // "Greeter"
 * ```
 */
export interface ProcessOptions<A extends unknown[] = unknown[]> {
  /** The exported function the child runs (sync or async). Omit in subclasses that override `run()`. */
  target?: (...args: A) => unknown;
  /** Arguments for `target`; structured-cloned, the module's shared objects stay shared. */
  args?: A;
  /** Keyword arguments, passed to `target` as one extra last argument (JS has no keywords). */
  kwargs?: Record<string, unknown>;
  /** The process name (default `Process-N`, nested `Process-N:M`). */
  name?: string;
  /** A daemon child is ended when the program ends and never keeps it alive. */
  daemon?: boolean;
  /** The module that exports the target (`import.meta.url`); default: the caller's module. */
  module?: string | URL;
  /** Deno's worker permissions for the child (needs `--unstable-worker-options`). */
  permissions?: Permissions;
  /** Internal: extra modules the child imports statically (used by Pool). */
  preload?: string[];
}

/** The message a child's bootstrap receives to start. */
export interface InitMessage {
  kind: "init";
  ident: number;
  parentIdent: number;
  parentName: string;
  table: SharedArrayBuffer;
  name: string;
  identity: number[];
  daemon: boolean;
  target: TargetRef;
  isClass: boolean;
  fields: unknown;
  args: unknown[];
  module: string;
  trace?: TraceShare;
}

interface State {
  target?: (...args: never[]) => unknown;
  args: unknown[];
  name: string;
  daemon: boolean;
  module?: string;
  permissions: Permissions;
  preload: string[];
  ident: number | null;
  identity: number[];
  exitCode: number | null;
  handle?: ChildHandle;
  started: boolean;
  closed: boolean;
  exited: Promise<void>;
  resolveExited: () => void;
  startup?: Promise<void>;
  settleStartup?: (error?: Error, stopped?: boolean) => void;
  startError?: Error;
  /** A start failure's error whose class's module is being imported. */
  rebuilding?: Promise<void>;
  /** Set in a child for its own process object. */
  self: boolean;
  /** A view of the parent: only name, pid and isAlive work. */
  parentView: boolean;
}

const states = new WeakMap<Process, State>();
const children = new Set<Process>();
let childCounter = 0;
let current: Process | undefined;
let parent: Process | null = null;

function newState(init: Partial<State>): State {
  let resolveExited!: () => void;
  const exited = new Promise<void>((r) => resolveExited = r);
  return {
    args: [],
    name: "",
    daemon: false,
    permissions: "inherit",
    preload: [],
    ident: null,
    identity: [],
    exitCode: null,
    started: false,
    closed: false,
    exited,
    resolveExited,
    self: false,
    parentView: false,
    ...init,
  };
}

function importing(): boolean {
  return (globalThis as Record<symbol, unknown>)[Symbol.for("mp.importing")] ===
    true;
}

/**
 * Throws the `ProcessError` for `what` (e.g. "Process 'x'") started while a
 * child or a manager's server is still importing its module (a module with no
 * `if (import.meta.main)` guard).
 */
export function checkNotImporting(what: string): void {
  if (importing()) {
    throw new ProcessError(
      `${what} was started while a child process was still importing its module: ` +
        `the module's top level starts processes, so every child would start more. ` +
        `Fix: put the program's start-up code under \`if (import.meta.main) { ... }\` ` +
        `(Python's \`if __name__ == "__main__":\`).`,
    );
  }
}

/**
 * A child process: Python's `multiprocessing.Process` on a worker.
 *
 * The child imports the module that defines `target` (the `module` option,
 * else the module that called the constructor) and calls the target by its
 * exported name, so targets must be exported, and the module's own start-up
 * code must sit under `if (import.meta.main)`. Subclasses that override
 * `run()` must be exported too; their own fields travel to the child.
 *
 * Exit codes: 0 after a normal end, 1 when the target throws (its stack goes
 * to stderr, headed `Process <name>:`), n after `exit(n)` or `Deno.exit(n)`,
 * -15 after `terminate()`, -9 after `kill()`.
 *
 * @example
 * ```ts
 * import { Process } from "@mp/multiprocessing";
 *
 * export function square(x: number) {
 *   console.log(x * x);
 * }
 *
 * if (import.meta.main) {
 *   using p = new Process({ target: square, args: [7] });
 *   await p.start();
 *   await p.join(5_000);
 *   console.log(p.exitCode); // 0
 * }
 * ```
 */
// deno-lint-ignore no-explicit-any
export class Process<A extends unknown[] = any[]> {
  /**
   * Creates a process; nothing runs until {@linkcode Process.start}.
   *
   * @throws {TypeError} for options that are not an object, an unknown option
   *   key (naming the closest valid one), `args` that is not an array, or a
   *   `name` that is not a string.
   */
  constructor(options: ProcessOptions<A> = {}) {
    const opts = options as unknown as ProcessOptions<unknown[]>;
    if (opts === null || typeof opts !== "object") {
      const given = opts as unknown;
      const f = typeof given === "function" && given.name ? given.name : "f";
      throw new TypeError(
        `Process options must be an object like { target: f, args: [x] }, got ${
          show(opts)
        }; write new Process({ target: ${f} })`,
      );
    }
    checkKeys(opts, PROCESS_OPTIONS, "Process option");
    if (opts.args !== undefined && !Array.isArray(opts.args)) {
      throw new TypeError(
        `args must be an array of arguments, got ${
          show(opts.args)
        }; write args: [x] (Python's args=(x,))`,
      );
    }
    if (opts.name !== undefined && typeof opts.name !== "string") {
      throw new TypeError(
        `Process option name must be a string, got ${
          show(opts.name)
        }; write name: "worker-1"`,
      );
    }
    const permissions = opts.permissions ?? "inherit";
    const identity = [
      ...(current ? stateOf(current).identity : []),
      ++childCounter,
    ];
    const subclass = new.target !== Process;
    let module: string | undefined;
    if (opts.module !== undefined) module = moduleUrl(opts.module);
    else if (opts.target !== undefined || subclass) {
      try {
        module = moduleUrl(undefined);
      } catch {
        module = undefined;
      }
    }
    states.set(
      this,
      newState({
        target: opts.target as State["target"],
        args: opts.kwargs !== undefined
          ? [...(opts.args ?? []), opts.kwargs]
          : [...(opts.args ?? [])],
        name: opts.name ?? `Process-${identity.join(":")}`,
        daemon: opts.daemon ?? (current ? stateOf(current).daemon : false),
        module,
        permissions,
        preload: opts.preload ?? [],
        identity,
      }),
    );
  }

  /**
   * The child's work. By default it calls `target(...args)`; subclasses
   * override it (and are exported so the child can find them).
   */
  run(): unknown {
    const s = stateOf(this);
    if (s.target) return (s.target as (...a: unknown[]) => unknown)(...s.args);
    return undefined;
  }

  /**
   * Starts the child. Awaiting the promise is optional: `join()` reports the
   * same failure.
   *
   * @returns A promise that resolves once the child has loaded its module and
   *   begun its work, and rejects when it cannot start (for example with
   *   `TargetNotExportedError`: the target is not exported by its module).
   * @throws {ProcessError} when the process was started (or closed) before, or
   *   when called while a child is still importing its module (a module
   *   without an `if (import.meta.main)` guard).
   * @throws {TypeError} naming the part of `args` that cannot be sent to a
   *   child (a function, a class instance holding one, ...).
   */
  start(): Promise<void> {
    const s = stateOf(this);
    checkOpen(this);
    if (s.self || s.parentView) {
      throw new ProcessError("cannot start a process twice");
    }
    if (s.started) throw new ProcessError("cannot start a process twice");
    checkNotImporting(`Process '${s.name}'`);
    const isClass = s.target === undefined && this.constructor !== Process;
    let ref: TargetRef;
    if (isClass) {
      ref = targetRef(this.constructor, s.module);
    } else if (s.target !== undefined) {
      ref = targetRef(s.target, s.module);
    } else {
      ref = { module: "", name: "" };
    }
    const transfer: Transferable[] = [];
    const undo: (() => void)[] = [];
    let args: unknown[];
    let fields: unknown;
    try {
      args = reduce(s.args, transfer, undo, "args") as unknown[];
      fields = isClass
        ? reduce({ ...this }, transfer, undo, "this")
        : undefined;
    } catch (e) {
      // reduce() gave back what it lent.
      if ((e as Error)?.name === "DataCloneError") {
        (e as Error).message = `Process '${s.name}': ${(e as Error).message}`;
      }
      throw e;
    }
    const ident = allocateIdent();
    const me = current ? stateOf(current) : undefined;
    const init: InitMessage = {
      kind: "init",
      ident,
      parentIdent: currentIdent(),
      parentName: me?.name ?? "MainProcess",
      table: tableBuffer(),
      name: s.name,
      identity: s.identity,
      daemon: s.daemon,
      target: ref,
      isClass,
      fields,
      args,
      module: ref.module,
      trace: traceShare(),
    };
    const modules = ref.module ? [ref.module, ...s.preload] : [...s.preload];
    let settle!: (error?: Error) => void;
    s.startup = new Promise<void>((resolve, reject) => {
      settle = (error) => error ? reject(error) : resolve();
    });
    s.startup.catch(() => {});
    s.settleStartup = (error, stopped) => {
      if (!s.settleStartup) return;
      s.settleStartup = undefined;
      if (error && !stopped) s.startError = error;
      settle(error);
    };
    try {
      s.handle = spawnWorker(modules, {
        name: s.name,
        daemon: s.daemon,
        permissions: s.permissions,
      }, {
        onMessage: (msg) => onChildMessage(this, msg as ChildMessage),
        onExit: (code) => ended(this, code ?? 1),
        // An error the bootstrap did not catch (a module a child with its
        // own permissions imports statically failed): Deno prints it, and
        // start() says it again, not a third time.
        onError: (message) => {
          if (s.exitCode === null) couldNotStart(this, message);
        },
      });
    } catch (e) {
      markDead(ident);
      for (const f of undo) f(); // what reducing lent for the way
      throw e;
    }
    try {
      s.handle.post(init, transfer);
    } catch (e) {
      // Nothing ran: the child never got its init message.
      s.handle.terminate();
      s.handle = undefined;
      markDead(ident);
      for (const f of undo) f(); // what reducing lent for the way
      const bad = findUncloneable(s.args, "args") ??
        (isClass ? findUncloneable({ ...this }, "this") : undefined);
      throw new TypeError(
        bad
          ? `Process '${s.name}': ${bad.path} is a ${bad.type}, which cannot be sent to a child ` +
            `process (only structured-cloneable values and this module's shared objects can); ` +
            `pass data instead, or an exported function's name`
          : `Process '${s.name}': args cannot be sent to a child process: ${
            (e as Error).message
          }`,
      );
    }
    s.started = true;
    s.ident = ident;
    traceSpawn(ident, s.name);
    children.add(this);
    // A daemon child's worker is unref'd: hold the program while it starts.
    const started = s.daemon ? keepAlive(s.startup) : s.startup;
    started.catch(() => {}); // join() reports a failed start too
    return started;
  }

  /**
   * Waits until the child ends.
   *
   * @param timeoutMs The most to wait; then it returns with the child still
   *   running (check `exitCode`). Undefined: wait for the end. 0: do not wait.
   * @throws {ProcessError} (rejects) for a process not started, the current
   *   process, or another process's child.
   * @throws {TargetNotExportedError} (rejects), or whatever else made the
   *   child fail to start.
   * @throws {RangeError} (rejects) for a negative or NaN `timeoutMs`.
   */
  async join(timeoutMs?: number): Promise<void> {
    const s = stateOf(this);
    checkOpen(this);
    timeoutMs = checkTimeout(timeoutMs, "join timeout");
    if (s.self) throw new ProcessError("a process cannot join itself");
    if (s.parentView) throw new ProcessError("can only join a child process");
    if (!s.started) throw new ProcessError("can only join a started process");
    // settlesWithin holds the program: a daemon child's worker is unref'd.
    if (s.exitCode === null) await settlesWithin(s.exited, timeoutMs);
    if (s.startError) throw s.startError;
  }

  /** Ends the child at once (Python's SIGTERM); its exit code becomes -15. */
  terminate(): void {
    stop(this, -15);
  }

  /** Ends the child at once (Python's SIGKILL); its exit code becomes -9. */
  kill(): void {
    stop(this, -9);
  }

  /**
   * Releases the process object; most of its methods then throw.
   *
   * @throws {ProcessError} while the child is still running.
   */
  close(): void {
    const s = stateOf(this);
    if (s.closed) return;
    if (s.started && s.exitCode === null) {
      throw new ProcessError(
        `Cannot close process '${s.name}' while it is still running. You should first call join() or terminate().`,
      );
    }
    s.closed = true;
    s.handle = undefined;
  }

  /** True from `start()` until the child ends. */
  isAlive(): boolean {
    const s = stateOf(this);
    checkOpen(this);
    if (s.self) return true;
    if (s.parentView) return s.ident !== null && isIdentAlive(s.ident);
    return s.started && s.exitCode === null;
  }

  /** null while running (or before start); then the exit code. */
  get exitCode(): number | null {
    const s = stateOf(this);
    checkOpen(this);
    return s.exitCode;
  }

  /** The child's id (unique in this program); null before start. The main program's is `Deno.pid`. */
  get pid(): number | null {
    const s = stateOf(this);
    if (s.ident === 0) return Deno.pid;
    return s.ident;
  }

  /** The process name. */
  get name(): string {
    return stateOf(this).name;
  }
  set name(value: string) {
    if (typeof value !== "string") {
      throw new TypeError(`name must be a string, got ${show(value)}`);
    }
    stateOf(this).name = value;
  }

  /** Whether the child is a daemon; settable only before `start()`. */
  get daemon(): boolean {
    return stateOf(this).daemon;
  }
  set daemon(value: boolean) {
    const s = stateOf(this);
    if (s.started) {
      throw new ProcessError(
        "process has already started: cannot change daemon",
      );
    }
    s.daemon = Boolean(value);
  }

  /** Terminates the child if it still runs, then closes: `using p = new Process(...)`. */
  [Symbol.dispose](): void {
    const s = stateOf(this);
    if (s.self || s.parentView || s.closed) return;
    if (s.started && s.exitCode === null) this.terminate();
    this.close();
  }

  /**
   * `Process { name: "Process-1", pid: 3, alive: true, exitCode: null }`
   * (Python's repr; a subclass prints its own name).
   */
  toString(): string {
    const s = states.get(this);
    const name = this.constructor.name;
    if (!s) return repr(name, {});
    if (s.closed) {
      return repr(name, { name: s.name, pid: this.pid, closed: true });
    }
    return repr(name, {
      name: s.name,
      pid: this.pid,
      alive: this.isAlive(),
      exitCode: s.exitCode,
      daemon: s.daemon || undefined,
    });
  }

  /** {@linkcode Process.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

function onChildMessage(p: Process, msg: ChildMessage): void {
  const s = stateOf(p);
  if (msg?.kind === "started") s.settleStartup?.();
  else if (msg?.kind === "failed") {
    let pending = true;
    const rebuilt = new Promise<void>((done) =>
      withRebuiltError(msg.error, (e) => {
        pending = false;
        s.settleStartup?.(e as Error);
        done();
      })
    );
    // Its exit comes next: it waits for this error (see ended()).
    if (pending) {
      s.rebuilding = rebuilt;
      rebuilt.then(() => s.rebuilding = undefined);
    }
  } else if (msg?.kind === "exit") ended(p, msg.code);
  else if (msg?.kind === "loadFailed" && s.exitCode === null) {
    couldNotStart(p, msg.message);
  }
}

/** Before the bootstrap ran (a module failed to load): `start()` says why. */
function couldNotStart(p: Process, message: string): void {
  const s = stateOf(p);
  s.settleStartup?.(
    new ProcessError(`Process '${s.name}' could not start: ${message}`),
  );
  ended(p, 1);
}
function ended(p: Process, code: number, stopped = false): void {
  const s = stateOf(p);
  if (s.exitCode !== null) return;
  if (s.rebuilding) {
    s.rebuilding.then(() => ended(p, code, stopped));
    return;
  }
  s.exitCode = code;
  if (s.ident !== null) markDead(s.ident);
  if (s.ident !== null) traceEnded(s.ident, s.name, code);
  s.handle?.terminate();
  children.delete(p);
  s.settleStartup?.(
    new ProcessError(
      `Process '${s.name}' ended (exit code ${code}) before it started`,
    ),
    // Stopped by its parent: start() rejects (it never began), but join()
    // just returns, with the exit code, as Python's does.
    stopped,
  );
  s.resolveExited();
}
function stop(p: Process, code: number): void {
  const s = stateOf(p);
  checkOpen(p);
  if (s.self || s.parentView) {
    throw new ProcessError("can only terminate a child process");
  }
  if (!s.started || s.exitCode !== null) return;
  ended(p, code, true);
}
function checkOpen(p: Process): void {
  if (stateOf(p).closed) {
    throw new ProcessError("process object is closed");
  }
}
type ChildMessage =
  | { kind: "started" }
  | { kind: "failed"; error: WireError }
  | { kind: "exit"; code: number }
  | { kind: "loadFailed"; message: string };

function stateOf(p: Process): State {
  let s = states.get(p);
  if (!s) {
    // A subclass instance rebuilt in a child before the bootstrap adopted it.
    s = newState({});
    states.set(p, s);
  }
  return s;
}

/** Internal: the bootstrap makes `p` this child's own process object. */
export function adoptAsCurrent(
  p: Process,
  init: InitMessage,
  target: ((...args: never[]) => unknown) | undefined,
  args: unknown[],
): void {
  states.set(
    p,
    newState({
      target,
      args,
      name: init.name,
      daemon: init.daemon,
      module: init.module,
      ident: init.ident,
      identity: init.identity,
      started: true,
      self: true,
    }),
  );
  current = p;
  const view = Object.create(Process.prototype) as Process;
  states.set(
    view,
    newState({
      name: init.parentName,
      ident: init.parentIdent,
      parentView: true,
      started: true,
    }),
  );
  parent = view;
}

/** Internal: serializes an error for the wire. */

/**
 * Internal: settles when the child ended, as `join()` does, without holding
 * the program alive meanwhile (for watchers such as Pool's, which must not
 * keep an idle pool's program running).
 */
export async function whenEnded(p: Process): Promise<void> {
  const s = stateOf(p);
  if (!s.started) throw new ProcessError("can only watch a started process");
  await s.exited;
  if (s.startError) throw s.startError;
}

/** Internal: the daemon flag of a child. */
export function isDaemon(p: Process): boolean {
  return stateOf(p).daemon;
}

/**
 * The process object of the code that calls it: `MainProcess` in the main
 * program, the child's own `Process` in a child.
 *
 * @example
 * ```ts
 * import { currentProcess } from "@mp/multiprocessing";
 * console.log(currentProcess().name); // "MainProcess"
 * ```
 */
export function currentProcess(): Process {
  if (!current) {
    const main = Object.create(Process.prototype) as Process;
    states.set(
      main,
      newState({ name: "MainProcess", ident: 0, started: true, self: true }),
    );
    current = main;
  }
  return current;
}

/**
 * The parent of this process (only `name`, `pid` and `isAlive()` work on it),
 * or null in the main program.
 *
 * @example
 * ```ts
 * import { parentProcess } from "@mp/multiprocessing";
 * console.log(parentProcess()); // null in the main program
 * ```
 */
export function parentProcess(): Process | null {
  return parent;
}

/**
 * The children of this process that are still running.
 *
 * @example
 * ```ts
 * import { activeChildren } from "@mp/multiprocessing";
 * console.log(activeChildren().length); // 0
 * ```
 */
export function activeChildren(): Process[] {
  return [...children].filter((c) => stateOf(c).exitCode === null);
}

/**
 * The number of logical CPUs (Python's `cpu_count()`).
 *
 * @example
 * ```ts
 * import { cpuCount } from "@mp/multiprocessing";
 * console.log(cpuCount() >= 1); // true
 * ```
 */
export function cpuCount(): number {
  return navigator.hardwareConcurrency || 1;
}

/**
 * Ends the calling process with `code`.
 *
 * @param code In a child, its `exitCode` in the parent; in the main program,
 *   the program's exit status (`Deno.exit(code)`).
 *
 * @example
 * ```ts
 * import { exit, Process } from "@mp/multiprocessing";
 *
 * export function quitter() {
 *   exit(3);
 * }
 *
 * if (import.meta.main) {
 *   const p = new Process({ target: quitter });
 *   await p.start();
 *   await p.join();
 *   console.log(p.exitCode); // 3
 * }
 * ```
 */
export function exit(code = 0): never {
  return Deno.exit(code);
}
