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

import { type Kind, type Lookup, StoredRef, wakes } from "./_kind.ts";
import { classKind, KINDS } from "./_kinds.ts";
import {
  decoder,
  DOOR,
  FREQ,
  FREQ_LEN,
  fromPort,
  OP_ADOPT,
  PORTS,
  REF_KEY,
  REQ_AT,
  type Request,
} from "./_wire.ts";
import { serializeError } from "../wire/_error.ts";
import { Decoder } from "../wire/_codec.ts";
import { FrameReader } from "../wire/_frames.ts";
import { waitAsync } from "../shm/_wait.ts";
import { Spinner } from "../shm/_spin.ts";
import { type Client, LocalClient, TcpClient } from "./_clients.ts";
import { loadClass, OPS } from "./_dispatch.ts";
import { threads } from "../process/_threads.ts";
import {
  answerChallenge,
  Backoff,
  deliverChallenge,
  hmacKey,
} from "./_auth.ts";
import { reduceSymbol, registerRebuilder } from "../reduction.ts";
import type { Reduced } from "../reduction.ts";
import { isPlain } from "../_values.ts";
import { DESCEND, rewrite, some } from "../_walk.ts";
import type { TargetRef } from "../process/_target.ts";

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

/** Whether a value holds a {@linkcode StoredRef} (where the client's encoding puts references). */
const holdsStored = (x: object): boolean | typeof DESCEND =>
  x instanceof StoredRef ||
  ((Array.isArray(x) || x instanceof Map || x instanceof Set || isPlain(x)) &&
    DESCEND);

/** A user's class the server serves, under its kind's name. */
export interface ClassKind extends Kind {
  ref: TargetRef;
  /** Whether it was registered by typeid (TCP clients may create it). */
  registered: boolean;
}

export function noObject(id: unknown): string {
  return `the manager holds no object with id ${
    String(id)
  }: it was deleted when the last reference to it went (every proxy released or collected, ` +
    `its registered name replaced, no stored copy left), or it never existed`;
}

export class Server {
  readonly objects = new Map<number, ServedObject>();
  readonly names = new Map<string, number>();
  /** Users' classes, by kind name: registered typeids, classes created by reference. */
  readonly classes = new Map<string, ClassKind>();
  readonly tokens = new Map<string, Token>();
  /** Counts a stored reference out once the value holding it is collected. */
  readonly #stored = new FinalizationRegistry<number>((oid) => {
    if (!this.#stopped) this.decref(oid);
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
      this.classes.set(typeid, { ...kind, ref, registered: true });
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
      for (const [token, t] of this.tokens) {
        if (!t.lent && t.at < old) this.tokens.delete(token);
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
    for (const [oid, n] of held) this.decref(oid, n);
  }

  // ------------------------------------------------------ reference counts

  /** Counts a reference to `oid`, held by `c` (or by a name, token, value). */
  incref(c: Client | null, oid: unknown): ServedObject {
    const obj = typeof oid === "number" ? this.objects.get(oid) : undefined;
    if (!obj) throw new ReferenceError(noObject(oid));
    obj.refs++;
    if (c) c.held.set(oid as number, (c.held.get(oid as number) ?? 0) + 1);
    return obj;
  }

  /** Drops `n` references to `oid`; the object goes with the last. */
  decref(oid: number, n = 1): void {
    const obj = this.objects.get(oid);
    if (!obj) return;
    obj.refs -= n;
    if (obj.refs <= 0) this.objects.delete(oid);
  }

  /** Drops one of the references `c` holds to `oid` (none held: nothing). */
  release(c: Client, oid: unknown): void {
    if (typeof oid !== "number") return;
    const n = c.held.get(oid);
    if (!n) return;
    if (n === 1) c.held.delete(oid);
    else c.held.set(oid, n - 1);
    this.decref(oid);
  }

  /**
   * Turns the references in arguments that hold proxies into
   * {@linkcode StoredRef}s, in place, each holding its object (an unknown id
   * is a ReferenceError). Arrays, plain objects, Map keys and values and Set
   * members are searched, as the client's encoding puts references there; a
   * wrapped object of the caller's (`{ [REF_KEY]: object }`, see
   * `manager/proxy.ts`) is searched inside, never taken for a reference.
   */
  storeRefs(v: unknown): unknown {
    /** The caller's objects met unwrapped: their own REF_KEY field is data. */
    const unwrapped = new Set<object>();
    return rewrite(v, (x, walk) => {
      if (x instanceof StoredRef) return x;
      if (Array.isArray(x) || x instanceof Map || x instanceof Set) {
        return DESCEND;
      }
      if (!isPlain(x)) return x;
      if (!unwrapped.has(x) && Object.hasOwn(x, REF_KEY)) {
        const r = (x as Record<string, unknown>)[REF_KEY];
        if (Array.isArray(r)) {
          const id = r[0];
          const obj = this.incref(null, id);
          const ref = new StoredRef(id as number, obj.kind);
          this.#stored.register(ref, id as number);
          return ref;
        }
        // A wrapped object of the caller's: its fields may hold references.
        if (r !== null && typeof r === "object") {
          unwrapped.add(r);
          walk(r);
          return x;
        }
      }
      return DESCEND;
    }, "inPlace");
  }

  /**
   * A reply's value with each {@linkcode StoredRef} the client will turn
   * into a proxy (in arrays, plain objects, Maps, Sets) replaced by a fresh
   * reference that `c` now holds. Stored values are not changed: a value
   * that holds a reference is copied (whole, once a first pass found one,
   * so that parts it shares, and cycles, are shared in the copy too).
   */
  shareRefs(c: Client, v: unknown): unknown {
    if (v === null || typeof v !== "object") return v;
    if (v instanceof StoredRef) return this.#share(c, v);
    if (!some(v, holdsStored)) return v;
    // One reference (and one proxy) for each stored one, met once or more.
    return rewrite(
      v,
      (x) => x instanceof StoredRef ? this.#share(c, x) : holdsStored(x) || x,
      "copy",
    );
  }

  /** A fresh reference for `c` to the object of `ref`. */
  #share(c: Client, ref: StoredRef): Record<string, unknown> {
    const [id, kind] = ref[REF_KEY];
    if (this.objects.has(id)) this.incref(c, id);
    return { [REF_KEY]: [id, kind] };
  }

