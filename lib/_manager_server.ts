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
 * length-prefixed frames in the codec's encoding. A connection that breaks
 * the protocol (bad frame, too long, garbage, wrong key) is closed alone;
 * every other client goes on. Clients that are gone (closed socket, ended
 * process) lose their waits and the locks they held.
 *
 * Objects are reference-counted, as Python's manager does: each client
 * (channel) holds a count per object (one per proxy of it in that process),
 * each registered name holds one, each reference stored inside another
 * object's value holds one for as long as the server keeps that value (a
 * {@linkcode StoredRef}, counted out by a FinalizationRegistry), a proxy on
 * its way to another process holds one until it is taken there (a token:
 * the server's, not the sender's, so it outlives a sender that ends first;
 * one never taken stays until the manager shuts down), and a call in
 * progress holds one. An object whose count reaches zero is deleted; a
 * client that goes away drops the references its proxies held.
 *
 * @module
 */

import { isIdentAlive } from "./_proctable.ts";
import {
  type Caller,
  classKind,
  type Kind,
  KINDS,
  type Lookup,
  StoredRef,
  wakes,
} from "./_manager_objects.ts";
import {
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
  OP_CALL,
  OP_CALL_REFS,
  OP_CREATE,
  OP_DEBUG,
  OP_DECREF,
  OP_GET,
  OP_HELLO,
  OP_LEND,
  OP_REGISTER,
  OP_RELEASE,
  OP_SHUTDOWN,
  OP_TAKE,
  PORTS,
  postToPort,
  REF_KEY,
  type Reply,
  REPLY_AT,
  REQ_AT,
  type Request,
  RESP,
  toWire,
} from "./_manager_wire.ts";
import { Decoder } from "./_codec.ts";
import { FrameReader, FrameWriter } from "./_frames.ts";
import { waitAsync } from "./_wait.ts";
import { Spinner } from "./_spin.ts";
import { threads } from "./_threads.ts";
import {
  answerChallenge,
  Backoff,
  deliverChallenge,
  hmacKey,
} from "./_auth.ts";
import { ProcessError } from "./errors.ts";
import { reduceSymbol, registerRebuilder } from "./reduction.ts";
import type { Reduced } from "./reduction.ts";
import { isPlain } from "./_values.ts";
import { resolveClass, type TargetRef } from "./_target.ts";

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
  /** Users' classes registered by typeid (`Manager.register`), by module and name. */
  types?: Record<string, TargetRef>;
  /** How long a TCP client may pause inside a frame before it is dropped (ms). */
  frameTimeout: number;
}

/** Longest run of fast-lane serving before the event loop gets a turn (ms). */
const BURST_MS = 2;
/** How long the server blocks for a next fast request after serving one (ms). */
const HOT_WAIT_MS = 0.2;

interface ServedObject {
  kind: string;
  /** Its kind's methods. */
  methods: Kind["methods"];
  value: unknown;
  /** References to it: clients' proxies, names, stored ones, lent, calls in progress. */
  refs: number;
  /** Whether references were ever stored in its value (then replies are searched for them). */
  hasRefs: boolean;
}

/**
 * A proxy in transit. Lent (`lent`): the server holds a reference for it
 * until a process takes it, whether or not its sender still runs (the
 * proxy may sit in a pipe long after its sender ended), so one never taken
 * (a message nobody reads, a send that failed after the proxy was reduced)
 * keeps its object until the manager shuts down, as a proxy stored in a
 * manager object does. Not lent: taken before its lend arrived (the two
 * come by different channels); the lend then holds nothing.
 */
interface Token {
  oid: number;
  lent: boolean;
  at: number;
}

/** How long a token taken before its lend arrived waits for it (ms). */
const TOKEN_TTL_MS = 60_000;

/** Whether `v` holds a {@linkcode StoredRef} (`seen`: the objects met, `v` among them). */
function holdsStored(v: object, seen: Set<object>): boolean {
  const look = (x: unknown): boolean => {
    if (x === null || typeof x !== "object") return false;
    if (x instanceof StoredRef) return true;
    if (seen.has(x)) return false;
    seen.add(x);
    return holdsStored(x, seen);
  };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (look(v[i])) return true;
    return false;
  }
  if (v instanceof Map) {
    for (const [k, x] of v) if (look(k) || look(x)) return true;
    return false;
  }
  if (v instanceof Set) {
    for (const x of v) if (look(x)) return true;
    return false;
  }
  if (!isPlain(v)) return false;
  const rec = v as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (look(rec[k])) return true;
  return false;
}

