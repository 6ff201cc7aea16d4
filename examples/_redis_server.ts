// A local redis-server for the examples, tests and benchmarks: its own free
// port and temporary directory, AOF on (appendfsync everysec), stopped (and
// its directory removed) after.

/** A running redis-server of a test. */
export interface RedisServer {
  /** redis://127.0.0.1:<port> (with the password, when there is one). */
  url: string;
  port: number;
  dir: string;
  /** SIGKILLs the server (as a crash would) and waits for it to end. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (reads its AOF). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A TCP port nothing listens on now (bind port 0, read it, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts redis-server; `password` sets requirepass. */
export async function startRedis(
  options: { password?: string } = {},
): Promise<RedisServer> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "mp_redis_" });
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
    "--daemonize",
    "no",
    "--logfile",
    "redis.log",
  ];
  if (options.password) args.push("--requirepass", options.password);
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    try {
      child = new Deno.Command("redis-server", {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (e) {
      throw new Error(
        `cannot start redis-server (${e}): install it (apt-get install -y redis-server) or set REDIS_URL`,
      );
    }
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        c.close();
        return;
      } catch {
        if (Date.now() > until) {
          throw new Error(
            "redis-server did not start in 15 s (is it installed? apt-get install -y redis-server)",
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const end = async (signal: Deno.Signal) => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill(signal);
    } catch {
      // Already ended.
    }
    await c.status;
  };
  await start();
  const auth = options.password ? `:${options.password}@` : "";
  return {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    dir,
    kill: () => end("SIGKILL"),
    restart: start,
    async [Symbol.asyncDispose]() {
      await end("SIGTERM");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A worker program (`worker.ts`) started by `startWorker`. */
export interface WorkerProgram {
  pid: number;
  /** What it printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with its exit code once it ended. */
  ended: Promise<number>;
  /** SIGKILLs it and waits for it to end. */
  kill(): Promise<void>;
  /** Stops it (SIGTERM: it finishes the tasks in hand) and waits. */
  [Symbol.asyncDispose](): Promise<void>;
}

const WORKER = new URL("../worker.ts", import.meta.url);

/** Starts `worker.ts` for pool `pool` (allowed modules under `allow`); resolves once it is ready. */
export async function startWorker(
  url: string,
  pool: string,
  options: {
    processes?: number;
    visibilityTimeout?: number;
    allow: string;
    name?: string;
  },
): Promise<WorkerProgram> {
  const args = [
    "run",
    "-A",
    WORKER.pathname,
    "--url",
    url,
    "--pool",
    pool,
    "--processes",
    String(options.processes ?? 1),
    "--allow-module",
    options.allow,
    "--visibility-timeout",
    String(options.visibilityTimeout ?? 1_000),
  ];
  if (options.name) args.push("--name", options.name);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "", err = "";
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const collect = async (
    stream: ReadableStream<Uint8Array>,
    add: (s: string) => void,
  ) => {
    for await (const s of stream.pipeThrough(new TextDecoderStream())) add(s);
  };
  const reading = Promise.all([
    collect(child.stdout, (s) => {
      out += s;
      if (out.includes(": ready")) ready();
    }),
    collect(child.stderr, (s) => err += s),
  ]);
  const ended = child.status.then(async (s) => {
    await reading;
    return s.code;
  });
  const stop = async (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Already ended.
    }
    await ended;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    isReady,
    ended.then((code) => {
      throw new Error(
        `worker ended (exit ${code}) before ready:\n${out}${err}`,
      );
    }),
    new Promise((_, reject) =>
      timer = setTimeout(
        () => reject(new Error("worker not ready in 30 s")),
        30_000,
      )
    ),
  ]).catch(async (e) => {
    await stop("SIGKILL");
    throw e;
  }).finally(() => clearTimeout(timer));
  return {
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    ended,
    kill: () => stop("SIGKILL"),
    [Symbol.asyncDispose]: () => stop("SIGTERM"),
  };
}
