/**
 * The Manager: starts (or connects to) a manager's server and makes its
 * objects, returning proxies.
 *
 * @module
 */

import { checkNotImporting, Process } from "../process.ts";
import { EOFError, TimeoutError } from "../errors.ts";
import {
  type Address,
  adoptChannel,
  LocalChannel,
  type ProxyChannel as Channel,
  TcpChannel,
} from "./_channel.ts";
import {
  CHANNEL_BYTES,
  OP_CREATE,
  OP_DEBUG,
  OP_GET,
  OP_REGISTER,
  OP_SHUTDOWN,
} from "./_wire.ts";
// The server's code loads only where a server starts (every child loads
// this module, and most never start a manager).
import type { ServerConfig } from "./_server.ts";
import { authkeyBytes } from "./_auth.ts";
import { checkKeys } from "../_options.ts";
import { checkArrayTypecode, TYPECODES } from "../_typecodes.ts";
import { repr } from "../_inspect.ts";
import {
  classRefOf,
  isClass,
  moduleUrl,
  resolveClass,
  type TargetRef,
} from "../process/_target.ts";
import { checkTimeout, MAX_TIMER_MS } from "../shm/_wait.ts";
import { disposedError, refOf, sending } from "./_refs.ts";
import {
  type AutoProxy,
  BaseProxy,
  encode,
  makeProxy,
  PROXY_CLASSES,
} from "./proxy.ts";
import {
  type ArrayProxy,
  type BarrierProxy,
  type ConditionProxy,
  type DictProxy,
  type EventProxy,
  itemsOf,
  type ListProxy,
  LockProxy,
  type NamespaceProxy,
  type ProxyBarrierOptions,
  type QueueProxy,
  type ValueProxy,
} from "./proxies.ts";
import {
  checkAddress,
  checkFrame,
  checkFrameTimeout,
  type ConnectOptions,
  type ManagerObjectInfo,
  type ManagerOptions,
} from "./options.ts";
import {
  classRef,
  type ManagedClass,
  type RegisterOptions,
  registry,
  typeidOf,
  verified,
} from "./classes.ts";

const SERVER_MODULE = new URL("./_server.ts", import.meta.url).href;
/** How long `Manager.start()` waits for the server to come up. */
const START_TIMEOUT_MS = 30_000;
/** How long `shutdown()` waits for the server to stop before ending it. */
const STOP_TIMEOUT_MS = 2_000;

let managerCounter = 0;

/**
 * A manager (Python's `multiprocessing.Manager()` / `SyncManager`): a server
 * process holding shared objects, and the factories that create them and
 * return proxies. `await using manager = await Manager.start()` shuts the
 * server down at the end of the block.
 *
 * Objects are reference-counted, as in Python: one is deleted when no proxy
 * of it is left in any process (disposed of with `dispose()` / `using`, or
 * garbage-collected, or its process ended), no name is registered for it
 * and no other object of the manager stores it; everything goes when the
 * manager shuts down. Over TCP (`address` + `authkey`), `register(name,
 * proxy)` names an object (the name keeps it alive) and another program's
 * `Manager.connect()` gets it with `get(name)`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 *
 * await using server = await Manager.start({
 *   address: { hostname: "127.0.0.1", port: 0 },
 *   authkey: "a-secret-of-16-bytes+",
 * });
 * await server.register("config", await server.dict({ debug: true }));
 *
 * await using client = await Manager.connect({
 *   address: server.address!,
 *   authkey: "a-secret-of-16-bytes+",
 * });
 * const config = await client.get<import("@mp/multiprocessing").DictProxy>("config");
 * console.log(await config.get("debug")); // true
 * ```
 */
export class Manager implements AsyncDisposable {
  #channel: Channel;
  #process: Process | null;
  #address: Address | undefined;
  #closed = false;
  /** Called when shutdown() begins (a serveForever() waiting). */
  #onShutdown = new Set<() => void>();
  /** The typeids its server was started with (a manager this process started). */
  #types: ReadonlySet<string> | undefined;

  private constructor(
    channel: Channel,
    process: Process | null,
    address: Address | undefined,
  ) {
    this.#channel = channel;
    this.#process = process;
    this.#address = address;
  }

