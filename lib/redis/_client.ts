/**
 * Connections to Redis (ioredis): bounded connecting with named errors, and
 * sockets that keep the program alive only while a command is in flight
 * (so a queue or pool nobody uses any more never holds the program open).
 * Also the codec's bytes as Redis values. The one place that imports ioredis.
 *
 * @module
 */

import { Redis } from "ioredis";
import { Buffer } from "node:buffer";
import { AuthenticationError } from "../errors.ts";
import { RedisConnectionError } from "./errors.ts";
import { decodeBytes, encodeWith } from "./_bytes.ts";

export type { Redis };

/** Default bound (ms) of connecting, the first command included. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The URL with its password hidden, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.href;
  } catch {
    return url;
  }
}

/** Checks a `url` option: redis:// or rediss://, with a host. */
export function checkUrl(url: unknown, what: string): string {
  if (typeof url !== "string") {
    throw new TypeError(
      `${what}: url must be a string like "redis://127.0.0.1:6379", got ${
        url === null ? "null" : typeof url
      }`,
    );
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(
      `${what}: url ${
        JSON.stringify(url)
      } is not a URL; write it like "redis://127.0.0.1:6379" (or rediss:// for TLS)`,
    );
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(
      `${what}: url ${
        JSON.stringify(safeUrl(url))
      } must start with redis:// (or rediss:// for TLS)`,
    );
  }
  const db = u.searchParams.get("db");
  if (db !== null && !/^\d+$/.test(db)) {
    throw new TypeError(
      `${what}: url ${JSON.stringify(safeUrl(url))} names the database ${
        JSON.stringify(db)
      }; a Redis database is a number: write redis://host:port/0`,
    );
  }
  if (!/^\/?\d*$/.test(u.pathname)) {
    throw new TypeError(
      `${what}: url ${JSON.stringify(safeUrl(url))} names the database ${
        JSON.stringify(u.pathname.slice(1))
      }; a Redis database is a number: write redis://host:port/0 (or no path, for 0)`,
    );
  }
  return url;
}

/** The database a checked url names: its path (`/3`), else its `?db=3` (as ioredis reads it), else 0. */
function databaseOf(url: string): number {
  const u = new URL(url);
  return Number(u.pathname.slice(1) || u.searchParams.get("db") || 0);
}

/** Checks a `name` option (the Redis keys are derived from it). */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || name === "" || name.length > 200) {
    throw new TypeError(
      `${what}: name must be a non-empty string (up to 200 characters) naming the queue or pool in Redis, got ${
        typeof name === "string" ? JSON.stringify(name) : String(name)
      }`,
    );
  }
  return name;
}

/** Checks an optional positive-integer millisecond option. */
export function checkMs(v: unknown, what: string): void {
  if (
    v !== undefined &&
    (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
  ) {
    throw new RangeError(
      `${what} must be a positive integer number of milliseconds, got ${
        String(v)
      }`,
    );
  }
}

function translate(e: unknown, url: string): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: string } | null)?.code;
  if (/WRONGPASS|invalid password|invalid username-password/i.test(msg)) {
    return new AuthenticationError(
      `redis at ${
        safeUrl(url)
      } refused the user name or password (${msg}); fix them in the url: redis://USER:PASSWORD@host:port (or redis://:PASSWORD@host:port)`,
    );
  }
  if (/DB index/i.test(msg)) {
    return new RedisConnectionError(
      `redis at ${safeUrl(url)} has no database ${
        databaseOf(url)
      } (${msg}); use a number below its "databases" setting (16 by default)`,
    );
  }
  if (/NOAUTH/i.test(msg)) {
    return new AuthenticationError(
      `redis at ${
        safeUrl(url)
      } needs a password (${msg}); put it in the url: redis://:PASSWORD@host:port`,
    );
  }
  return new RedisConnectionError(
    `cannot reach redis at ${safeUrl(url)} (${
      code ? `${code}: ` : ""
    }${msg}); check that redis-server runs there and the url's host and port`,
    { cause: e },
  );
}

/** An error for a command that failed on a connection that had worked. */
export function commandError(e: unknown, url: string): Error {
  const msg = e instanceof Error ? e.message : String(e);
  if (
    /NOAUTH|WRONGPASS|Connection is closed|ECONNREFUSED|max retries|ETIMEDOUT/i
      .test(msg)
  ) {
    return translate(e, url);
  }
  return e instanceof Error ? e : new Error(msg);
}

interface Socketish {
  ref?: () => void;
  unref?: () => void;
}

/**
 * One Redis connection. `run` wraps each command: the socket is ref'd while
 * commands are in flight and unref'd when idle.
 */
export class Link {
  readonly redis: Redis;
  readonly url: string;
  #busy = 0;
  #closed = false;

  private constructor(redis: Redis, url: string) {
    this.redis = redis;
    this.url = url;
  }

