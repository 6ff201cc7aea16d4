/**
 * How a manager's proxies reach its server: a local channel (MessagePort +
 * a SharedArrayBuffer reply counter, for processes of this program) or a TCP
 * channel (authenticated, length-prefixed frames in the codec's encoding,
 * for other programs). Both cross into child processes: a local channel asks the
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

import { loadThreads, threads } from "../process/_threads.ts";
import { reduceSymbol, registerRebuilder } from "../reduction.ts";
import type { Reduced } from "../reduction.ts";
import { currentIdent, isIdentAlive } from "../shm/_proctable.ts";
import { SLICE_MS, waitAsync } from "../shm/_wait.ts";
import {
  AuthenticationError,
  EOFError,
  ProcessError,
  RemoteError,
  TimeoutError,
} from "../errors.ts";
import {
  CHANNEL_BYTES,
  CLOSED,
  decoder,
  DOOR,
  encoder,
  FAST_BYTES,
  FREQ,
  FREQ_LEN,
  FRESP,
  FRESP_LEN,
  fromPort,
  HOLDER,
  OP_ADOPT,
  OP_HELLO,
  OP_RELEASE,
  postToPort,
  type Reply,
  REPLY_AT,
  REQ_AT,
  type Request,
  RESP,
  ringForPort,
} from "./_wire.ts";
import { Decoder } from "../wire/_codec.ts";
import { Spinner } from "../shm/_spin.ts";
import { FrameReader, FrameWriter, MAX_FRAME } from "../wire/_frames.ts";
import { answerChallenge, deliverChallenge, hmacKey } from "./_auth.ts";
import {
  rebuildError,
  type WireError,
  wireErrorOf,
  withRebuiltError,
} from "../wire/_error.ts";

const TAG = "mp.ManagerChannel";

/**
 * A request the codec refused, as the caller sees it: the culprit's path
 * from the call's arguments (`args[1]`), not from the request (`item[4][1]`).
 */
function unsendable(e: unknown): TypeError {
  const why = String((e as Error)?.message ?? e).replace(/^item\[4\]/, "args");
  return new TypeError(`the value cannot be sent to the manager: ${why}`);
}
/**
 * An error from the server whose class is not known here. A local channel
 * imports the modules that name a user's error class (as a Pool's results
 * do); a TCP channel never imports what a remote server names, and rebuilds
 * only classes already loaded here.
 */
const fromServer = (w: WireError): Error =>
  new RemoteError(w, "the manager's server");

/**
 * A TCP address.
 *
 * @example
 * ```ts
 * import { Manager, type Address } from "@mp/multiprocessing";
 * if (import.meta.main) {
 *   await using server = await Manager.start({ address: { port: 0 }, authkey: "a-secret-of-16-bytes+" });
 *   const where: Address | undefined = server.address;
 *   console.log(where?.hostname, where?.port); // 127.0.0.1 and the port picked
 * }
 * ```
 */
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

/**
 * What proxies need of a channel to their manager (internal).
 *
 * @example
 * ```ts
 * import type { ProxyChannel } from "@mp/multiprocessing";
 * // Every proxy reaches its manager's server through a channel.
 * function serverOf(channel: ProxyChannel): string {
 *   return channel.serverId;
 * }
 * console.log(typeof serverOf); // "function"
 * ```
 */
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

/** How long a call may block the thread for a quick reply (ms). */
const FAST_MS = 0.2;
/** An async wait shorter than this (ms) means replies come quickly again. */
const REFAST_MS = 1;

/**
 * A channel to a server of this program. Calls go over a MessagePort; a call
 * made while no other call of the channel is pending (the usual `await`
 * loop) takes the fast lane instead: the request is encoded into the
 * channel's SharedArrayBuffer and the server's doorbell rung, the reply comes
 * back in the same buffer, and both sides wake by `Atomics` (far quicker
 * than a message event). Calls made while the fast lane is busy wait for it,
 * so calls are served in the order they are made. A call that has to wait
 * in the server (an acquire of a taken lock) frees the lane at once and gets
 * its reply by the port. The server never listens on the port: each message
 * sent on it rings the doorbell too (see `PORTS`).
 */