/** A user's class the server serves, under its kind's name. */
interface ClassKind extends Kind {
  ref: TargetRef;
  /** Whether it was registered by typeid (TCP clients may create it). */
  registered: boolean;
}

function noObject(id: unknown): string {
  return `the manager holds no object with id ${
    String(id)
  }: it was deleted when the last reference to it went (every proxy released or collected, ` +
    `its registered name replaced, no stored copy left), or it never existed`;
}

abstract class Client implements Caller {
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

class LocalClient extends Client {
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
        toWire(
          new TypeError(
            `the result cannot be sent to the proxy: ${
              (e as Error).message.replace(/\.$/, "")
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

class TcpClient extends Client {
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
        toWire(
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

class Server {
  readonly objects = new Map<number, ServedObject>();
  readonly names = new Map<string, number>();
  /** Users' classes, by kind name: registered typeids, classes created by reference. */
  readonly #classes = new Map<string, ClassKind>();
  readonly #tokens = new Map<string, Token>();
  /** Counts a stored reference out once the value holding it is collected. */
  readonly #stored = new FinalizationRegistry<number>((oid) => {
    if (!this.#stopped) this.#decref(oid);
  });
  readonly clients = new Set<Client>();
  /** Local clients, scanned for fast-lane requests when the doorbell rings. */
  #locals: LocalClient[] = [];
  /** {@linkcode PORTS} when the ports were last drained. */
  #portsSeen = 0;
  readonly door: Int32Array = new Int32Array(new SharedArrayBuffer(16));
  #nextId = 1;
  #listener?: Deno.Listener;
  #sweeper?: ReturnType<typeof setInterval>;
  #key?: CryptoKey;
  #backoff?: Backoff;
  #stopped = false;
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(readonly config: ServerConfig) {
    this.done = new Promise((r) => this.#resolveDone = r);
  }

  async start(
    owner: LocalClient,
  ): Promise<{ hostname: string; port: number } | undefined> {
    // A registered class that cannot be loaded fails the start, by name.
    for (const [typeid, ref] of Object.entries(this.config.types ?? {})) {
      const kind = classKind(await loadClass(ref) as never);
      this.#classes.set(typeid, { ...kind, ref, registered: true });
    }
    this.adopt(owner);
    this.#watch();
    // Drop channels whose process ended: their waits and locks go.
    this.#sweeper = setInterval(() => {
      for (const c of [...this.clients]) {
        if (c instanceof LocalClient && c !== owner && !c.holderAlive()) {
          this.#serveLast(c);
          this.drop(c);
        }
      }
      const old = Date.now() - TOKEN_TTL_MS;
      for (const [token, t] of this.#tokens) {
        if (!t.lent && t.at < old) this.#tokens.delete(token);
      }
    }, 500);
    const a = this.config.address;
    if (!a) return undefined;
    this.#key = await hmacKey(this.config.authkey!);
    this.#backoff = new Backoff(20, 1000, this.config.authTimeout);
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
    this.#locals.push(c);
    // Requests it sent or wrote before we saw it.
    this.#drainPort(c);
    if (Atomics.load(c.ctl, FREQ) !== c.served) {
      Atomics.add(this.door, DOOR, 1);
      Atomics.notify(this.door, DOOR);
    }
  }

  /**
   * Serves the requests waiting on `c`'s port. The server never listens on
   * its clients' ports: they ring {@linkcode PORTS} when they send, and
   * {@linkcode Server.#scan} takes the messages then, in order, in the same
   * loop as fast-lane requests (no event-loop hop between the two).
   */
  #drainPort(c: LocalClient): number {
    const { receiveMessageOnPort } = threads();
    let n = 0;
    let r: { message: unknown } | undefined;
    while (
      !c.closed &&
      (r = receiveMessageOnPort(c.port as never) as typeof r) !== undefined
    ) {
      n++;
      const msg = fromPort(r.message);
      if (isRequest(msg)) this.handle(c, msg);
    }
    return n;
  }

  /**
   * Serves what a client whose process ended sent before it ended and the
   * server has not taken yet (its port's messages, its fast-lane request):
   * a lend for a proxy it sent just before it ended must count before the
   * references of that client go.
   */
  #serveLast(c: LocalClient): void {
    if (c.closed) return;
    this.#drainPort(c);
    const seq = Atomics.load(c.ctl, FREQ);
    if (!c.closed && seq !== c.served) {
      c.served = seq;
      this.#serveFast(c, seq);
    }
  }

  drop(c: Client): void {
    this.clients.delete(c);
    if (c instanceof LocalClient) {
      const i = this.#locals.indexOf(c);
      if (i >= 0) this.#locals.splice(i, 1);
    }
    c.close();
    if (this.#stopped) return;
    // Its proxies' references go. Those lent for proxies it sent stay (the
    // server's): the proxies may still be on their way.
    const held = [...c.held];
    c.held.clear();
    for (const [oid, n] of held) this.#decref(oid, n);
  }

  // ------------------------------------------------------ reference counts

  /** Counts a reference to `oid`, held by `c` (or by a name, token, value). */
  #incref(c: Client | null, oid: unknown): ServedObject {
    const obj = typeof oid === "number" ? this.objects.get(oid) : undefined;
    if (!obj) throw new ReferenceError(noObject(oid));
    obj.refs++;
    if (c) c.held.set(oid as number, (c.held.get(oid as number) ?? 0) + 1);
    return obj;
  }

  /** Drops `n` references to `oid`; the object goes with the last. */
  #decref(oid: number, n = 1): void {
    const obj = this.objects.get(oid);
    if (!obj) return;
    obj.refs -= n;
    if (obj.refs <= 0) this.objects.delete(oid);
  }

  /** Drops one of the references `c` holds to `oid` (none held: nothing). */
  #release(c: Client, oid: unknown): void {
    if (typeof oid !== "number") return;
    const n = c.held.get(oid);
    if (!n) return;
    if (n === 1) c.held.delete(oid);
    else c.held.set(oid, n - 1);
    this.#decref(oid);
  }

  /**
   * Turns the references in arguments that hold proxies into
   * {@linkcode StoredRef}s, in place, each holding its object (an unknown id
   * is a ReferenceError). Arrays, plain objects, Map keys and values and Set
   * members are searched, as the client's encoding puts references there; a
   * wrapped object of the caller's (`{ [REF_KEY]: object }`, see
   * `managers.ts`) is searched inside, never taken for a reference.
   */
  #storeRefs(v: unknown, seen: Map<object, unknown> = new Map()): unknown {
    if (v === null || typeof v !== "object") return v;
    if (seen.has(v)) return seen.get(v);
    if (v instanceof StoredRef) return v;
    seen.set(v, v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = this.#storeRefs(v[i], seen);
    } else if (v instanceof Map) {
      const entries = [...v].map(([k, x]) =>
        [this.#storeRefs(k, seen), this.#storeRefs(x, seen)] as const
      );
      v.clear();
      for (const [k, x] of entries) v.set(k, x);
    } else if (v instanceof Set) {
      const items = [...v].map((x) => this.#storeRefs(x, seen));
      v.clear();
      for (const x of items) v.add(x);
    } else if (isPlain(v)) {
      const rec = v as Record<string, unknown>;
      let fields = rec;
      if (Object.hasOwn(rec, REF_KEY)) {
        const r = rec[REF_KEY];
        if (Array.isArray(r)) {
          const id = r[0];
          const obj = this.#incref(null, id);
          const ref = new StoredRef(id as number, obj.kind);
          this.#stored.register(ref, id as number);
          seen.set(v, ref);
          return ref;
        }
        // A wrapped object of the caller's: its fields may hold references.
        if (r !== null && typeof r === "object") {
          fields = r as Record<string, unknown>;
          seen.set(fields, fields);
        }
      }
      for (const k of Object.keys(fields)) {
        fields[k] = this.#storeRefs(fields[k], seen);
      }
    }
    return v;
  }

  /**
   * A reply's value with each {@linkcode StoredRef} the client will turn
   * into a proxy (in arrays, plain objects, Maps, Sets) replaced by a fresh
   * reference that `c` now holds. Stored values are not changed: a value
   * that holds a reference is copied (whole, once a first pass found one,
   * so that parts it shares, and cycles, are shared in the copy too).
   */
  #shareRefs(c: Client, v: unknown): unknown {
    if (v === null || typeof v !== "object") return v;
    if (v instanceof StoredRef) return this.#share(c, v);
    if (!holdsStored(v, new Set([v]))) return v;
    return this.#sharedCopy(c, v, new Map());
  }

  /** A fresh reference for `c` to the object of `ref`. */
  #share(c: Client, ref: StoredRef): Record<string, unknown> {
    const [id, kind] = ref[REF_KEY];
    if (this.objects.has(id)) this.#incref(c, id);
    return { [REF_KEY]: [id, kind] };
  }

  #sharedCopy(c: Client, v: unknown, copies: Map<object, unknown>): unknown {
    if (v === null || typeof v !== "object") return v;
    if (copies.has(v)) return copies.get(v);
    if (v instanceof StoredRef) {
      // One reference (and one proxy) for each stored one, met once or more.
      const ref = this.#share(c, v);
      copies.set(v, ref);
      return ref;
    }
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      copies.set(v, out);
      for (let i = 0; i < v.length; i++) {
        out.push(this.#sharedCopy(c, v[i], copies));
      }
      return out;
    }
    if (v instanceof Map) {
      const out = new Map();
      copies.set(v, out);
      for (const [k, x] of v) {
        out.set(this.#sharedCopy(c, k, copies), this.#sharedCopy(c, x, copies));
      }
      return out;
    }
    if (v instanceof Set) {
      const out = new Set();
      copies.set(v, out);
      for (const x of v) out.add(this.#sharedCopy(c, x, copies));
      return out;
    }
    if (!isPlain(v)) return v;
    const out: Record<string, unknown> = {};
    copies.set(v, out);
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      out[k] = this.#sharedCopy(c, rec[k], copies);
    }
    return out;
  }

  /**
   * A call that waits holds a reference to its object until it settles
   * (or its client goes), so the object cannot go while it is in use.
   */
  #settle(obj: ServedObject, oid: number, c: Client, p: Promise<unknown>) {
    obj.refs++;
    let held = true;
    const done = () => {
      if (!held) return;
      held = false;
      cancel();
      this.#decref(oid);
    };
    const cancel = c.onClose(done);
    return p.then((v) => {
      done();
      return obj.hasRefs && !c.closed ? this.#shareRefs(c, v) : v;
    }, (e) => {
      done();
      throw e;
    });
  }

  /** Serves every request written or sent so far; returns how many. */
  #scan(): number {
    let n = 0;
    const locals = this.#locals;
    const ports = Atomics.load(this.door, PORTS);
    if (ports !== this.#portsSeen) {
      this.#portsSeen = ports;
      // Copied: serving a request may adopt or drop clients.
      for (const c of [...locals]) n += this.#drainPort(c);
    }
    for (let i = 0; i < locals.length; i++) {
      const c = locals[i];
      const seq = Atomics.load(c.ctl, FREQ);
      if (seq === c.served) continue;
      c.served = seq;
      n++;
      this.#serveFast(c, seq);
    }
    return n;
  }

  #serveFast(c: LocalClient, seq: number): void {
    const len = Atomics.load(c.ctl, FREQ_LEN);
    let msg: unknown;
    try {
      msg = decoder.decode(c.bytes, REQ_AT, REQ_AT + len);
    } catch {
      msg = undefined;
    }
    if (!isRequest(msg)) {
      c.sendFast(seq, [0, false, toWire(new TypeError("corrupt request"))]);
      return;
    }
    const id = msg[0];
    let result: unknown;
    try {
      result = this.#dispatch(c, msg);
    } catch (e) {
      c.sendFast(seq, [id, false, toWire(e)]);
      return;
    }
    if (result instanceof Promise) {
      // A call that waits (a lock's acquire, a queue's get, ...) must not
      // hold the lane meanwhile: other calls of that process (the release
      // it waits for, say) need it. Its reply comes by the port.
      c.freeLane(seq);
      result.then(
        (v) => !c.closed && c.send([id, true, v]),
        (e) => !c.closed && c.send([id, false, toWire(e)]),
      );
    } else c.sendFast(seq, [id, true, result]);
  }

  /**
   * Watches the doorbell. After serving, it watches a moment for the next
   * request (a client in a loop of calls sends its next one within
   * microseconds; spinning only while that pays, see `Spinner`), then blocks
   * a moment more in a futex wait (which wakes far faster than the event
   * loop; see `blockFor`), but hands the event
   * loop a turn at least every {@linkcode BURST_MS}, so TCP clients and
   * timers are served too. That turn is a `setImmediate` (microseconds),
   * not a `setTimeout(0)`, which sleeps a millisecond or more.
   */
  async #watch(): Promise<void> {
    const door = this.door;
    let burst = performance.now();
    let hot = false;
    const spinner = new Spinner();
    let woken = wakes.count;
    while (!this.#stopped) {
      const seen = Atomics.load(door, DOOR);
      if (this.#scan() > 0) {
        hot = true;
        if (wakes.count !== woken) {
          // A call woke parked waiters (a release, a notify, a put): their
          // replies are promise reactions, which run only when this loop
          // yields. Yield now, for a whole turn (a chain of reactions, as a
          // Condition's wait that takes its lock back, needs several).
          woken = wakes.count;
          await new Promise((r) => setImmediate(r));
          burst = performance.now();
        } else if (performance.now() - burst > BURST_MS) {
          await new Promise((r) => setImmediate(r));
          burst = performance.now();
        }
        continue;
      }
      if (
        hot && spinner.spinThenBlock(door, DOOR, seen, HOT_WAIT_MS)
      ) continue;
      hot = false;
      await waitAsync(door, DOOR, seen, 1000);
      burst = performance.now();
    }
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
    // An address whose handshakes failed waits its turn (or is refused).
    const host = (conn.remoteAddr as Deno.NetAddr).hostname ?? "";
    const backoff = this.#backoff!;
    const wait = backoff.wait(host);
    if (wait < 0) {
      try {
        conn.close();
      } catch {
        // already closed
      }
      return;
    }
    const client = new TcpClient(conn, this.config.maxFrame);
    this.clients.add(client);
    const reader = new FrameReader(conn, this.config.maxFrame);
    const timer = setTimeout(
      () => this.drop(client),
      wait + this.config.authTimeout,
    );
    try {
      if (wait > 0) {
        await new Promise((r) => setTimeout(r, wait));
        if (client.closed) return;
      }
      await deliverChallenge(reader, conn, this.#key!);
      await answerChallenge(reader, conn, this.#key!);
      backoff.succeeded(host);
    } catch {
      // Wrong key, garbage or a silent peer: nothing was reachable.
      if (!this.#stopped) backoff.failed(host);
      this.drop(client);
      return;
    } finally {
      clearTimeout(timer);
    }
    // Every whole frame a read brought is decoded where it landed (no
    // copy), and served at once, here in the thread that owns the objects.
    const dec = new Decoder();
    try {
      serve: while (!client.closed) {
        let len: number;
        while ((len = reader.next()) >= 0) {
          const at = reader.at;
          const msg = dec.decode(reader.bytes, at, at + len);
          if (!isRequest(msg) || msg[1] === OP_ADOPT) break serve;
          this.handle(client, msg);
          if (client.closed) break serve;
        }
        // A frame under way that stops arriving holds its bytes: drop it.
        const stall = reader.buffered > 0
          ? setTimeout(() => this.drop(client), this.config.frameTimeout)
          : undefined;
        try {
          if (!await reader.more()) break;
        } finally {
          clearTimeout(stall);
        }
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

  /** The object a reference in a factory's arguments stands for. */
  #lookup: Lookup = (ref, what) => {
    const r = ref !== null && typeof ref === "object"
      ? (ref as Record<string, unknown>)[REF_KEY]
      : undefined;
    const id = Array.isArray(r) ? r[0] : undefined;
    const obj = typeof id === "number" ? this.objects.get(id) : undefined;
    if (!obj) {
      throw new ReferenceError(
        `${what}: ${
          id === undefined
            ? "expected a proxy of this manager"
            : `the manager holds no object with id ${id}`
        }`,
      );
    }
    return obj;
  };

  #dispatch(c: Client, msg: Request): unknown {
    const [, op, a, b, d] = msg;
    switch (op) {
      case OP_CALL:
      case OP_CALL_REFS: {
        const obj = this.objects.get(a as number);
        if (!obj) throw new ReferenceError(noObject(a));
        const methods = obj.methods;
        if (typeof b !== "string" || !Object.hasOwn(methods, b)) {
          throw new TypeError(noMethod(obj.kind, b, methods, this.#classes));
        }
        if (!Array.isArray(d)) {
          throw new TypeError("the arguments of a call must be an array");
        }
        if (op === OP_CALL_REFS) {
          this.#storeRefs(d);
          obj.hasRefs = true;
        }
        const result = methods[b](obj.value, d, c);
        if (result instanceof Promise) {
          return this.#settle(obj, a as number, c, result);
        }
        return obj.hasRefs ? this.#shareRefs(c, result) : result;
      }
      case OP_CREATE: {
        const args = Array.isArray(b) ? b : [];
        if (Array.isArray(a)) {
          // A user's class by reference, [module, name]: this program's
          // processes only (a TCP client names a registered typeid).
          if (!c.local) {
            throw new TypeError(
              "a TCP client creates a user's class by its registered typeid: " +
                'client.create("Maths", ...args), after the serving program\'s ' +
                'Manager.register("Maths", Maths)',
            );
          }
          const ref = { module: String(a[0]), name: String(a[1]) };
          const known = this.#classByRef(ref);
          if (known) return this.#make(c, known, args, d === true);
          if (d === true) this.#storeRefs(args);
          return loadClass(ref).then((cls) => {
            if (c.closed) return undefined;
            const kind = this.#classByRef(ref) ?? this.#addClass(ref, cls);
            return this.#make(c, kind, args, false, d === true);
          });
        }
        const kind = typeof a === "string"
          ? Object.hasOwn(KINDS, a) ? a : this.#classes.get(a)?.registered && a
          : undefined;
        if (!kind) {
          const made = [...Object.keys(KINDS), ...this.#registered()];
          throw new TypeError(
            `a manager cannot create a '${String(a)}'; it makes: ${
              made.join(", ")
            } (a class of yours: Manager.register("${
              typeof a === "string" && a ? a : "Name"
            }", Class) in the serving program, before Manager.start())`,
          );
        }
        return this.#make(c, kind, args, d === true);
      }
      case OP_REGISTER: {
        if (typeof a !== "string" || a === "") {
          throw new TypeError(
            `register(name, proxy): name must be a non-empty string, got ${typeof a}`,
          );
        }
        if (!this.objects.has(b as number)) {
          throw new ReferenceError(`register('${a}'): ${noObject(b)}`);
        }
        // The name holds a reference; the object it named before loses one.
        this.#incref(null, b);
        const before = this.names.get(a);
        this.names.set(a, b as number);
        if (before !== undefined) this.#decref(before);
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
        return [oid, this.#incref(c, oid).kind];
      }
      case OP_DECREF: {
        if (Array.isArray(a)) { for (const oid of a) this.#release(c, oid); }
        return undefined;
      }
      case OP_LEND: {
        if (typeof b !== "string") throw new TypeError("lend: bad token");
        const t = this.#tokens.get(b);
        if (t && !t.lent) {
          // Taken already (the taker counted itself): nothing to hold.
          this.#tokens.delete(b);
          return undefined;
        }
        if (t) throw new TypeError("lend: token used twice");
        this.#incref(null, a);
        this.#tokens.set(b, { oid: a as number, lent: true, at: Date.now() });
        return undefined;
      }
      case OP_TAKE: {
        this.#incref(c, a);
        if (typeof b !== "string") return undefined;
        const t = this.#tokens.get(b);
        if (t?.lent) {
          this.#tokens.delete(b);
          this.#decref(t.oid);
        } else {
          // The lend is still on its way (another channel): it holds nothing
          // when it comes.
          this.#tokens.set(b, {
            oid: a as number,
            lent: false,
            at: Date.now(),
          });
        }
        return undefined;
      }
      case OP_DEBUG:
        return this.#debugInfo();
      case OP_HELLO:
        return { serverId: this.config.serverId };
      case OP_ADOPT: {
        if (!c.local) throw new TypeError("adopt is local only");
        this.adopt(new LocalClient(a as MessagePort, b as SharedArrayBuffer));
        return undefined;
      }
      case OP_RELEASE: {
        if (c instanceof LocalClient) queueMicrotask(() => this.drop(c));
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

  /**
   * Creates an object of `kind` for `c` -> `[objectId, kind]`.
   * `storeRefs`: its arguments hold references not yet stored;
   * `hasRefs`: they hold references (stored already, or now).
   */
  #make(
    c: Client,
    kind: string,
    args: unknown[],
    storeRefs: boolean,
    hasRefs = storeRefs,
  ): [number, string] {
    if (storeRefs) this.#storeRefs(args);
    const table = Object.hasOwn(KINDS, kind)
      ? KINDS[kind]
      : this.#classes.get(kind)!;
    const value = table.create(args, this.#lookup);
    const oid = this.#nextId++;
    this.objects.set(oid, {
      kind,
      methods: table.methods,
      value,
      refs: 0,
      hasRefs,
    });
    this.#incref(c, oid);
    return [oid, kind];
  }

  /** The kind serving the class `ref` names, when one does already. */
  #classByRef(ref: TargetRef): string | undefined {
    for (const [kind, k] of this.#classes) {
      if (k.ref.module === ref.module && k.ref.name === ref.name) return kind;
    }
    return undefined;
  }

