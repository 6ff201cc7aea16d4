/**
 * Reference counting of manager proxies, as Python's proxies do it: each
 * proxy made in a process counts one reference in the server, for its
 * channel; it goes when the proxy is disposed of or collected.
 *
 * @module
 */

import type { BaseProxy } from "./proxy.ts";
import type { ProxyChannel as Channel } from "./_channel.ts";
import { OP_DECREF } from "./_wire.ts";

export interface ProxyRef {
  channel: Channel;
  id: number;
  kind: string;
  /** Whether the server counts a reference for this proxy (made by makeProxy). */
  counted: boolean;
  /** Set by dispose() (or collection): calls then fail. */
  disposed: boolean;
  /** Calls in progress. */
  inflight: number;
  /** The proxy itself while calls are in progress, so it is not collected meanwhile. */
  self: BaseProxy | null;
}

export const refs = new WeakMap<BaseProxy, ProxyRef>();

export function refOf(p: BaseProxy): ProxyRef {
  const r = refs.get(p);
  if (!r) throw new TypeError("not a manager proxy");
  return r;
}

export function disposedError(r: ProxyRef, what: string): ReferenceError {
  return new ReferenceError(
    `${what}: this ${r.kind} proxy (object ${r.id}) was disposed of; ` +
      `use another proxy of the object (manager.get(name), or one kept elsewhere)`,
  );
}

// Reference counting, as Python's proxies do: each proxy made in a process
// counts one reference in the server, for its channel; it goes when the
// proxy is disposed of or collected (batched: one message a channel).

const pendingDecrefs = new Map<Channel, number[]>();

function flushDecrefs(): void {
  for (const [channel, ids] of pendingDecrefs) {
    channel.call(OP_DECREF, ids).catch(() => {}); // a gone server holds nothing
  }
  pendingDecrefs.clear();
}

export function dropReference(channel: Channel, id: number): void {
  if (pendingDecrefs.size === 0) queueMicrotask(flushDecrefs);
  const ids = pendingDecrefs.get(channel);
  if (ids) ids.push(id);
  else pendingDecrefs.set(channel, [id]);
}

export const collected = new FinalizationRegistry<ProxyRef>((r) => {
  if (r.disposed) return;
  r.disposed = true;
  dropReference(r.channel, r.id);
});

/** Calls whose arguments hold proxies: kept alive until the server has them. */
export const sending = new Set<unknown[]>();

let tokenPrefix = "";
let tokenCount = 0;

/** A token unique to one sending of a proxy, in any process of any program. */
export function nextToken(): string {
  if (tokenPrefix === "") tokenPrefix = crypto.randomUUID();
  return `${tokenPrefix}:${++tokenCount}`;
}
