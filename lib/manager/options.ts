/**
 * The options of `Manager.start()` and `Manager.connect()`, and their checks.
 *
 * @module
 */

import type { Address } from "./_channel.ts";
import { MAX_FRAME } from "../wire/_frames.ts";

/**
 * Options of {@linkcode Manager.start}.
 *
 * @example
 * ```ts
 * import { Manager, type ManagerOptions } from "@mp/multiprocessing";
 * const options: ManagerOptions = { address: { hostname: "127.0.0.1", port: 0 }, authkey: "a-secret-of-16-bytes+" };
 * if (import.meta.main) {
 *   await using server = await Manager.start(options);
 *   console.log(server.address?.port); // the port picked
 * }
 * ```
 */
export interface ManagerOptions {
  /**
   * Listen on TCP too, so other programs can `Manager.connect()`: e.g.
   * `{ hostname: "127.0.0.1", port: 0 }` (port 0 picks a free port; read it
   * from `manager.address`). Needs `authkey`.
   */
  address?: { hostname?: string; port: number };
  /** The secret TCP clients must prove they know (string or bytes). */
  authkey?: string | Uint8Array;
  /** The server process's name (default `SyncManager-N`). */
  name?: string;
  /** Longest TCP message accepted, in bytes (default 64 MiB). */
  maxFrameBytes?: number;
  /**
   * How long a TCP client may pause in the middle of a message before the
   * server drops its connection (ms, default 30,000): a message that stops
   * arriving would hold its bytes for good.
   */
  frameTimeout?: number;
}

/**
 * One object of a manager's server, as {@linkcode Manager.debugInfo} lists it.
 *
 * @example
 * ```ts
 * import { Manager, type ManagerObjectInfo } from "@mp/multiprocessing";
 * await using manager = await Manager.start();
 * const l = await manager.list();
 * const [info]: ManagerObjectInfo[] = await manager.debugInfo();
 * console.log(info.id === l.id, info.kind, info.refs); // true list 1
 * ```
 */
export interface ManagerObjectInfo {
  /** The object's id (a proxy's `id`). */
  id: number;
  /** Its kind (`"list"`, `"dict"`, ...). */
  kind: string;
  /** How many references hold it (it is deleted when none is left). */
  refs: number;
}

/**
 * Options of {@linkcode Manager.connect}.
 *
 * @example
 * ```ts
 * import { Manager, type ConnectOptions } from "@mp/multiprocessing";
 * if (import.meta.main) {
 *   await using server = await Manager.start({ address: { port: 0 }, authkey: "a-secret-of-16-bytes+" });
 *   const options: ConnectOptions = { address: server.address!, authkey: "a-secret-of-16-bytes+" };
 *   await using client = await Manager.connect(options);
 *   console.log(client.address?.port === server.address?.port); // true
 * }
 * ```
 */
export interface ConnectOptions {
  /** The manager's address (`manager.address` of the serving program). */
  address: { hostname?: string; port: number };
  /** The manager's secret. */
  authkey: string | Uint8Array;
  /** Longest TCP message accepted, in bytes (default 64 MiB). */
  maxFrameBytes?: number;
  /**
   * How long connecting and authenticating may take, in ms (default
   * 10 000): past it, `TimeoutError`.
   */
  timeoutMs?: number;
}

export function checkAddress(a: unknown, what: string): Address {
  const o = a as { hostname?: unknown; port?: unknown } | null;
  if (
    o === null || typeof o !== "object" || typeof o.port !== "number" ||
    !Number.isInteger(o.port) || o.port < 0 || o.port > 65535 ||
    (o.hostname !== undefined && typeof o.hostname !== "string")
  ) {
    throw new TypeError(
      `${what} must be { hostname?: string, port: 0..65535 }, got ${
        JSON.stringify(a)
      }; e.g. { hostname: "127.0.0.1", port: 50000 }`,
    );
  }
  return { hostname: (o.hostname as string) || "127.0.0.1", port: o.port };
}

export function checkFrameTimeout(ms: unknown): number {
  if (ms === undefined) return 30_000;
  if (typeof ms !== "number" || !(ms > 0) || ms > 2 ** 31 - 1) {
    throw new RangeError(
      `frameTimeout must be a number of ms in (0, 2 ** 31 - 1], got ${
        String(ms)
      }; e.g. frameTimeout: 30_000`,
    );
  }
  return ms;
}

export function checkFrame(n: unknown): number {
  if (n === undefined) return MAX_FRAME;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1024) {
    throw new RangeError(
      `maxFrameBytes must be an integer of at least 1024, got ${String(n)}`,
    );
  }
  return n;
}