  /**
   * Serves class `cls` (found by `ref`) under its own name, or, when that
   * names a built-in kind or another class, its name and a number.
   */
  #addClass(ref: TargetRef, cls: unknown): string {
    let kind = ref.name;
    for (
      let n = 2;
      Object.hasOwn(KINDS, kind) || this.#classes.has(kind);
      n++
    ) {
      kind = `${ref.name}#${n}`;
    }
    this.#classes.set(kind, {
      ...classKind(cls as never),
      ref,
      registered: false,
    });
    return kind;
  }

  /** The typeids registered with `Manager.register`. */
  #registered(): string[] {
    return [...this.#classes].filter(([, k]) => k.registered).map(([t]) => t);
  }

  /** Every object with its count, after a collection when `gc` is exposed. */
  async #debugInfo(): Promise<{ id: number; kind: string; refs: number }[]> {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc === "function") {
      // Stored references dropped with their values are counted out by the
      // FinalizationRegistry: collect, then let its callbacks run.
      gc();
      await new Promise((r) => setTimeout(r, 0));
    }
    return [...this.objects].map(([id, o]) => ({
      id,
      kind: o.kind,
      refs: o.refs,
    }));
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    Atomics.add(this.door, DOOR, 1);
    Atomics.notify(this.door, DOOR);
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