  /**
   * Starts a manager's server process and returns the manager once it
   * serves (and, with `address`, listens).
   *
   * @throws {TypeError} for an unknown option, or an `address` without an
   *   `authkey` (a TCP manager needs one).
   * @throws {TimeoutError} (rejects) when the server does not start in time.
   */
  static async start(options: ManagerOptions = {}): Promise<Manager> {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `Manager.start(options): options must be an object, got ${typeof options}`,
      );
    }
    checkKeys(
      options,
      ["address", "authkey", "name", "maxFrameBytes", "frameTimeout"],
      "Manager.start option",
    );
    // Before the registered classes are resolved: in a server importing this
    // very module, resolving them would wait on its own import (a deadlock).
    checkNotImporting("Manager.start()");
    const address = options.address === undefined
      ? undefined
      : checkAddress(options.address, "address");
    let authkey: Uint8Array | undefined;
    if (options.authkey !== undefined) authkey = authkeyBytes(options.authkey);
    if (address && !authkey) {
      throw new TypeError(
        'a manager that listens on TCP needs an authkey: pass authkey: "<secret>" ' +
          "(the connecting programs pass the same)",
      );
    }
    // Registered classes are checked here first: where the server will
    // look, they must be the very classes registered.
    const types: Record<string, TargetRef> = {};
    for (const [typeid, { cls, ref }] of registry) {
      await resolveClass(ref, cls);
      verified.set(cls, ref.module);
      types[typeid] = ref;
    }
    const config: ServerConfig = {
      serverId: crypto.randomUUID(),
      address,
      authkey,
      maxFrame: checkFrame(options.maxFrameBytes),
      authTimeout: 10_000,
      types,
      frameTimeout: checkFrameTimeout(options.frameTimeout),
    };
    const { BootChannel, managerServer } = await import(
      "./_server.ts"
    );
    const { port1, port2 } = new MessageChannel();
    const sab = new SharedArrayBuffer(CHANNEL_BYTES);
    const proc = new Process({
      target: managerServer,
      args: [config, new BootChannel(port2, sab)],
      name: options.name ?? `SyncManager-${++managerCounter}`,
      daemon: true,
      module: SERVER_MODULE,
    });
    // The server is a daemon (it never keeps the program alive), so this
    // timer is what keeps the program waiting while it starts.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `the manager's server did not start within ${START_TIMEOUT_MS} ms`,
            ),
          ),
        START_TIMEOUT_MS,
      );
    });
    let channel: LocalChannel | undefined;
    try {
      await Promise.race([proc.start(), timeout]);
      channel = new LocalChannel(port1, sab, proc.pid!, config.serverId);
      const ready = await Promise.race([channel.expectStart(), timeout]);
      adoptChannel(channel);
      const manager = new Manager(channel, proc, ready.address);
      manager.#types = new Set(Object.keys(types));
      return manager;
    } catch (e) {
      if (channel) channel.close("the manager failed to start");
      else port1.close();
      if (proc.exitCode === null) proc.terminate();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Connects to a manager that listens on TCP (another program's, or this
   * one's), authenticating both ways with `authkey`. Disposing the client
   * closes the connection (the server goes on).
   *
   * @throws {AuthenticationError} (rejects) for a wrong `authkey`.
   * @throws {EOFError} (rejects) when nothing listens at `address`, or the
   *   server closed the connection.
   */
  static async connect(options: ConnectOptions): Promise<Manager> {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        "Manager.connect(options): pass { address, authkey }",
      );
    }
    checkKeys(
      options,
      ["address", "authkey", "maxFrameBytes", "timeoutMs"],
      "Manager.connect option",
    );
    const address = checkAddress(options.address, "address");
    const key = authkeyBytes(options.authkey);
    // Longer than a timer holds: as long as one does.
    const timeout = checkTimeout(options.timeoutMs ?? 10_000, "timeoutMs") ??
      MAX_TIMER_MS;
    if (timeout === 0) {
      throw new RangeError("timeoutMs must be more than 0 ms, got 0");
    }
    const channel = new TcpChannel(
      address,
      key,
      "",
      checkFrame(options.maxFrameBytes),
      timeout,
    );
    await channel.connect();
    return new Manager(channel, null, address);
  }

  /**
   * Where the manager listens (the bound port, when 0 was asked for), or
   * the address a client connected to; undefined for a local-only manager.
   */
  get address(): Address | undefined {
    return this.#address ? { ...this.#address } : undefined;
  }

  #check(): Channel {
    if (this.#closed) {
      throw new EOFError(
        "the manager was shut down: its objects are gone; start a new one",
      );
    }
    return this.#channel;
  }

  async #create<P extends BaseProxy>(
    kind: string | [string, string],
    args: unknown[],
  ): Promise<P> {
    const channel = this.#check();
    const [sent, holdsRefs] = encode(args, channel.serverId);
    if (holdsRefs) sending.add(args);
    try {
      const [id, k] = await channel.call(
        OP_CREATE,
        kind,
        sent,
        holdsRefs,
      ) as [number, string];
      return makeProxy(channel, id, k) as P;
    } finally {
      if (holdsRefs) sending.delete(args);
    }
  }

  /** A shared list, with `items` at first (Python's `manager.list()`). */
  list<T = unknown>(items: Iterable<T> = []): Promise<ListProxy<T>> {
    return this.#create("list", [itemsOf(items, "manager.list(items)")]);
  }

  /** A shared dict, from an object, a Map or `[key, value]` pairs. */
  dict<K = string, V = unknown>(
    init?: Record<string, V> | Map<K, V> | Iterable<[K, V]>,
  ): Promise<DictProxy<K, V>> {
    const i = init === undefined || init instanceof Map ||
        Array.isArray(init) || !(Symbol.iterator in Object(init))
      ? init
      : [...(init as Iterable<[K, V]>)];
    return this.#create("dict", [i]);
  }

  /** A shared Namespace, with `attrs` set at first. */
  Namespace(attrs?: Record<string, unknown>): Promise<NamespaceProxy> {
    return this.#create("Namespace", [attrs]);
  }

  /**
   * A shared Value (the typecode is checked, then recorded).
   *
   * @throws {TypeError} for an unknown typecode.
   */
  Value<T = number>(typecode: string, value: T): Promise<ValueProxy<T>> {
    if (!TYPECODES.includes(typecode)) {
      throw new TypeError(
        `unknown typecode ${JSON.stringify(typecode)}: use one of ${
          TYPECODES.join(" ")
        }`,
      );
    }
    return this.#create("Value", [typecode, value]);
  }

  /** A shared queue (`maxsize` 0 = unbounded), Python's `manager.Queue()`. */
  Queue<T = unknown>(
    options: { maxsize?: number } | number = {},
  ): Promise<QueueProxy<T>> {
    return this.#create("Queue", [options]);
  }

  /** Same as {@linkcode Manager.Queue} (it has `taskDone()` and `join()`). */
  JoinableQueue<T = unknown>(
    options: { maxsize?: number } | number = {},
  ): Promise<QueueProxy<T>> {
    return this.#create("Queue", [options]);
  }

  /** A shared Lock. */
  Lock(): Promise<LockProxy> {
    return this.#create("Lock", []);
  }

  /**
   * A shared re-entrant lock, owned per process: async tasks of one process
   * share it (a second task's acquire re-enters instead of waiting); use
   * {@linkcode Manager.Lock} to keep tasks of one process apart.
   */
  RLock(): Promise<LockProxy> {
    return this.#create("RLock", []);
  }

  /** A shared Semaphore starting at `value`. */
  Semaphore(value = 1): Promise<LockProxy> {
    return this.#create("Semaphore", [value]);
  }

  /** A shared BoundedSemaphore: releasing it past `value` throws. */
  BoundedSemaphore(value = 1): Promise<LockProxy> {
    return this.#create("BoundedSemaphore", [value]);
  }

  /** A shared Event. */
  Event(): Promise<EventProxy> {
    return this.#create("Event", []);
  }

  /**
   * A shared array of `typecode` (Python's `manager.Array()`): `size` zeros,
   * or the given elements. Typecodes: b B h H i I l L q Q f d (q/Q hold
   * bigints: `manager.Array<bigint>("q", 4)`) and u (one-character strings:
   * `manager.Array<string>("u", "abc")`).
   *
   * @throws {TypeError} for an unknown typecode (listing them).
   */
  Array<T = number>(
    typecode: string,
    sequenceOrSize:
      | number
      | string
      | Iterable<NoInfer<T> | (T extends bigint ? number : never)>
      | ArrayLike<NoInfer<T> | (T extends bigint ? number : never)>,
  ): Promise<ArrayProxy<T>> {
    checkArrayTypecode(typecode);
    const s = sequenceOrSize as unknown;
    // Iterables and array-likes travel as arrays; anything else as it is,
    // for the server to refuse by name.
    const init = s !== null && typeof s === "object" && !Array.isArray(s) &&
        !ArrayBuffer.isView(s) &&
        (Symbol.iterator in s ||
          typeof (s as { length?: unknown }).length === "number")
      ? Array.from(s as ArrayLike<unknown>)
      : s;
    return this.#create("Array", [typecode, init]);
  }

  /**
   * A shared condition variable (Python's `manager.Condition(lock)`), over
   * `lock` (a `manager.Lock()` or `manager.RLock()` of this manager) or, by
   * default, a new RLock. Several async tasks of one process using it need
   * a Lock: `manager.Condition(await manager.Lock())` (see
   * {@linkcode ConditionProxy}).
   *
   * @throws {TypeError} when `lock` is not a Lock or RLock proxy of it.
   */
  Condition(lock?: LockProxy): Promise<ConditionProxy> {
    if (lock !== undefined) {
      if (
        !(lock instanceof LockProxy) ||
        (lock.kind !== "Lock" && lock.kind !== "RLock")
      ) {
        throw new TypeError(
          `Condition(lock): lock must be a manager Lock or RLock proxy (await manager.Lock()), got ${
            lock instanceof BaseProxy ? `a ${lock.kind} proxy` : typeof lock
          }`,
        );
      }
      if (refOf(lock).channel.serverId !== this.#channel.serverId) {
        throw new TypeError(
          "Condition(lock): the lock belongs to another manager",
        );
      }
    }
    return this.#create("Condition", lock === undefined ? [] : [lock]);
  }

  /**
   * A shared barrier for `parties` waits (Python's `manager.Barrier()`);
   * `timeout` is the default timeout of `wait()` in milliseconds.
   *
   * @throws {TypeError} for an `action`: a function cannot reach the server.
   */
  Barrier(
    parties: number,
    options: ProxyBarrierOptions = {},
  ): Promise<BarrierProxy> {
    if (
      options !== null && typeof options === "object" &&
      (options as { action?: unknown }).action !== undefined
    ) {
      throw new TypeError(
        "a manager Barrier takes no action: a function cannot reach the server; " +
          "run it yourself in the process whose wait() resolved parties - 1",
      );
    }
    return this.#create("Barrier", [parties, options]);
  }

  /**
   * Registers a class of yours as `typeid` (Python's
   * `BaseManager.register(typeid, callable)`): managers started after it
   * serve it, so TCP clients can `create(typeid, ...args)` objects of it
   * (as in Python, a manager started before it does not: its
   * `create(typeid)` rejects saying so).
   * The manager's server imports the class's module and looks the class up
   * by its exported name (as a child finds a Process target): by default
   * the module calling `register`; pass `module` for a class exported from
   * another. Registering a typeid again replaces it (for managers started
   * later).
   *
   * @throws {TypeError} when `typeid` is empty or a built-in kind's name, or `cls` is not a class.
   * @example
   * ```ts ignore
   * import { Manager } from "@mp/multiprocessing";
   * export class Maths {
   *   add(a: number, b: number): number {
   *     return a + b;
   *   }
   * }
   * Manager.register("Maths", Maths);
   * // The server imports this module: start-up code goes under the guard.
   * if (import.meta.main) {
   *   await using server = await Manager.start({
   *     address: { port: 0 },
   *     authkey: "a-secret-of-16-bytes+",
   *   });
   *   const maths = await server.create<Maths>("Maths");
   *   console.log(await maths.add(4, 3)); // 7
   * }
   * ```
   */
  static register(
    typeid: string,
    cls: ManagedClass,
    options: RegisterOptions = {},
  ): void {
    if (
      typeof typeid !== "string" ||
      !/^[\p{L}_$][\p{L}\p{N}_$.-]*$/u.test(typeid)
    ) {
      throw new TypeError(
        `Manager.register(typeid, Class): typeid must be a name like "Maths", got ${
          JSON.stringify(typeid)
        }`,
      );
    }
    if (Object.hasOwn(PROXY_CLASSES, typeid)) {
      throw new TypeError(
        `Manager.register("${typeid}", ...): '${typeid}' is a built-in kind (manager.${typeid}()); pick another typeid`,
      );
    }
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `Manager.register("${typeid}", Class, options): options must be an object like { module: import.meta.url }`,
      );
    }
    if (!isClass(cls)) classRef(cls, `Manager.register("${typeid}", Class)`);
    const ref = classRefOf(cls, moduleUrl(options.module));
    registry.set(typeid, { cls, ref });
  }

  /**
   * Creates an object of a class of yours in the manager's server, and
   * returns a proxy whose methods are the class's methods, resolving what
   * they return there (Python's customized managers): `await maths.add(4,
   * 3)`. `cls` must be exported from the module calling `create` (the
   * server imports it and looks the class up by name, as a child finds a
   * Process target), or registered with {@linkcode Manager.register}
   * (which may name another module). A TCP client (`Manager.connect()`)
   * names a typeid the serving program registered: `client.create("Maths")`.
   * The object lives as long as proxies of it do, as every manager object.
   *
   * @throws {ClassNotExportedError} when `cls` is not exported where the server will look.
   * @throws {TypeError} when `cls` is not a class, or `typeid` is not registered on the server.
   * @example
   * ```ts ignore
   * import { Manager } from "@mp/multiprocessing";
   * export class Maths {
   *   add(a: number, b: number): number {
   *     return a + b;
   *   }
   * }
   * if (import.meta.main) { // the server imports this module to find Maths
   *   await using manager = await Manager.start();
   *   const maths = await manager.create(Maths);
   *   console.log(await maths.add(4, 3)); // 7
   * }
   * ```
   */
  create<C extends ManagedClass>(
    cls: C,
    ...args: ConstructorParameters<C>
  ): Promise<AutoProxy<InstanceType<C>>>;
  /** Creates an object of the class registered as `typeid` on the manager's server. */
  create<T = unknown>(
    typeid: string,
    ...args: unknown[]
  ): Promise<AutoProxy<T>>;
  create(cls: ManagedClass | string, ...args: unknown[]): Promise<AutoProxy> {
    if (typeof cls === "string") {
      if (cls === "") {
        throw new TypeError(
          'create(typeid, ...args): typeid must be a registered name like "Maths", got ""',
        );
      }
      if (this.#types && !this.#types.has(cls) && registry.has(cls)) {
        // As in Python, a server serves the typeids registered before it started.
        return Promise.reject(
          new TypeError(
            `create("${cls}"): '${cls}' was registered after this manager started, so its server ` +
              `does not serve it; call Manager.register("${cls}", ...) before Manager.start()`,
          ),
        );
      }
      return this.#create(cls, args);
    }
    // Before any await: the calling module is found on the stack.
    const ref = classRef(cls, "create(Class, ...args)");
    if (this.#process === null) {
      // A TCP client names a typeid (the server imports nothing for it).
      const typeid = typeidOf(cls);
      if (typeid === undefined) {
        return Promise.reject(
          new TypeError(
            `create(${cls.name}): a TCP client creates a class by the typeid the serving program registered: ` +
              `client.create("${cls.name}", ...args) (or Manager.register("${cls.name}", ${cls.name}) here too)`,
          ),
        );
      }
      return this.#create(typeid, args);
    }
    return this.#createClass(cls, ref, args);
  }

  async #createClass(
    cls: ManagedClass,
    ref: TargetRef,
    args: unknown[],
  ): Promise<AutoProxy> {
    if (verified.get(cls) !== ref.module) {
      await resolveClass(ref, cls);
      verified.set(cls, ref.module);
    }
    return await this.#create([ref.module, ref.name], args);
  }

  /**
   * Serves until the program is asked to stop (Python's
   * `server.serve_forever()`), then shuts the manager down and resolves:
   * on SIGINT (Ctrl-C) or SIGTERM, when `signal` aborts, when `shutdown()`
   * is called, or when the server's process ends. For a program whose job
   * is to serve TCP clients: `Manager.start({ address, authkey })`, then
   * `await manager.serveForever()`.
   *
   * @throws {TypeError} for a manager that does not listen on TCP, or a client from `connect()`.
   * @example
   * ```ts ignore
   * import { Manager } from "@mp/multiprocessing";
   * const server = await Manager.start({
   *   address: { port: 50000 },
   *   authkey: "a-secret-of-16-bytes+",
   * });
   * console.log("serving on", server.address);
   * await server.serveForever(); // until Ctrl-C
   * ```
   */
  async serveForever(options: { signal?: AbortSignal } = {}): Promise<void> {
    const proc = this.#process;
    if (proc === null) {
      throw new TypeError(
        "serveForever(): this manager is a client (Manager.connect()); the serving program " +
          "calls it on the manager it started with Manager.start({ address, authkey })",
      );
    }
    if (this.#address === undefined) {
      throw new TypeError(
        "serveForever() serves TCP clients: start the manager with { address, authkey } " +
          '(e.g. Manager.start({ address: { port: 50000 }, authkey: "a-secret-of-16-bytes+" }))',
      );
    }
    this.#check();
    const signal = options?.signal;
    if (signal?.aborted) return await this.shutdown();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => stop = r);
    const names: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT", "SIGBREAK"]
      : ["SIGINT", "SIGTERM"];
    const added: Deno.Signal[] = [];
    for (const name of names) {
      try {
        Deno.addSignalListener(name, stop);
        added.push(name);
      } catch {
        // not available here (a worker, or no such signal on this system)
      }
    }
    signal?.addEventListener("abort", stop);
    this.#onShutdown.add(stop);
    try {
      // join() holds the program alive (the server is a daemon) until one comes.
      await Promise.race([proc.join(), stopped]);
    } finally {
      for (const name of added) Deno.removeSignalListener(name, stop);
      signal?.removeEventListener("abort", stop);
      this.#onShutdown.delete(stop);
    }
    await this.shutdown();
  }

  /**
   * Names an object so that TCP clients can `get(name)` it. Await it to be
   * sure the name is known before telling clients.
   *
   * @throws {TypeError} for an empty name, or a proxy of another manager.
   */
  register(name: string, proxy: BaseProxy): Promise<void> {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(
        `register(name, proxy): name must be a non-empty string, got ${
          JSON.stringify(name)
        }`,
      );
    }
    if (!(proxy instanceof BaseProxy)) {
      throw new TypeError(
        `register('${name}', proxy): proxy must come from a manager factory (manager.dict(), ...)`,
      );
    }
    const channel = this.#check();
    const r = refOf(proxy);
    if (r.disposed) throw disposedError(r, `register('${name}', proxy)`);
    if (r.channel.serverId !== channel.serverId) {
      throw new TypeError(
        `register('${name}', proxy): the proxy belongs to another manager`,
      );
    }
    const p = channel.call(OP_REGISTER, name, r.id) as Promise<void>;
    p.catch(() => {});
    return p;
  }

  /**
   * Every object the manager's server holds, with its reference count (how
   * many proxies in all processes, registered names, references stored in
   * other objects, proxies in transit and calls in progress refer to it):
   * Python's `_debug_info()`. When the server runs with
   * `--v8-flags=--expose-gc`, it collects garbage first, so references that
   * went with values no longer stored are counted out.
   */
  async debugInfo(): Promise<ManagerObjectInfo[]> {
    const channel = this.#check();
    return await channel.call(OP_DEBUG) as ManagerObjectInfo[];
  }

  /** How many objects the manager's server holds (Python's `_number_of_objects()`). */
  async numberOfObjects(): Promise<number> {
    return (await this.debugInfo()).length;
  }

  /**
   * The object registered as `name`, as a proxy.
   *
   * @throws {ReferenceError} (rejects) when no object is registered as `name`.
   */
  async get<P extends BaseProxy = BaseProxy>(name: string): Promise<P> {
    const channel = this.#check();
    const [id, kind] = await channel.call(OP_GET, name) as [number, string];
    return makeProxy(channel, id, kind) as P;
  }

  /**
   * Stops the server (for a manager from `start()`), or closes the
   * connection (from `connect()`); a second call does nothing. Proxies and
   * the manager's methods then reject with `EOFError`.
   */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fn of this.#onShutdown) fn();
    const proc = this.#process;
    if (!proc) {
      this.#channel.close("the connection to the manager was closed");
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#channel.call(OP_SHUTDOWN),
        new Promise<void>((r) => timer = setTimeout(r, STOP_TIMEOUT_MS)),
      ]);
    } catch {
      // the server is gone already
    } finally {
      clearTimeout(timer);
    }
    this.#channel.close(
      "the manager was shut down: its objects are gone; start a new one",
    );
    await proc.join(STOP_TIMEOUT_MS);
    if (proc.exitCode === null) proc.terminate();
  }

  /** Shuts the manager down: `await using manager = await Manager.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /**
   * `Manager { address: "127.0.0.1:5000", pid: 2, closed: false }`: where
   * it serves (a local one: no address) and its server's pid when this
   * program started it; asks the server nothing.
   */
  toString(): string {
    const a = this.#address;
    return repr("Manager", {
      address: a ? `${a.hostname}:${a.port}` : undefined,
      pid: this.#process?.pid ?? undefined,
      closed: this.#closed,
    });
  }

  /** {@linkcode Manager.toString}, for `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}
