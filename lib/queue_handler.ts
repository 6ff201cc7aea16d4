/**
 * The "recipe" tutorial's two helper classes: {@linkcode QueueHandler}, a set of named
 * queues, and {@linkcode MultiprocessingBase}, a process that runs
 * `runProcess()` in a loop until it is stopped through its own internal
 * queue.
 *
 * @example
 * ```ts
 * import { MultiprocessingBase, QueueHandler } from "@mp/multiprocessing/queue_handler";
 *
 * export class Ticker extends MultiprocessingBase {
 *   count = 0;
 *   constructor(queueHandler: QueueHandler) {
 *     super(queueHandler);
 *     this.flag = "TICK";
 *   }
 *   override async runProcess() {
 *     this.queueHandler.put("ticks", this.count++);
 *     await new Promise((r) => setTimeout(r, 10));
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const handler = new QueueHandler();
 *   handler.initQueue("ticks"); // [QHDL] queue with the name ticks initialised!
 *   const ticker = new Ticker(handler);
 *   await ticker.startProcess(); // [TICK] process initialized!
 *   await new Promise((r) => setTimeout(r, 100));
 *   await ticker.stopProcess(); // [TICK] stop flag received ... successfully stopped!
 *   console.log(handler.get("ticks")); // 0
 * }
 * ```
 *
 * @module
 */

import { Process, type ProcessOptions } from "./process.ts";
import { Queue, type QueueOptions } from "./queues.ts";
import { Empty } from "./errors.ts";
import { type Reduced, reduceSymbol, registerRebuilder } from "./reduction.ts";
import { repr } from "./_inspect.ts";

/**
 * Options of {@linkcode QueueHandler}.
 *
 * @example
 * ```ts
 * import { QueueHandler, type QueueHandlerOptions } from "@mp/multiprocessing/queue_handler";
 * const options: QueueHandlerOptions = { quiet: true }; // no "[QHDL] ..." lines
 * const handler = new QueueHandler(options);
 * handler.initQueue("main_queue");
 * handler.put("main_queue", 1);
 * console.log(handler.get("main_queue")); // 1
 * ```
 */
export interface QueueHandlerOptions {
  /** Do not print the `[QHDL] ... initialised!` line for each queue. */
  quiet?: boolean;
}

/**
 * Named queues shared by processes (the "recipe" tutorial's `QueueHandler`): `put` and
 * `get` by name, neither of them waiting. Queues made before a process
 * starts cross into it with the handler.
 *
 * @example
 * ```ts
 * import { QueueHandler } from "@mp/multiprocessing/queue_handler";
 * const handler = new QueueHandler();
 * handler.initQueue("main_queue"); // [QHDL] queue with the name main_queue initialised!
 * handler.put("main_queue", { n: 1 });
 * console.log(handler.get("main_queue")); // { n: 1 }
 * console.log(handler.get("main_queue")); // null: empty
 * ```
 */
export class QueueHandler {
  #queues: Map<string, Queue<unknown>>;
  #quiet: boolean;

  /** An empty handler; `quiet` silences the `[QHDL]` lines. */
  constructor(options: QueueHandlerOptions = {}) {
    this.#queues = new Map();
    this.#quiet = options.quiet ?? false;
  }