export class LocalChannel implements ProxyChannel {
  readonly serverId: string;
  readonly serverIdent: number;
  #port: MessagePort;
  #ctl: Int32Array;
  #bytes: Uint8Array;
  #door: Int32Array | null;
  #pending = new Map<number, Pending>();
  #seq = 0;
  #blocking = 0;
  #pumping = false;
  /** Whether replies come quickly (then a call blocks briefly for its reply). */
  #fast = true;
  #spinner = new Spinner();
  /** The spin of waiting calls (they fail more often: kept apart). */
  #blockingSpinner = new Spinner();
  #closed: string | null = null;
  /** The fast-lane call in flight: its request number and call id. */
  #fastBusy = false;
  #fastSeq = 0;
  #fastId = 0;
  /** Requests made while the fast lane was busy, sent in order after it. */
  #held: Request[] = [];

  constructor(
    port: MessagePort,
    sab: SharedArrayBuffer,
    serverIdent: number,
    serverId: string,
    door?: SharedArrayBuffer,
  ) {
    this.#port = port;
    this.#ctl = new Int32Array(sab);
    this.#bytes = new Uint8Array(sab);
    this.#door = door ? new Int32Array(door) : null;
    this.serverIdent = serverIdent;
    loadThreads(); // for receiveMessageOnPort, before it is needed
    this.serverId = serverId;
    Atomics.store(this.#ctl, HOLDER, currentIdent());
  }

  /** Waits for the server's first message (call id -1): its start report. */
  async expectStart(): Promise<{ address?: Address }> {
    const ready = await new Promise((resolve, reject) => {
      this.#pending.set(-1, { resolve, reject, blocking: true });
      this.#blocking++;
      this.#pump();
    }) as { address?: Address; door: SharedArrayBuffer };
    this.#door = new Int32Array(ready.door);
    return ready;
  }

  /** The shared memory of the server's doorbell (for channels made from this one). */
  get door(): SharedArrayBuffer | undefined {
    return this.#door?.buffer as SharedArrayBuffer | undefined;
  }

  /** Whether calls can still go through this channel. */
  get usable(): boolean {
    return this.#gone() === null;
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
    const req: Request = [id, op, a, b, c];
    const idle = this.#pending.size === 0;
    if (this.#fastBusy) this.#held.push(req);
    else if (!(idle && this.#sendFast(req))) {
      try {
        this.#post(req);
      } catch (e) {
        return Promise.reject(unsendable(e));
      }
    }
    const p = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, blocking });
    });
    if (blocking) this.#blocking++;
    this.#pump();
    return p;
  }

  /**
   * Sends `req` by the port, then rings the doorbell: the server takes port
   * messages when it rings (see `PORTS`), in the same loop as fast-lane ones.
   */
  #post(req: Request, transfer: Transferable[] = []): void {
    const door = this.#door;
    if (door === null) {
      // Only before the server's start report, when nothing is sent.
      throw new ProcessError("the manager's server has not started yet");
    }
    if (transfer.length > 0) this.#port.postMessage(req, transfer);
    else postToPort(this.#port, req);
    ringForPort(door);
  }

  /** Puts `req` in the fast lane; false when it does not fit (use the port). */
  #sendFast(req: Request): boolean {
    const door = this.#door;
    if (door === null) return false;
    let n: number;
    try {
      n = encoder.encode(req);
    } catch {
      return false; // structured clone by the port may take it
    }
    if (n > FAST_BYTES) return false;
    encoder.copyTo(this.#bytes, REQ_AT, 0, n);
    Atomics.store(this.#ctl, FREQ_LEN, n);
    this.#fastSeq = (Atomics.add(this.#ctl, FREQ, 1) + 1) | 0;
    this.#fastBusy = true;
    this.#fastId = req[0];
    Atomics.add(door, DOOR, 1);
    Atomics.notify(door, DOOR);
    return true;
  }

  /** Takes the fast-lane reply when it is there. */
  #takeFast(): void {
    if (!this.#fastBusy) return;
    if (Atomics.load(this.#ctl, FRESP) !== this.#fastSeq) return;
    const len = Atomics.load(this.#ctl, FRESP_LEN);
    const id = this.#fastId;
    this.#fastBusy = false;
    // len -1: the reply comes by the port (too big for the lane, or the
    // call waits in the server).
    if (len >= 0) {
      let reply: [boolean, unknown];
      try {
        reply = decoder.decode(this.#bytes, REPLY_AT, REPLY_AT + len) as [
          boolean,
          unknown,
        ];
      } catch (e) {
        reply = [false, {
          name: "TypeError",
          message: `a corrupt reply: ${(e as Error).message}`,
        }];
      }
      this.#dispatch([id, reply[0], reply[1]]);
    }
    // Calls made meanwhile go now, in order.
    const held = this.#held;
    if (held.length > 0) {
      this.#held = [];
      for (const req of held) {
        try {
          this.#post(req);
        } catch (e) {
          const p = this.#pending.get(req[0]);
          this.#pending.delete(req[0]);
          if (p?.blocking) this.#blocking--;
          p?.reject(unsendable(e));
        }
      }
    }
  }

  #dispatch(msg: Reply): void {
    const p = this.#pending.get(msg[0]);
    if (!p) return;
    this.#pending.delete(msg[0]);
    if (p.blocking) this.#blocking--;
    if (msg[1]) p.resolve(msg[2]);
    else {
      withRebuiltError(
        wireErrorOf(msg[2]),
        (e) => p.reject(e as Error),
        fromServer,
      );
    }
  }

  #drain(): void {
    while (true) {
      const r = threads().receiveMessageOnPort(this.#port as never) as
        | { message: Reply }
        | undefined;
      if (!r) return;
      this.#dispatch(fromPort(r.message) as Reply);
    }
  }

  #failAll(reason: string): void {
    this.#held = [];
    this.#fastBusy = false;
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
        if (this.#closed === null) {
          this.#takeFast();
          this.#drain();
        }
        if (this.#pending.size === 0) return;
        const gone = this.#gone();
        if (gone !== null) {
          if (this.#closed === null) this.#drain();
          this.#failAll(gone);
          return;
        }
        // A quick reply comes within microseconds: spin, then block briefly
        // (Spinner.spinThenBlock), else park async until replies are quick.
        // Never block while a call waits in the server (a lock's acquire):
        // another task here may be what it waits for (0.4 ms a call, not 0.05).
        if (this.#fast) {
          if (this.#blocking === 0) {
            if (this.#spinner.spinThenBlock(ctl, RESP, seen, FAST_MS)) continue;
            this.#fast = false;
          } else if (this.#blockingSpinner.spin(ctl, RESP, seen)) continue;
        }
        const t = performance.now();
        await waitAsync(ctl, RESP, seen, SLICE_MS);
        if (performance.now() - t < REFAST_MS) this.#fast = true;
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
    if (liveChannels.get(this.serverId) === this) {
      liveChannels.delete(this.serverId);
    }
  }

  /** A new channel to the same server, for another process. */
  [reduceSymbol](): Reduced {
    const gone = this.#gone();
    if (gone !== null) {
      throw new EOFError(`cannot send a manager proxy: ${gone}`);
    }
    const { port1, port2 } = new MessageChannel();
    const sab = new SharedArrayBuffer(CHANNEL_BYTES);
    // Until the receiver takes it, the channel is held by this process.
    new Int32Array(sab)[HOLDER] = currentIdent();
    this.#post([0, OP_ADOPT, port2, sab] satisfies Request, [port2]);
    const door = this.door;
    return {
      tag: TAG,
      state: ["local", port1, sab, this.serverIdent, this.serverId, door],
      transfer: [port1],
      // Not sent after all: the server drops the channel made for it.
      undo: () => giveBack(port1, door),
    };
  }
}

/**
 * Tells the server to drop the channel whose client end is `port` (one
 * made for a process that will not use it), and closes that end.
 */
function giveBack(port: MessagePort, door: SharedArrayBuffer | undefined) {
  port.postMessage([0, OP_RELEASE] satisfies Request);
  if (door) ringForPort(new Int32Array(door));
  port.close();
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
  /** How long connecting and authenticating may take (ms). */
  readonly timeoutMs: number;
  #conn?: Deno.Conn;
  #reader?: FrameReader;
  #ready?: Promise<void>;
  #pending = new Map<number, Pending>();
  #seq = 0;
  #reading = false;
  #writer?: FrameWriter;
  #decoder = new Decoder();
  #closed: string | null = null;

  constructor(
    address: Address,
    authkey: Uint8Array,
    serverId = "",
    maxFrame = MAX_FRAME,
    timeoutMs = 10_000,
  ) {
    this.address = address;
    this.authkey = authkey;
    this.serverId = serverId;
    this.maxFrame = maxFrame;
    this.timeoutMs = timeoutMs;
  }

  /** Connects and authenticates (once); later calls reuse the connection. */
  connect(): Promise<void> {
    this.#ready ??= this.#open();
    return this.#ready;
  }

  async #open(): Promise<void> {
    const where = describeAddress(this.address);
    // Bounds connecting and authenticating: a peer that accepts and then
    // says nothing (not a manager) must not hang us.
    let timedOut = false;
    let conn: Deno.Conn | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        try {
          conn?.close();
        } catch {
          // closed
        }
        reject(
          new TimeoutError(
            `no manager answered at ${where} within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
    });
    expired.catch(() => {});
    try {
      try {
        const connecting = Deno.connect({
          hostname: this.address.hostname,
          port: this.address.port,
          transport: "tcp",
        });
        // A connection that comes after the timeout is closed at once.
        connecting.then((c) => timedOut && c.close(), () => {});
        conn = await Promise.race([connecting, expired]);
      } catch (e) {
        if (e instanceof TimeoutError) throw e;
        throw new EOFError(
          `cannot reach the manager at ${where}: ${
            (e as Error).message
          } (is the serving program running, on that address?)`,
        );
      }
      const reader = new FrameReader(conn, this.maxFrame);
      try {
        const key = await hmacKey(this.authkey);
        await Promise.race([answerChallenge(reader, conn, key), expired]);
        await Promise.race([deliverChallenge(reader, conn, key), expired]);
      } catch (e) {
        try {
          conn.close();
        } catch {
          // already closed
        }
        if (timedOut) throw e;
        throw e instanceof AuthenticationError
          ? new AuthenticationError(`manager at ${where}: ${e.message}`)
          : new EOFError(
            `manager at ${where}: the connection broke during authentication (${
              (e as Error).message
            }); is a manager serving there?`,
          );
      }
      this.#reader = reader;
    } catch (e) {
      this.#closed = (e as Error).message;
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed !== null) {
      conn.close();
      throw new EOFError(this.#closed);
    }
    this.#conn = conn;
    connsOfChannels.register(this, conn, this);
    this.#writer = new FrameWriter(
      conn,
      (e) => this.#fail(`lost the connection: ${(e as Error).message}`),
    );
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // not a TCP socket
    }
    const hello = await this.#send(OP_HELLO) as { serverId: string };
    this.serverId = hello.serverId;
  }

  call(
    op: number,
    a?: unknown,
    b?: unknown,
    c?: unknown,
  ): Promise<unknown> {
    if (this.#conn) return this.#send(op, a, b, c);
    if (this.#closed !== null) {
      return Promise.reject(new EOFError(this.#closed));
    }
    return this.connect().then(() => this.#send(op, a, b, c));
  }

  #send(op: number, a?: unknown, b?: unknown, c?: unknown): Promise<unknown> {
    if (this.#closed !== null) {
      return Promise.reject(new EOFError(this.#closed));
    }
    const id = ++this.#seq;
    let n: number;
    try {
      n = encoder.encode([id, op, a, b, c] satisfies Request);
    } catch (e) {
      return Promise.reject(unsendable(e));
    }
    if (n > this.maxFrame) {
      return Promise.reject(
        new RangeError(
          `the request is ${n} bytes, more than the frame limit of ${this.maxFrame} bytes`,
        ),
      );
    }
    const p = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, blocking: false });
    });
    this.#writer!.frame(encoder, n);
    if (!this.#reading) this.#readLoop();
    return p;
  }

  /**
   * Reads replies while calls are pending (then stops, so an idle channel
   * holds no read that would keep the program alive). Every whole frame a
   * read brought is decoded where it landed, without copying it first.
   */
  async #readLoop(): Promise<void> {
    this.#reading = true;
    const reader = this.#reader!;
    const pending = this.#pending;
    try {
      while (pending.size > 0) {
        let len: number;
        while ((len = reader.next()) >= 0) {
          const at = reader.at;
          const msg = this.#decoder.decode(reader.bytes, at, at + len) as Reply;
          const p = pending.get(msg[0]);
          if (!p) continue;
          pending.delete(msg[0]);
          if (msg[1]) p.resolve(msg[2]);
          else p.reject(rebuildError(wireErrorOf(msg[2]), fromServer) as Error);
        }
        if (pending.size === 0) break;
        if (!await reader.more()) {
          this.#fail("the manager closed the connection");
          return;
        }
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
    connsOfChannels.unregister(this);
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

  /** Whether calls can still go through this channel. */
  get usable(): boolean {
    return this.#closed === null;
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
        this.timeoutMs,
      ],
    };
  }
}

/** This process's channel to each manager server (by server id). */
const liveChannels = new Map<string, LocalChannel>();

/**
 * The TCP channels proxies arrived with, by address, server and key. Held
 * weakly: the proxies hold their channel, and once none is left, the channel
 * goes and {@linkcode connsOfChannels} closes its connection.
 */
const liveTcpChannels = new Map<string, WeakRef<TcpChannel>>();

/** Closes the connection of a TCP channel that was garbage-collected. */
const connsOfChannels = new FinalizationRegistry<Deno.Conn>((conn) => {
  try {
    conn.close();
  } catch {
    // already closed
  }
});

/**
 * Makes `channel` the one this process uses for its server, so that proxies
 * arriving later reuse it instead of each holding a channel of its own.
 */
export function adoptChannel(channel: LocalChannel): void {
  liveChannels.set(channel.serverId, channel);
}

registerRebuilder(TAG, (state) => {
  const s = state as unknown[];
  if (s[0] === "local") {
    const port = s[1] as MessagePort;
    const serverId = s[4] as string;
    const known = liveChannels.get(serverId);
    if (known && known.usable) {
      // One channel a process is enough: give the new one back.
      giveBack(port, s[5] as SharedArrayBuffer | undefined);
      return known;
    }
    const channel = new LocalChannel(
      port,
      s[2] as SharedArrayBuffer,
      s[3] as number,
      serverId,
      s[5] as SharedArrayBuffer | undefined,
    );
    adoptChannel(channel);
    return channel;
  }
  // One connection a process for each server, as Python keeps one a thread:
  // proxies arriving for a server this process already reaches share it.
  const authkey = s[3] as Uint8Array;
  const key = `${s[1]}:${s[2]}/${s[4]}/${authkey.join(",")}`;
  const known = liveTcpChannels.get(key)?.deref();
  if (known?.usable) return known;
  const channel = new TcpChannel(
    { hostname: s[1] as string, port: s[2] as number },
    authkey,
    s[4] as string,
    s[5] as number,
    s[6] as number,
  );
  liveTcpChannels.set(key, new WeakRef(channel));
  return channel;
});
