/**
 * A manager's server: the loop that runs in the manager's own process (a
 * worker started by `Manager.start()`), owns the shared objects and answers
 * proxies' calls.
 *
 * Local clients reach it over MessagePorts (one per process that holds
 * proxies), with a small SharedArrayBuffer per channel whose counter the
 * server bumps after each reply, so clients sleep on shared memory instead
 * of keeping a listener. With an `address`, it also listens on TCP: each
 * connection authenticates both ways (HMAC challenge-response, as Python's
 * `multiprocessing.connection`) before it may reach any object, then speaks
 * length-prefixed `node:v8` frames. A connection that breaks the protocol
 * (bad frame, too long, garbage, wrong key) is closed alone; every other
 * client goes on. Clients that are gone (closed socket, ended process) lose
 * their waits and the locks they held.
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";
import { isIdentAlive } from "./_proctable.ts";
import { type Caller, KINDS } from "./_manager_objects.ts";
import {
  CLOSED,
  HOLDER,
  OP_ADOPT,
  OP_CALL,
  OP_CREATE,
  OP_GET,
  OP_HELLO,
  OP_REGISTER,
  OP_SHUTDOWN,
  type Reply,
  type Request,
  RESP,
  toWire,
} from "./_manager_wire.ts";
import { encodeFrame, FrameReader, writeAll } from "./_frames.ts";
import { answerChallenge, deliverChallenge, hmacKey } from "./_auth.ts";
import { ProcessError } from "./errors.ts";
import { reduceSymbol, registerRebuilder } from "./reduction.ts";
import type { Reduced } from "./reduction.ts";

const BOOT_TAG = "mp.ManagerBoot";

/** The owner's end of the first channel, handed to the server at start. */
export class BootChannel {
  /** Wraps the server's end of the owner's channel. */
  constructor(readonly port: MessagePort, readonly sab: SharedArrayBuffer) {}
  /** The port moves to the server process. */
  [reduceSymbol](): Reduced {
    return {
      tag: BOOT_TAG,
      state: [this.port, this.sab],
      transfer: [this.port],
    };
  }
}

registerRebuilder(BOOT_TAG, (state) => {
  const [port, sab] = state as [MessagePort, SharedArrayBuffer];
  return new BootChannel(port, sab);
});

/** How the server is to run. */
export interface ServerConfig {
  /** Random id of this server, so proxies know whose they are. */
  serverId: string;
  /** Where to listen on TCP, if at all. */
  address?: { hostname: string; port: number };
  /** The TCP clients' shared secret. */
  authkey?: Uint8Array;
  /** Longest TCP frame accepted. */
  maxFrame: number;
  /** How long a TCP client may take to authenticate (ms). */
  authTimeout: number;
}

interface ServedObject {
  kind: string;
  value: unknown;
}

abstract class Client implements Caller {
  static #next = 1;
  readonly id: number = Client.#next++;
  closed = false;
  #onClose = new Set<() => void>();

  onClose(fn: () => void): () => void {
    this.#onClose.add(fn);
    return () => this.#onClose.delete(fn);
  }

  abstract send(reply: Reply): void;
  abstract readonly local: boolean;

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of [...this.#onClose]) fn();
    this.#onClose.clear();
    this.closeTransport();
  }

  protected abstract closeTransport(): void;
}

class LocalClient extends Client {
  readonly local = true;
  readonly ctl: Int32Array;
  constructor(readonly port: MessagePort, sab: SharedArrayBuffer) {
    super();
    this.ctl = new Int32Array(sab);
  }
  send(reply: Reply): void {
    this.port.postMessage(reply);
    Atomics.add(this.ctl, RESP, 1);
    Atomics.notify(this.ctl, RESP);
  }
  holderAlive(): boolean {
    return isIdentAlive(Atomics.load(this.ctl, HOLDER));
  }
  protected closeTransport(): void {
    Atomics.store(this.ctl, CLOSED, 1);
    Atomics.add(this.ctl, RESP, 1);
    Atomics.notify(this.ctl, RESP);
    this.port.onmessage = null;
    this.port.close();
  }
}

