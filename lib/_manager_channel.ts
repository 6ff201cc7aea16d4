/**
 * How a manager's proxies reach its server: a local channel (MessagePort +
 * a SharedArrayBuffer reply counter, for processes of this program) or a TCP
 * channel (authenticated, length-prefixed `node:v8` frames, for other
 * programs). Both cross into child processes: a local channel asks the
 * server for a fresh channel for the child; a TCP channel carries the
 * address and key, and the child connects on its first call.
 *
 * Every wait is bounded by the server's liveness: a local channel re-checks
 * the server process (process table) and the channel's closed flag at least
 * every `SLICE_MS`; a TCP channel sees the socket close. So a call to a
 * manager that is shut down or dead rejects with `EOFError`, never hangs.
 *
 * @module
 */

import { receiveMessageOnPort } from "node:worker_threads";
import { deserialize, serialize } from "node:v8";
import { reduceSymbol, registerRebuilder } from "./reduction.ts";
import type { Reduced } from "./reduction.ts";
import { currentIdent, isIdentAlive } from "./_proctable.ts";
import { SLICE_MS, waitAsync } from "./_wait.ts";
import { AuthenticationError, EOFError } from "./errors.ts";
import {
  CLOSED,
  fromWire,
  HOLDER,
  OP_ADOPT,
  OP_HELLO,
  type Reply,
  type Request,
  RESP,
  WORDS,
} from "./_manager_wire.ts";
import { encodeFrame, FrameReader, MAX_FRAME, writeAll } from "./_frames.ts";
import { answerChallenge, deliverChallenge, hmacKey } from "./_auth.ts";

const TAG = "mp.ManagerChannel";

/** A TCP address. */
export interface Address {
  /** Host name or IP address. */
  hostname: string;
  /** Port number. */
  port: number;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  blocking: boolean;
}

/** What proxies need of a channel to their manager (internal). */
export interface ProxyChannel {
  /** The server's random id (to tell proxies of different managers apart). */
  readonly serverId: string;
  /** Sends a request and waits for its reply. */
  call(
    op: number,
    a?: unknown,
    b?: unknown,
    c?: unknown,
    blocking?: boolean,
  ): Promise<unknown>;
  /** Closes the channel; pending and later calls reject with `reason`. */
  close(reason: string): void;
}

/** How long a call may block the thread in `Atomics.wait` for a quick reply. */
const SPIN_MS = 0.2;

/** A channel to a server of this program, over a MessagePort. */
export class LocalChannel implements ProxyChannel {
  readonly serverId: string;
  readonly serverIdent: number;
  #port: MessagePort;
  #ctl: Int32Array;
  #pending = new Map<number, Pending>();
  #seq = 0;
  #blocking = 0;
  #pumping = false;
  #skip = 0;
  #backoff = 0;
  #closed: string | null = null;