const IMPORTING = Symbol.for("mp.importing");
/** Class modules being imported now. */
let importing = 0;

/**
 * Imports a class's module here, marked as a child's import is (see
 * `_prelude.ts`): a module whose top level starts a manager or a process
 * (no `if (import.meta.main)` guard) fails with a `ProcessError` saying so,
 * instead of each server starting another, which would import it again.
 */
async function loadClass(ref: TargetRef): Promise<unknown> {
  const g = globalThis as Record<symbol, unknown>;
  importing++;
  g[IMPORTING] = true;
  try {
    return await resolveClass(ref);
  } finally {
    if (--importing === 0) delete g[IMPORTING];
  }
}

/** Why a proxy of `kind` cannot call `method`, and what it can call. */
function noMethod(
  kind: string,
  method: unknown,
  methods: Kind["methods"],
  classes: Map<string, ClassKind>,
): string {
  const m = typeof method === "string" ? `'${method}'` : String(method);
  const names = Object.keys(methods);
  const has = names.length
    ? `its methods are: ${names.join(", ")}`
    : "it has no public methods";
  const cls = classes.get(kind);
  if (!cls) return `a ${kind} proxy has no method ${m}; ${has}`;
  return `class ${cls.ref.name} (served as '${kind}') has no method ${m}; ${has}. ` +
    "A manager serves a class's public methods: those of its prototype " +
    "(not fields, accessors, or names beginning with _); add the method to the class " +
    "(reach other state through a method)";
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
  owner.send([-1, true, { address, door: server.door.buffer }]);
  await server.done;
}
