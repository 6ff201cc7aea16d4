/**
 * The error classes of the module, one per failure a caller may want to catch
 * by type (Python's `queue.Empty`, `multiprocessing.TimeoutError`, ...).
 *
 * @module
 */

/**
 * Base class of every error raised by this module.
 *
 * @example
 * ```ts
 * import { MultiprocessingError, Empty } from "@mp/multiprocessing";
 * console.log(new Empty() instanceof MultiprocessingError); // true
 * ```
 */
export class MultiprocessingError extends Error {
  /** Creates the error; `name` is the class name. */
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Raised by `getNowait()` (or a `get` whose timeout ran out) on an empty queue.
 *
 * @example
 * ```ts
 * import { Empty, Queue } from "@mp/multiprocessing";
 * using q = new Queue<number>();
 * try {
 *   q.getNowait();
 * } catch (e) {
 *   console.log(e instanceof Empty); // true
 * }
 * ```
 */
export class Empty extends MultiprocessingError {}

/**
 * Raised by `putNowait()` (or a `put` whose timeout ran out) on a full queue.
 *
 * @example
 * ```ts
 * import { Full, Queue } from "@mp/multiprocessing";
 * using q = new Queue<number>({ maxsize: 1 });
 * q.putNowait(1);
 * try {
 *   q.putNowait(2);
 * } catch (e) {
 *   console.log(e instanceof Full); // true
 * }
 * ```
 */
export class Full extends MultiprocessingError {}

/**
 * Raised when a wait with a timeout runs out (`AsyncResult.get(ms)`, ...).
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@mp/multiprocessing";
 * const e = new TimeoutError("result not ready after 10 ms");
 * console.log(e.name); // "TimeoutError"
 * ```
 */
export class TimeoutError extends MultiprocessingError {}

/**
 * Raised by `Barrier.wait()` when the barrier is broken or reset while waiting.
 *
 * @example
 * ```ts
 * import { BrokenBarrierError } from "@mp/multiprocessing";
 * console.log(new BrokenBarrierError().name); // "BrokenBarrierError"
 * ```
 */
export class BrokenBarrierError extends MultiprocessingError {}

/**
 * Raised by `Connection.recv()` when the other end of a pipe was closed, or
 * the process that held it ended: there is nothing left to receive.
 *
 * @example
 * ```ts
 * import { EOFError, Pipe } from "@mp/multiprocessing";
 * const [a, b] = Pipe();
 * a.close();
 * try {
 *   await b.recv();
 * } catch (e) {
 *   console.log(e instanceof EOFError); // true
 * }
 * b.close();
 * ```
 */
export class EOFError extends MultiprocessingError {}

/**
 * Raised for misuse of a process or of the module's objects: `start()` twice,
 * `join()` before `start()`, `close()` on a live process, use after `close()`,
 * and the like (Python raises `ValueError`/`AssertionError` there).
 *
 * @example
 * ```ts
 * import { Process, ProcessError } from "@mp/multiprocessing";
 * export function noop() {}
 * const p = new Process({ target: noop });
 * try {
 *   await p.join();
 * } catch (e) {
 *   console.log(e instanceof ProcessError); // true
 * }
 * ```
 */
export class ProcessError extends MultiprocessingError {}

/**
 * Raised when a child's target cannot be found by its exported name in its
 * module: a worker cannot receive a closure, so targets must be exported.
 *
 * @example
 * ```ts
 * import { TargetNotExportedError } from "@mp/multiprocessing";
 * const e = new TargetNotExportedError("file:///app/main.ts", "work");
 * console.log(e.message.includes("export function work")); // true
 * ```
 */
export class TargetNotExportedError extends MultiprocessingError {
  /** The module the child imported. */
  readonly module: string;
  /** The name the target was looked up by. */
  readonly target: string;
  /**
   * Builds the message from the module and target name; `exportedFrom`, when
   * known, is the module that does export a function of that name (the
   * target was imported from there).
   */
  constructor(
    module: string,
    target: string,
    detail?: string,
    exportedFrom?: string,
  ) {
    super(targetMessage(module, target, detail, exportedFrom));
    this.module = module;
    this.target = target;
  }
}

// Names an inline function gets from the option it was written in.
const OPTION_NAMES = new Set(["target", "initializer", "action", "fn"]);

function targetMessage(
  module: string,
  target: string,
  detail: string | undefined,
  exportedFrom: string | undefined,
): string {
  const how = "A child process imports the target's module and looks the " +
    "target up by the name it is exported under";
  if (!target) {
    return `an anonymous or inline function cannot be a child's target (from ${module}${
      detail ? `: ${detail}` : ""
    }). ${how}, so a function without one cannot be found. Fix: declare it at the top level ` +
      `of the module as \`export function work(...) { ... }\` and pass it by that name ` +
      `(\`target: work\`), or export a class that extends Process.`;
  }
  if (exportedFrom) {
    return `'${target}' is not exported from ${module}, which passed it: it is imported there ` +
      `from ${exportedFrom}. ${how}. Fix: pass the \`module\` option naming that module ` +
      `(\`module: ${
        JSON.stringify(exportedFrom)
      }\`, or \`import.meta.resolve(...)\` of it), ` +
      `or export '${target}' from ${module}.`;
  }
  const inline = OPTION_NAMES.has(target)
    ? ` If it is an inline function (\`${target}: () => ...\`), '${target}' is only the name ` +
      `the option gave it, and a child cannot find it: declare it at the top level as ` +
      `\`export function work(...) { ... }\` and pass \`${target}: work\`. Otherwise:`
    : " Fix:";
  return `'${target}' is not exported from ${module}${
    detail ? ` (${detail})` : ""
  }. ${how}.` +
    `${inline} declare it as \`export function ${target}(...)\` (or \`export class ... ` +
    `extends Process\`) at the top level of that module; if it comes from another module, pass ` +
    `the \`module\` option naming that one.`;
}

/**
 * Raised when authentication with a manager fails (wrong `authkey`).
 *
 * @example
 * ```ts
 * import { AuthenticationError } from "@mp/multiprocessing";
 * console.log(new AuthenticationError("digest mismatch").name); // "AuthenticationError"
 * ```
 */
export class AuthenticationError extends MultiprocessingError {}

/**
 * An error raised in another process (a pool worker, a manager), carried
 * back: it keeps the remote error's name, message and stack.
 *
 * @example
 * ```ts
 * import { RemoteError } from "@mp/multiprocessing";
 * const e = new RemoteError({ name: "TypeError", message: "bad", stack: "TypeError: bad" }, "Worker-1");
 * console.log(e.remoteName, e.processName); // TypeError Worker-1
 * ```
 */
export class RemoteError extends MultiprocessingError {
  /** The `name` of the error in the other process (`TypeError`, ...). */
  readonly remoteName: string;
  /** The stack of the error in the other process. */
  readonly remoteStack: string;
  /** The name of the process it was raised in, when known. */
  readonly processName: string | undefined;
  /** Wraps a serialized error from process `processName`. */
  constructor(
    error: { name?: string; message?: string; stack?: string },
    processName?: string,
  ) {
    super(
      `${error.name ?? "Error"}: ${error.message ?? ""}${
        processName ? ` (in ${processName})` : ""
      }`,
    );
    this.remoteName = error.name ?? "Error";
    this.remoteStack = error.stack ?? "";
    this.processName = processName;
    if (error.stack) {
      this.stack =
        `${this.name}: ${this.message}\n--- remote stack ---\n${error.stack}`;
    }
  }
}

/**
 * Raised when a manager cannot find a class of the user's by its exported
 * name (`manager.create(Cls)`, `Manager.register(typeid, Cls)`): the
 * manager's server imports the class's module and looks the class up there.
 *
 * @example
 * ```ts
 * import { ClassNotExportedError } from "@mp/multiprocessing";
 * const e = new ClassNotExportedError("file:///app/main.ts", "Maths");
 * console.log(e.className, e.name); // Maths ClassNotExportedError
 * ```
 */
export class ClassNotExportedError extends MultiprocessingError {
  /** The module the class was looked for in. */
  readonly module: string;
  /** The class's name. */
  readonly className: string;
  /** Builds the message from the module and the class's name. */
  constructor(module: string, className: string, detail?: string) {
    const name = className || "Name";
    super(
      `${
        className ? `class '${className}'` : "an anonymous class"
      } is not exported from ${module}${detail ? ` (${detail})` : ""}. ` +
        `A manager's server imports that module and looks the class up by its exported name; ` +
        `fix: declare it as \`export class ${name}\` at the top level of that module ` +
        `(a class imported from another module: re-export it, \`export { ${name} } from "./its_module.ts"\`, ` +
        `or register it with its module: \`Manager.register("${name}", ${name}, { module: new URL("./its_module.ts", import.meta.url) })\`).`,
    );
    this.module = module;
    this.className = className;
  }
}