  constructor(
    port: MessagePort,
    sab: SharedArrayBuffer,
    serverIdent: number,
    serverId: string,
  ) {
    this.#port = port;
    this.#ctl = new Int32Array(sab);
    this.serverIdent = serverIdent;
    this.serverId = serverId;
    Atomics.store(this.#ctl, HOLDER, currentIdent());
  }

  /** Waits for the server's first message (call id -1): its start report. */
  expectStart(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#pending.set(-1, { resolve, reject, blocking: true });
      this.#blocking++;
      this.#pump();
    });
  }

  #gone(): string | null {
    if (this.#closed !== null) return this.#closed;
    if (Atomics.load(this.#ctl, CLOSED) === 1) {
      return "the manager's server closed this channel (the manager was shut down)";
    }
    if (!isIdentAlive(this.serverIdent)) {
      return "the manager's server process has ended (the manager was shut down, or its process ended)";
    }
    return null;
  }

  call(
    op: number,
    a?: unknown,
    b?: unknown,
    c?: unknown,
    blocking = false,
  ): Promise<unknown> {
    const gone = this.#gone();
    if (gone !== null) return Promise.reject(new EOFError(gone));
    const id = ++this.#seq;
    try {
      this.#port.postMessage([id, op, a, b, c] satisfies Request);
    } catch (e) {
      return Promise.reject(
        new TypeError(
          `the value cannot be sent to the manager: ${(e as Error).message}`,
        ),
      );
    }
    const p = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, blocking });
    });
    if (blocking) this.#blocking++;
    this.#pump();
    return p;
  }

  #dispatch(msg: Reply): void {
    const p = this.#pending.get(msg[0]);
    if (!p) return;
    this.#pending.delete(msg[0]);
    if (p.blocking) this.#blocking--;
    if (msg[1]) p.resolve(msg[2]);
    else p.reject(fromWire(msg[2]));
  }

  #drain(): void {
    while (true) {
      const r = receiveMessageOnPort(this.#port as never) as
        | { message: Reply }
        | undefined;
      if (!r) return;
      this.#dispatch(r.message);
    }
  }

  #failAll(reason: string): void {
    const err = new EOFError(reason);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#blocking = 0;
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#loop();
  }

  async #loop(): Promise<void> {
    // The finally runs in the same tick as the loop's end, before any
    // caller's continuation: a call made after it starts a new loop.
    try {
      const ctl = this.#ctl;
      while (this.#pending.size > 0) {
        const seen = Atomics.load(ctl, RESP);
        if (this.#closed === null) this.#drain();
        if (this.#pending.size === 0) return;
        const gone = this.#gone();
        if (gone !== null) {
          if (this.#closed === null) this.#drain();
          this.#failAll(gone);
          return;
        }
        // A quick reply is usually there within tens of microseconds: wait for
        // it blocking (cheap), and only then fall back to an async wait.
        // Backs off when replies keep taking longer (a loaded server).
        if (this.#blocking === 0) {
          if (this.#skip > 0) this.#skip--;
          else if (Atomics.wait(ctl, RESP, seen, SPIN_MS) !== "timed-out") {
            this.#backoff = 0;
            continue;
          } else {
            this.#backoff = Math.min(this.#backoff * 2 + 1, 256);
            this.#skip = this.#backoff;
          }
        }
        await waitAsync(ctl, RESP, seen, SLICE_MS);
      }
    } finally {
      this.#pumping = false;
    }
  }

  close(reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    this.#failAll(reason);
    this.#port.close();
  }

  /** A new channel to the same server, for another process. */
  [reduceSymbol](): Reduced {
    const gone = this.#gone();
    if (gone !== null) {
      throw new EOFError(`cannot send a manager proxy: ${gone}`);
    }
    const { port1, port2 } = new MessageChannel();
    const sab = new SharedArrayBuffer(WORDS * 4);
    // Until the receiver takes it, the channel is held by this process.
    new Int32Array(sab)[HOLDER] = currentIdent();
    this.#port.postMessage([0, OP_ADOPT, port2, sab] satisfies Request, [
      port2,
    ]);
    return {
      tag: TAG,
      state: ["local", port1, sab, this.serverIdent, this.serverId],
      transfer: [port1],
    };
  }
}

function describeAddress(a: Address): string {
  return `${a.hostname}:${a.port}`;
}

/** A channel to a server over TCP (another program, or this one). */
export class TcpChannel implements ProxyChannel {
  serverId: string;
  readonly address: Address;
  readonly authkey: Uint8Array;
  readonly maxFrame: number;
  #conn?: Deno.Conn;
  #reader?: FrameReader;
  #ready?: Promise<void>;
  #pending = new Map<number, Pending>();
  #seq = 0;
  #reading = false;
  #writing: Promise<void> = Promise.resolve();
  #closed: string | null = null;

  constructor(
    address: Address,
    authkey: Uint8Array,
    serverId = "",
    maxFrame = MAX_FRAME,
  ) {
    this.address = address;
    this.authkey = authkey;
    this.serverId = serverId;
    this.maxFrame = maxFrame;
  }

  /** Connects and authenticates (once); later calls reuse the connection. */
  connect(): Promise<void> {
    this.#ready ??= this.#open();
    return this.#ready;
  }

