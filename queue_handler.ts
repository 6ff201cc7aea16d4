/**
 * Seed 000's application classes, built on the module's public API
 * (`@mp/multiprocessing/queue_handler`): {@linkcode QueueHandler}, a set of
 * named queues, and {@linkcode MultiprocessingBase}, a process that runs
 * `runProcess()` in a loop until it is stopped through its own internal
 * queue. They are a helper for programs written in seed 000's style, not part
 * of Python's `multiprocessing`, so they live apart from `mod.ts`.
 *
 * @example Counting in a child until stopped
 * ```ts
 * import {
 *   MultiprocessingBase,
 *   QueueHandler,
 * } from "@mp/multiprocessing/queue_handler";
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
 *   handler.initQueue("ticks");
 *   const ticker = new Ticker(handler);
 *   await ticker.startProcess();
 *   await new Promise((r) => setTimeout(r, 100));
 *   await ticker.stopProcess();
 *   console.log(handler.get("ticks")); // 0
 * }
 * ```
 *
 * @module
 */
export * from "./lib/queue_handler.ts";
