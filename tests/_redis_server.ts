// A real redis-server for the tests: its own free port and temporary
// directory, AOF on (appendfsync everysec), stopped (and removed) after.
import assert from "node:assert/strict";

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
    child = new Deno.Command("redis-server", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        c.close();
        return;
      } catch {
        assert.ok(Date.now() < until, "redis-server did not start in 15 s");
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
