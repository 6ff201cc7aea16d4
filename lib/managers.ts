/**
 * Managers: Python's `multiprocessing.Manager`. A server process owns
 * shared objects (list, dict, Namespace, Value, Array, Queue, Lock, RLock,
 * Semaphore, Event, Condition, Barrier); other processes use them through
 * async proxies. Proxies cross into child processes inside `args` (or
 * through a Pipe, or as items of a manager Queue) and keep working there. With an `address` and an `authkey`, the manager also serves other
 * programs over TCP, after an HMAC challenge-response in both directions.
 *
 * @example
 * ```ts
 * import { Manager, Process, type ListProxy } from "@mp/multiprocessing";
 *
 * export async function addRecord(records: ListProxy<[string, number]>) {
 *   await records.append(["Jeff", 8]);
 * }
 *
 * if (import.meta.main) {
 *   await using manager = await Manager.start();
 *   const records = await manager.list<[string, number]>([["Sam", 10]]);
 *   const p = new Process({ target: addRecord, args: [records] });
 *   await p.start();
 *   await p.join();
 *   console.log(await records.toArray()); // [ [ "Sam", 10 ], [ "Jeff", 8 ] ]
 * }
 * ```
 *
 * @module
 */

export { BaseProxy } from "./manager/proxy.ts";
export type { AutoProxy, ProxyMethods } from "./manager/proxy.ts";
export {
  ArrayProxy,
  BarrierProxy,
  ConditionProxy,
  DictProxy,
  EventProxy,
  ListProxy,
  LockProxy,
  NamespaceProxy,
  QueueProxy,
  ValueProxy,
} from "./manager/proxies.ts";
export type {
  ProxyAcquireOptions,
  ProxyBarrierOptions,
  ProxyQueueWaitOptions,
} from "./manager/proxies.ts";
export type {
  ConnectOptions,
  ManagerObjectInfo,
  ManagerOptions,
} from "./manager/options.ts";
export type { ManagedClass, RegisterOptions } from "./manager/classes.ts";
export { Manager } from "./manager/manager.ts";
export type { Address, ProxyChannel } from "./manager/_channel.ts";