  /**
   * A call that waits holds a reference to its object until it settles
   * (or its client goes), so the object cannot go while it is in use.
   */
  settle(obj: ServedObject, oid: number, c: Client, p: Promise<unknown>) {
    obj.refs++;
    let held = true;
    const done = () => {
      if (!held) return;
      held = false;
      cancel();
      this.decref(oid);
    };
    const cancel = c.onClose(done);
    return p.then((v) => {
      done();
      return obj.hasRefs && !c.closed ? this.shareRefs(c, v) : v;
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
      c.sendFast(seq, [
        0,
        false,
        serializeError(new TypeError("corrupt request")),
      ]);
      return;
    }
    const id = msg[0];
    let result: unknown;
    try {
      result = this.#dispatch(c, msg);
    } catch (e) {
      c.sendFast(seq, [id, false, serializeError(e)]);
      return;
    }
    if (result instanceof Promise) {
      // A call that waits (a lock's acquire, a queue's get, ...) must not
      // hold the lane meanwhile: other calls of that process (the release
      // it waits for, say) need it. Its reply comes by the port.
      c.freeLane(seq);
      result.then(
        (v) => !c.closed && c.send([id, true, v]),
        (e) => !c.closed && c.send([id, false, serializeError(e)]),
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
      if (id !== 0 && !c.closed) c.send([id, false, serializeError(e)]);
      return;
    }
    if (id === 0) return;
    if (result instanceof Promise) {
      result.then(
        (v) => !c.closed && c.send([id, true, v]),
        (e) => !c.closed && c.send([id, false, serializeError(e)]),
      );
    } else if (!c.closed) c.send([id, true, result]);
  }

  /** The object a reference in a factory's arguments stands for. */
  lookup: Lookup = (ref, what) => {
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
    const op = OPS[msg[1]];
    if (op === undefined) {
      throw new TypeError(`unknown manager request ${String(msg[1])}`);
    }
    return op(this, c, msg[2], msg[3], msg[4]);
  }

  /**
   * Creates an object of `kind` for `c` -> `[objectId, kind]`.
   * `storeRefs`: its arguments hold references not yet stored;
   * `hasRefs`: they hold references (stored already, or now).
   */
  make(
    c: Client,
    kind: string,
    args: unknown[],
    storeRefs: boolean,
    hasRefs = storeRefs,
  ): [number, string] {
    if (storeRefs) this.storeRefs(args);
    const table = Object.hasOwn(KINDS, kind)
      ? KINDS[kind]
      : this.classes.get(kind)!;
    const value = table.create(args, this.lookup);
    const oid = this.#nextId++;
    this.objects.set(oid, {
      kind,
      methods: table.methods,
      value,
      refs: 0,
      hasRefs,
    });
    this.incref(c, oid);
    return [oid, kind];
  }

  /** The kind serving the class `ref` names, when one does already. */
  classByRef(ref: TargetRef): string | undefined {
    for (const [kind, k] of this.classes) {
      if (k.ref.module === ref.module && k.ref.name === ref.name) return kind;
    }
    return undefined;
  }

  /**
   * Serves class `cls` (found by `ref`) under its own name, or, when that
   * names a built-in kind or another class, its name and a number.
   */
  addClass(ref: TargetRef, cls: unknown): string {
    let kind = ref.name;
    for (
      let n = 2;
      Object.hasOwn(KINDS, kind) || this.classes.has(kind);
      n++
    ) {
      kind = `${ref.name}#${n}`;
    }
    this.classes.set(kind, {
      ...classKind(cls as never),
      ref,
      registered: false,
    });
    return kind;
  }

  /** The typeids registered with `Manager.register`. */
  registered(): string[] {
    return [...this.classes].filter(([, k]) => k.registered).map(([t]) => t);
  }

  /** Every object with its count, after a collection when `gc` is exposed. */
  async debugInfo(): Promise<{ id: number; kind: string; refs: number }[]> {
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
    owner.send([-1, false, serializeError(e)]);
    server.stop();
    return;
  }
  owner.send([-1, true, { address, door: server.door.buffer }]);
  await server.done;
}