  async #open(): Promise<void> {
    const where = describeAddress(this.address);
    let conn: Deno.Conn;
    try {
      conn = await Deno.connect({
        hostname: this.address.hostname,
        port: this.address.port,
        transport: "tcp",
      });
    } catch (e) {
      const err = new EOFError(
        `cannot reach the manager at ${where}: ${
          (e as Error).message
        } (is the serving program running, on that address?)`,
      );
      this.#closed = err.message;
      throw err;
    }
    const reader = new FrameReader(conn, this.maxFrame);
    try {
      const key = await hmacKey(this.authkey);
      await answerChallenge(reader, conn, key);
      await deliverChallenge(reader, conn, key);
    } catch (e) {
      try {
        conn.close();
      } catch {
        // already closed
      }
      const err = e instanceof AuthenticationError
        ? new AuthenticationError(`manager at ${where}: ${e.message}`)
        : new AuthenticationError(
          `manager at ${where}: the connection broke during authentication (${
            (e as Error).message
          }); is it a manager, with the same authkey?`,
        );
      this.#closed = err.message;
      throw err;
    }
    if (this.#closed !== null) {
      conn.close();
      throw new EOFError(this.#closed);
    }
    this.#conn = conn;
    this.#reader = reader;
    const hello = await this.#send(OP_HELLO) as { serverId: string };
    this.serverId = hello.serverId;
  }

  async call(
    op: number,
    a?: unknown,
    b?: unknown,
    c?: unknown,
  ): Promise<unknown> {
    if (this.#closed !== null) throw new EOFError(this.#closed);
    if (!this.#conn) await this.connect();
    return this.#send(op, a, b, c);
  }

  #send(op: number, a?: unknown, b?: unknown, c?: unknown): Promise<unknown> {
    if (this.#closed !== null) {
      return Promise.reject(new EOFError(this.#closed));
    }
    const id = ++this.#seq;
    let frame: Uint8Array;
    try {
      frame = encodeFrame(serialize([id, op, a, b, c] satisfies Request));
    } catch (e) {
      return Promise.reject(
        new TypeError(
          `the value cannot be sent to the manager: ${(e as Error).message}`,
        ),
      );
    }
    if (frame.length - 4 > this.maxFrame) {
      return Promise.reject(
        new RangeError(
          `the request is ${
            frame.length - 4
          } bytes, more than the frame limit of ${this.maxFrame} bytes`,
        ),
      );
    }
    const p = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, blocking: false });
    });
    const conn = this.#conn!;
    this.#writing = this.#writing.then(() => writeAll(conn, frame)).catch(
      (e) => this.#fail(`lost the connection: ${(e as Error).message}`),
    );
    if (!this.#reading) this.#readLoop();
    return p;
  }

  async #readLoop(): Promise<void> {
    this.#reading = true;
    try {
      while (this.#pending.size > 0) {
        const frame = await this.#reader!.read();
        if (frame === null) {
          this.#fail("the manager closed the connection");
          return;
        }
        const msg = deserialize(frame) as Reply;
        const p = this.#pending.get(msg[0]);
        if (!p) continue;
        this.#pending.delete(msg[0]);
        if (msg[1]) p.resolve(msg[2]);
        else p.reject(fromWire(msg[2]));
      }
    } catch (e) {
      this.#fail(`lost the connection: ${(e as Error).message}`);
    } finally {
      this.#reading = false;
    }
  }

  #fail(reason: string): void {
    if (this.#closed === null) {
      this.#closed = `manager at ${describeAddress(this.address)}: ${reason}`;
    }
    const err = new EOFError(this.#closed);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
  }

  close(reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    this.#fail(reason);
  }

  /** The child connects by itself, with the same address and key. */
  [reduceSymbol](): Reduced {
    return {
      tag: TAG,
      state: [
        "tcp",
        this.address.hostname,
        this.address.port,
        this.authkey,
        this.serverId,
        this.maxFrame,
      ],
    };
  }
}

registerRebuilder(TAG, (state) => {
  const s = state as unknown[];
  if (s[0] === "local") {
    return new LocalChannel(
      s[1] as MessagePort,
      s[2] as SharedArrayBuffer,
      s[3] as number,
      s[4] as string,
    );
  }
  return new TcpChannel(
    { hostname: s[1] as string, port: s[2] as number },
    s[3] as Uint8Array,
    s[4] as string,
    s[5] as number,
  );
});