class TcpClient extends Client {
  readonly local = false;
  #writing: Promise<void> = Promise.resolve();
  constructor(readonly conn: Deno.Conn, readonly maxFrame: number) {
    super();
  }
  send(reply: Reply): void {
    let frame: Uint8Array;
    try {
      frame = encodeFrame(serialize(reply));
      if (frame.length - 4 > this.maxFrame) {
        throw new RangeError(
          `it is ${
            frame.length - 4
          } bytes, more than the frame limit of ${this.maxFrame} bytes`,
        );
      }
    } catch (e) {
      frame = encodeFrame(serialize([
        reply[0],
        false,
        toWire(
          new TypeError(
            `the result cannot be sent over TCP: ${(e as Error).message}`,
          ),
        ),
      ]));
    }
    this.#writing = this.#writing.then(() => writeAll(this.conn, frame))
      .catch(() => this.close());
  }
  protected closeTransport(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

class Server {
  readonly objects = new Map<number, ServedObject>();
  readonly names = new Map<string, number>();
  readonly clients = new Set<Client>();
  #nextId = 1;
  #listener?: Deno.Listener;
  #sweeper?: ReturnType<typeof setInterval>;
  #key?: CryptoKey;
  #stopped = false;
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(readonly config: ServerConfig) {
    this.done = new Promise((r) => this.#resolveDone = r);
  }

  async start(
    owner: LocalClient,
  ): Promise<{ hostname: string; port: number } | undefined> {
    this.adopt(owner);
    // Drop channels whose process ended: their waits and locks go.
    this.#sweeper = setInterval(() => {
      for (const c of this.clients) {
        if (c instanceof LocalClient && c !== owner && !c.holderAlive()) {
          this.drop(c);
        }
      }
    }, 500);
    const a = this.config.address;
    if (!a) return undefined;
    this.#key = await hmacKey(this.config.authkey!);
    const listener = Deno.listen({
      hostname: a.hostname,
      port: a.port,
      transport: "tcp",
    });
    this.#listener = listener;
    this.#accept(listener);
    const addr = listener.addr as Deno.NetAddr;
    return { hostname: addr.hostname, port: addr.port };
  }

  adopt(c: LocalClient): void {
    this.clients.add(c);
    c.port.onmessage = (e: MessageEvent) => this.handle(c, e.data);
  }

  drop(c: Client): void {
    this.clients.delete(c);
    c.close();
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    while (!this.#stopped) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        if (this.#stopped) return;
        continue;
      }
      this.#serveTcp(conn);
    }
  }

