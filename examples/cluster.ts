/**
 * More than one machine, on one: a `RedisPool` whose workers are two other
 * programs (`worker.ts`), found through Redis. It starts a local
 * `redis-server` when `REDIS_URL` is not set, starts two worker programs,
 * maps `square` over 12 numbers on them, and prints which worker did what:
 *
 * ```
 * squares: 0 1 4 9 16 25 36 49 64 81 100 121
 * worker-A did 6 tasks: 0 2 4 6 8 10
 * worker-B did 6 tasks: 1 3 5 7 9 11
 * ```
 *
 * (Which worker takes which number depends on timing.) On real machines:
 * run `redis-server --appendonly yes`, on each worker machine
 * `deno run -A worker.ts --url redis://HOST:6379 --pool cluster --allow-module <this file's URL prefix>`,
 * and this file with `REDIS_URL=redis://HOST:6379`.
 *
 * Run: `deno task example:cluster`.
 *
 * @module
 */
import { RedisPool } from "../redis.ts";
import { startRedis, startWorker } from "./_redis_server.ts";

/** The task: a square, and the worker program (its pid) that computed it. */
export async function square(x: number): Promise<[number, number]> {
  // Long enough that both workers get a share.
  await new Promise((r) => setTimeout(r, 30));
  return [x * x, Deno.pid];
}

if (import.meta.main) {
  await using local = Deno.env.get("REDIS_URL")
    ? undefined
    : await startRedis();
  const url = Deno.env.get("REDIS_URL") ?? local!.url;
  const here = new URL(".", import.meta.url).href;
  const names = ["worker-A", "worker-B"];
  await using a = await startWorker(url, "cluster", {
    allow: here,
    name: names[0],
  });
  await using b = await startWorker(url, "cluster", {
    allow: here,
    name: names[1],
  });
  const byPid = new Map([[a.pid, names[0]], [b.pid, names[1]]]);

  await using pool = new RedisPool({
    url,
    name: "cluster",
    module: import.meta.url,
  });
  const xs = Array.from({ length: 12 }, (_, i) => i);
  const results = await pool.map(square, xs, 1);
  console.log(`squares: ${results.map(([sq]) => sq).join(" ")}`);
  for (const name of names) {
    const did = xs.filter((_, i) => byPid.get(results[i][1]) === name);
    console.log(`${name} did ${did.length} tasks: ${did.join(" ")}`);
  }
}