  /** Makes the queue `name` (again, if it existed) and says so on the console. */
  initQueue(name: string, options?: QueueOptions): void {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(
        `initQueue(name): name must be a non-empty string, got ${String(name)}`,
      );
    }
    this.#queues.get(name)?.close();
    this.#queues.set(name, new Queue(options));
    if (!this.#quiet) {
      console.log(`[QHDL] queue with the name ${name} initialised!`);
    }
  }

  /**
   * The queue named `name` itself, to wait on it or use its other methods.
   *
   * @throws {RangeError} when no queue is named `name` (`initQueue` it first).
   */
  queue(name: string): Queue<unknown> {
    const q = this.#queues.get(name);
    if (!q) {
      throw new RangeError(
        `no queue named '${name}' in this QueueHandler: call initQueue('${name}') first ` +
          `(before starting the processes that use it)`,
      );
    }
    return q;
  }

  /** The names of the queues. */
  names(): string[] {
    return [...this.#queues.keys()];
  }

  /**
   * Puts `data` on the queue `name`, without waiting.
   *
   * @throws {RangeError} when no queue is named `name`.
   * @throws {Full} when the queue has a `maxsize` and is full.
   */
  put(name: string, data: unknown): void {
    this.queue(name).putNowait(data);
  }

  /**
   * The next item of the queue `name`, never waiting.
   *
   * @returns The item, or `null` when the queue is empty.
   * @throws {RangeError} when no queue is named `name`.
   */
  get(name: string): unknown {
    const q = this.queue(name);
    try {
      return q.getNowait();
    } catch (e) {
      if (e instanceof Empty) return null;
      throw e;
    }
  }

  /** `QueueHandler { queues: ["main_queue"] }`: the names of its queues. */
  toString(): string {
    return repr("QueueHandler", { queues: this.names() });
  }

  /** {@linkcode QueueHandler.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** How the handler crosses into a child: its queues, still shared. */
  [reduceSymbol](): Reduced {
    return {
      tag: "mp.QueueHandler",
      state: { queues: [...this.#queues], quiet: this.#quiet },
    };
  }

  static {
    registerRebuilder("mp.QueueHandler", (state) => {
      const s = state as { queues: [string, Queue<unknown>][]; quiet: boolean };
      const handler = new QueueHandler({ quiet: s.quiet });
      handler.#queues = new Map(s.queues);
      return handler;
    });
  }
}

/** What `stopProcess()` puts on a process's internal queue. */
const STOP = "__mp_stop_process__";

let nextId = 0x3017400 + Math.floor(Math.random() * 0x1000) * 0x40;

/**
 * A process that runs `runProcess()` in a loop until stopped (the "recipe" tutorial's
 * `MultiprocessingBase`). Subclass it, set `flag` (the console prefix) and
 * override `initProcess()`, `runProcess()` and `deinitProcess()` (none is
 * required); export the subclass, since the child finds it by name, and its
 * own fields travel with it. `startProcess()` starts it; `stopProcess()`
 * stops it through its internal queue, made in the handler under a unique
 * name (class name and an id).
 *
 * Console: `[FLAG] process initialized!`, then `[FLAG] stop flag received`
 * and `[FLAG] process successfully stopped!`.
 *
 * @example
 * ```ts
 * import { MultiprocessingBase, QueueHandler } from "@mp/multiprocessing/queue_handler";
 *
 * export class Idle extends MultiprocessingBase {}
 *
 * if (import.meta.main) {
 *   const idle = new Idle(new QueueHandler({ quiet: true }));
 *   console.log(idle.internalQueueName); // e.g. Idle_0x30174d0__internal_queue
 *   await idle.startProcess();
 *   await idle.stopProcess();
 * }
 * ```
 */
export class MultiprocessingBase extends Process {
  /** The handler of the queues this process uses (its internal queue among them). */
  queueHandler: QueueHandler;
  /** The name of this process's internal queue in the handler. */
  internalQueueName: string;
  /** The prefix of this process's console lines (`[FLAG] ...`). */
  flag: string = "BASE";
  /** How long `runProcess()` waits between turns when it does not wait itself, in ms. */
  idleMs: number = 0;

  /** Makes the internal queue in `queueHandler`; `options` as for {@linkcode Process}. */
  constructor(
    queueHandler: QueueHandler,
    options: Omit<ProcessOptions, "target" | "args" | "kwargs"> = {},
  ) {
    super(options);
    if (!(queueHandler instanceof QueueHandler)) {
      throw new TypeError(
        `${new.target.name}: the first argument must be a QueueHandler (the process needs it for its internal queue), got ${
          String(queueHandler)
        }`,
      );
    }
    this.queueHandler = queueHandler;
    this.internalQueueName = `${new.target.name}_0x${
      (nextId += 0x40).toString(16)
    }__internal_queue`;
    queueHandler.initQueue(this.internalQueueName);
  }

  /** Runs once in the child before the loop. */
  initProcess(): unknown {
    return undefined;
  }

  /** One turn of the child's loop; called again and again until stopped. */
  runProcess(): unknown {
    return undefined;
  }

  /** Runs once in the child after the loop. */
  deinitProcess(): unknown {
    return undefined;
  }

  /** The child's work: `initProcess`, the `runProcess` loop until the stop flag, `deinitProcess`. */
  override async run(): Promise<void> {
    await this.initProcess();
    console.log(`[${this.flag}] process initialized!`);
    for (;;) {
      if (this.queueHandler.get(this.internalQueueName) === STOP) {
        console.log(`[${this.flag}] stop flag received`);
        break;
      }
      await this.runProcess();
      // Let timers and other tasks of the child run between turns.
      await new Promise((r) => setTimeout(r, this.idleMs));
    }
    await this.deinitProcess();
    console.log(`[${this.flag}] process successfully stopped!`);
  }

  /** Starts the child; resolves once it began (see {@linkcode Process.start}). */
  startProcess(): Promise<void> {
    return this.start();
  }

  /**
   * Sends the stop flag through the internal queue; the child ends after its
   * current turn. The promise resolves when it has ended (awaiting it is
   * optional: a running child keeps the program alive anyway).
   */
  stopProcess(): Promise<void> {
    this.queueHandler.put(this.internalQueueName, STOP);
    return this.exitCode === null && this.isAlive()
      ? this.join()
      : Promise.resolve();
  }
}