  async #serveTcp(conn: Deno.Conn): Promise<void> {
    const client = new TcpClient(conn, this.config.maxFrame);
    this.clients.add(client);
    const reader = new FrameReader(conn, this.config.maxFrame);
    const timer = setTimeout(() => this.drop(client), this.config.authTimeout);
    try {
      await deliverChallenge(reader, conn, this.#key!);
      await answerChallenge(reader, conn, this.#key!);
    } catch {
      // Wrong key, garbage or a silent peer: nothing was reachable.
      this.drop(client);
      return;
    } finally {
      clearTimeout(timer);
    }
    try {
      while (!client.closed) {
        const frame = await reader.read();
        if (frame === null) break;
        const msg = deserialize(frame);
        if (!isRequest(msg) || msg[1] === OP_ADOPT) break;
        this.handle(client, msg);
      }
    } catch {
      // A broken frame or connection: this client only.
    }
    this.drop(client);
  }

  handle(c: Client, msg: Request): void {
    const id = msg[0];
    let result: unknown;
    try {
      result = this.#dispatch(c, msg);
    } catch (e) {
      if (id !== 0 && !c.closed) c.send([id, false, toWire(e)]);
      return;
    }
    if (id === 0) return;
    if (result instanceof Promise) {
      result.then(
        (v) => !c.closed && c.send([id, true, v]),
        (e) => !c.closed && c.send([id, false, toWire(e)]),
      );
    } else if (!c.closed) c.send([id, true, result]);
  }

  #dispatch(c: Client, msg: Request): unknown {
    const [, op, a, b, d] = msg;
    switch (op) {
      case OP_CALL: {
        const obj = this.objects.get(a as number);
        if (!obj) {
          throw new ReferenceError(
            `the manager holds no object with id ${String(a)}`,
          );
        }
        const methods = KINDS[obj.kind].methods;
        if (typeof b !== "string" || !Object.hasOwn(methods, b)) {
          throw new TypeError(
            `a ${obj.kind} proxy has no method ${
              typeof b === "string" ? `'${b}'` : String(b)
            }; its methods are: ${Object.keys(methods).join(", ")}`,
          );
        }
        if (!Array.isArray(d)) {
          throw new TypeError("the arguments of a call must be an array");
        }
        return methods[b](obj.value, d, c);
      }
      case OP_CREATE: {
        if (typeof a !== "string" || !Object.hasOwn(KINDS, a)) {
          throw new TypeError(
            `a manager cannot create a '${String(a)}'; it makes: ${
              Object.keys(KINDS).join(", ")
            }`,
          );
        }
        const value = KINDS[a].create(Array.isArray(b) ? b : []);
        const oid = this.#nextId++;
        this.objects.set(oid, { kind: a, value });
        return [oid, a];
      }
      case OP_REGISTER: {
        if (typeof a !== "string" || a === "") {
          throw new TypeError(
            `register(name, proxy): name must be a non-empty string, got ${typeof a}`,
          );
        }
        if (!this.objects.has(b as number)) {
          throw new ReferenceError(
            `register('${a}'): the manager holds no object with id ${
              String(b)
            }`,
          );
        }
        this.names.set(a, b as number);
        return undefined;
      }
      case OP_GET: {
        const oid = typeof a === "string" ? this.names.get(a) : undefined;
        if (oid === undefined) {
          const known = [...this.names.keys()];
          throw new ReferenceError(
            `no object is registered as '${String(a)}' on this manager; ${
              known.length
                ? `registered names: ${known.join(", ")}`
                : "nothing is registered (the serving program calls register(name, proxy))"
            }`,
          );
        }
        return [oid, this.objects.get(oid)!.kind];
      }
      case OP_HELLO:
        return { serverId: this.config.serverId };
      case OP_ADOPT: {
        if (!c.local) throw new TypeError("adopt is local only");
        this.adopt(new LocalClient(a as MessagePort, b as SharedArrayBuffer));
        return undefined;
      }
      case OP_SHUTDOWN: {
        if (!c.local) {
          throw new ProcessError(
            "only the program that started the manager can shut it down",
          );
        }
        queueMicrotask(() => this.stop());
        return undefined;
      }
      default:
        throw new TypeError(`unknown manager request ${String(op)}`);
    }
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#sweeper);
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    for (const c of [...this.clients]) this.drop(c);
    this.#resolveDone();
  }
}

function isRequest(msg: unknown): msg is Request {
  return Array.isArray(msg) && msg.length >= 2 && msg.length <= 5 &&
    typeof msg[0] === "number" && typeof msg[1] === "number";
}

/**
 * The target of a manager's server process: serves until shut down.
 * Internal; `Manager.start()` runs it.
 *
 * @example
 * ```ts ignore
 * // Started by Manager.start(); not called directly.
 * ```
 */
export async function managerServer(
  config: ServerConfig,
  boot: BootChannel,
): Promise<void> {
  const server = new Server(config);
  const owner = new LocalClient(boot.port, boot.sab);
  let address: { hostname: string; port: number } | undefined;
  try {
    address = await server.start(owner);
  } catch (e) {
    owner.send([-1, false, toWire(e)]);
    server.stop();
    return;
  }
  owner.send([-1, true, { address }]);
  await server.done;
}
