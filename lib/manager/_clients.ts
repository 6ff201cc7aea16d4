/**
 * The clients of a manager's server: a local channel (a fast lane in shared
 * memory and a MessagePort) or a TCP connection.
 *
 * @module
 */

import { isIdentAlive } from "../shm/_proctable.ts";
import type { Caller } from "./_kind.ts";
import {
  CLOSED,
  encoder,
  FAST_BYTES,
  FRESP,
  FRESP_LEN,
  HOLDER,
  postToPort,
  type Reply,
  REPLY_AT,
  RESP,
} from "./_wire.ts";
import { serializeError } from "../wire/_error.ts";
import { FrameWriter } from "../wire/_frames.ts";

export abstract class Client implements Caller {
  static #next = 1;
  readonly id: number = Client.#next++;
  closed = false;
  /** References this client holds, by object id (one per proxy). */
  readonly held = new Map<number, number>();
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

export class LocalClient extends Client {
  readonly local = true;
  readonly ctl: Int32Array;
  readonly bytes: Uint8Array;
  /** The last fast-lane request taken. */
  served: number;
  constructor(readonly port: MessagePort, sab: SharedArrayBuffer) {
    super();
    this.ctl = new Int32Array(sab);
    this.bytes = new Uint8Array(sab);
    // A fresh channel: a request written before the server took it (FREQ
    // already 1) must still be served.
    this.served = 0;
  }
  /** Answers fast-lane request `seq`: in the reply area, or by the port when too big. */
  sendFast(seq: number, reply: Reply): void {
    let n = -1;
    try {
      n = encoder.encode([reply[1], reply[2]]);
    } catch {
      n = -1; // not encodable: structured clone by the port may still take it
    }
    if (n >= 0 && n <= FAST_BYTES) {
      encoder.copyTo(this.bytes, REPLY_AT, 0, n);
      Atomics.store(this.ctl, FRESP_LEN, n);
      Atomics.store(this.ctl, FRESP, seq);
      Atomics.add(this.ctl, RESP, 1);
      Atomics.notify(this.ctl, RESP);
    } else {
      Atomics.store(this.ctl, FRESP_LEN, -1);
      Atomics.store(this.ctl, FRESP, seq);
      this.send(reply);
    }
  }
  /** Frees the lane of request `seq`, whose reply will come by the port. */
  freeLane(seq: number): void {
    Atomics.store(this.ctl, FRESP_LEN, -1);
    Atomics.store(this.ctl, FRESP, seq);
    Atomics.add(this.ctl, RESP, 1);
    Atomics.notify(this.ctl, RESP);
  }
  send(reply: Reply): void {
    try {
      postToPort(this.port, reply);
    } catch (e) {
      // What structured clone cannot take (a user's class may return a
      // function): the caller gets why, the server goes on.
      this.port.postMessage([
        reply[0],
        false,
        serializeError(
          new TypeError(
            `the result cannot be sent to the proxy: ${
              (e as Error).message.replace(/\.$/, "").replace(
                /^item\[2\]/,
                "result",
              )
            }; return data (no functions, symbols or class-private state)`,
          ),
        ),
      ]);
    }
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
    this.port.close();
  }
}

export class TcpClient extends Client {
  readonly local = false;
  #writer: FrameWriter;
  constructor(readonly conn: Deno.Conn, readonly maxFrame: number) {
    super();
    this.#writer = new FrameWriter(conn, () => this.close());
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // not a TCP socket
    }
  }
  send(reply: Reply): void {
    let n: number;
    try {
      n = encoder.encode(reply);
      if (n > this.maxFrame) {
        throw new RangeError(
          `it is ${n} bytes, more than the frame limit of ${this.maxFrame} bytes`,
        );
      }
    } catch (e) {
      n = encoder.encode([
        reply[0],
        false,
        serializeError(
          new TypeError(
            `the result cannot be sent over TCP: ${(e as Error).message}`,
          ),
        ),
      ]);
    }
    this.#writer.frame(encoder, n);
  }
  protected closeTransport(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}