  /**
   * Connects within `timeoutMs`, checking the password with a PING; throws
   * `AuthenticationError` or `RedisConnectionError`. `name`: the
   * connection's CLIENT SETNAME (set again on every reconnect), so that
   * another program can find it in CLIENT LIST (to CLIENT UNBLOCK it).
   */
  static async open(
    url: string,
    timeoutMs: number,
    name?: string,
  ): Promise<Link> {
    let connected = false;
    let lastError: unknown;
    const redis = new Redis(url, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      enableAutoPipelining: false,
      // Once connected, a lost connection is retried (Redis restarting);
      // commands wait meanwhile, each bounded by maxRetriesPerRequest.
      retryStrategy: (times: number) =>
        connected ? Math.min(50 * times, 1000) : null,
      maxRetriesPerRequest: 40,
      enableReadyCheck: false,
      ...(name ? { connectionName: name } : {}),
    });
    redis.on("error", (e: unknown) => {
      lastError = e;
    });
    const link = new Link(redis, url);
    redis.on("connect", () => link.#apply());
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        (async () => {
          await redis.connect();
          await redis.ping();
          // ioredis selects the url's database itself, but a refused SELECT
          // only reaches its "error" event, and it goes on in database 0.
          const db = databaseOf(url);
          if (db !== 0) await redis.select(db);
        })(),
        new Promise((_, reject) =>
          timer = setTimeout(
            () =>
              reject(
                new Error(`no answer within ${timeoutMs} ms (connectTimeout)`),
              ),
            timeoutMs,
          )
        ),
      ]);
    } catch (e) {
      redis.disconnect();
      const why = e instanceof Error && /Connection is closed/.test(e.message)
        ? lastError ?? e
        : e;
      throw translate(why, url);
    } finally {
      clearTimeout(timer);
    }
    connected = true;
    link.#apply();
    return link;
  }

  #apply(): void {
    const s = (this.redis as unknown as { stream?: Socketish }).stream;
    if (this.#busy > 0) s?.ref?.();
    else s?.unref?.();
  }

  /**
   * Runs `f` on the connection, keeping the program alive meanwhile unless
   * `holds` is false (a pool's results loop: whoever waits on a result holds
   * the program, so a pool nobody waits on never does).
   */
  async run<T>(f: (r: Redis) => Promise<T>, holds = true): Promise<T> {
    if (this.#closed) {
      throw new RedisConnectionError(
        `the connection to ${
          safeUrl(this.url)
        } was closed (close() was called)`,
      );
    }
    const held = holds ? 1 : 0;
    if ((this.#busy += held) === held && held) this.#apply();
    try {
      return await f(this.redis);
    } catch (e) {
      throw commandError(e, this.url);
    } finally {
      if (held && --this.#busy === 0) this.#apply();
    }
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Drops the connection; commands in flight reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.redis.disconnect();
  }
}

/**
 * Sends `command` and gives its reply with bulk strings as Buffers (ioredis
 * has a `<command>Buffer` method for every command, typed or not).
 */
export function bufferCommand(
  r: Redis,
  command: string,
  ...args: (string | number | Uint8Array)[]
): Promise<unknown> {
  const f = (r as unknown as Record<string, (...a: unknown[]) => unknown>)[
    `${command}Buffer`
  ];
  return f.apply(r, args) as Promise<unknown>;
}

/** The codec's bytes of `value`, as a Buffer for Redis. */
export function encode(value: unknown): Buffer {
  return encodeWith(value, Buffer.allocUnsafe);
}

/** The value in codec bytes `b`. */
export const decode: (b: Uint8Array) => unknown = decodeBytes;

/** `b` as a Buffer (no copy), as ioredis wants binary arguments. */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
}

/** A unique name for a consumer or caller: host, pid, random. */
export function uniqueId(): string {
  let host = "host";
  try {
    host = Deno.hostname();
  } catch {
    // No sys permission: the random part keeps it unique.
  }
  return `${host}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
}

const defined = new WeakMap<Redis, Set<string>>();

/**
 * Runs the Lua script `lua` (sent once, then by its SHA: ioredis'
 * defineCommand); `keys` of `args` are key names. `buffers`: bulk replies
 * as Buffers.
 */
export function script(
  r: Redis,
  name: string,
  lua: string,
  keys: number,
  args: (string | number | Uint8Array)[],
  buffers = false,
): Promise<unknown> {
  let names = defined.get(r);
  if (!names) defined.set(r, names = new Set());
  if (!names.has(name)) {
    r.defineCommand(name, { numberOfKeys: keys, lua });
    names.add(name);
  }
  const f = (r as unknown as Record<string, (...a: unknown[]) => unknown>)[
    buffers ? `${name}Buffer` : name
  ];
  return f.apply(r, args) as Promise<unknown>;
}

/** Waits `ms` (a poll's backoff). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
