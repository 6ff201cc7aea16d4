/**
 * The errors of the Redis entry (`@mp/multiprocessing/redis`), beside the
 * module's own (`Empty`, `Full`, `TimeoutError`, `AuthenticationError`...),
 * which its queues and pools raise as the local ones do.
 *
 * @module
 */

import { MultiprocessingError } from "../errors.ts";

/**
 * Raised when Redis cannot be reached (refused, unknown host, no answer
 * within `connectTimeout`) or went away for good; names the URL (never its
 * password) and what to do.
 *
 * @example
 * ```ts
 * import { RedisConnectionError } from "@mp/multiprocessing/redis";
 * const e = new RedisConnectionError("cannot reach redis://127.0.0.1:1");
 * console.log(e.name); // "RedisConnectionError"
 * ```
 */
export class RedisConnectionError extends MultiprocessingError {}

/**
 * The result of a task that ended its worker every time it ran: after
 * `maxTries` deliveries it was moved to the pool's dead-letter stream
 * (`mp:pool:<name>:dead`) instead of being run again.
 *
 * @example
 * ```ts
 * import { PoisonTaskError } from "@mp/multiprocessing/redis";
 * const e = new PoisonTaskError("file:///app/tasks.ts", "crash", 3, "1-0");
 * console.log(e.name, e.tries); // PoisonTaskError 3
 * ```
 */
export class PoisonTaskError extends MultiprocessingError {
  /** The module of the task's function. */
  readonly module: string;
  /** The exported name of the task's function. */
  readonly target: string;
  /** How many times it was delivered. */
  readonly tries: number;
  /** Its entry id in the dead-letter stream. */
  readonly deadLetterId: string;
  /** Builds the message from the task and its tries. */
  constructor(module: string, target: string, tries: number, id: string) {
    super(
      `task '${target}' from ${module} ended its worker each of the ${tries} times it ran ` +
        `(killed, out of memory, or the worker program died); it was moved to the dead-letter ` +
        `stream as entry ${id} and is not run again. Fix the task, or raise maxTries if the ` +
        `workers died for other reasons`,
    );
    this.module = module;
    this.target = target;
    this.tries = tries;
    this.deadLetterId = id;
  }
}

/**
 * Raised (in the caller) for a task whose module is outside every
 * `--allow-module` prefix of the worker that took it: a worker imports only
 * the modules it was told to trust.
 *
 * @example
 * ```ts
 * import { ModuleNotAllowedError } from "@mp/multiprocessing/redis";
 * const e = new ModuleNotAllowedError("https://evil.example/x.ts", ["file:///app/"]);
 * console.log(e.message.includes("--allow-module")); // true
 * ```
 */
export class ModuleNotAllowedError extends MultiprocessingError {
  /** The module the task named. */
  readonly module: string;
  /** Builds the message from the module and the worker's prefixes. */
  constructor(module: string, allowed: string[]) {
    super(
      `the worker does not import ${module}: it is under none of its --allow-module prefixes ` +
        `(${
          allowed.join(", ")
        }); start the worker with --allow-module <a prefix of that URL>`,
    );
    this.module = module;
  }
}
