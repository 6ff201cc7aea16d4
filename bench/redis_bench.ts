/**
 * The Redis pool beside BullMQ on the same local redis-server, in one run,
 * interleaved round by round (the machine is noisy: only same-run ratios
 * mean anything). Two worker programs each (ours: `worker.ts --processes
 * 1`; BullMQ: a `Worker` with concurrency 100):
 *
 * - one task's latency: `await pool.apply(square, [x])` vs `queue.add` +
 *   `job.waitUntilFinished`, one at a time (median);
 * - separate tasks/s: 5000 `apply` calls at once vs `addBulk` of 5000 jobs,
 *   until every result is in;
 * - chunked map tasks/s (ours): `pool.map(square, 400k items, 10k)`.
 *
 * Run: `deno task bench:redis [--rounds N]` (needs redis-server, or set
 * REDIS_URL).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Queue, QueueEvents } from "bullmq";
import { RedisPool } from "../redis.ts";
import { startRedis, startWorker } from "../examples/_redis_server.ts";
import { square } from "./_redis_targets.ts";
import { median, minMax } from "./_stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string", default: "3" } },
});
const ROUNDS = Number(values.rounds);
const LATENCY_N = 200;
const SEPARATE_N = 5000;
const MAP_N = 400_000;
const MAP_CHUNK = 10_000;

const range = (xs: number[], digits = 2) =>
  minMax(xs, (x) => x.toFixed(digits));

await using redis = await startRedis();
const port = redis.port;
const targets = new URL("./", import.meta.url).href;
await using _w1 = await startWorker(redis.url, "bench", {
  allow: targets,
  name: "ours-1",
});
await using _w2 = await startWorker(redis.url, "bench", {
  allow: targets,
  name: "ours-2",
});

const bullWorkers = [1, 2].map(() =>
  new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_bullmq_worker.ts", import.meta.url).pathname,
      "127.0.0.1",
      String(port),
      "bullbench",
      "100",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn()
);
for (const w of bullWorkers) {
  const reader = w.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const r = await reader.read();
    if (r.done) throw new Error("a BullMQ worker ended before ready");
    out += r.value;
  }
  reader.releaseLock();
  w.stdout.cancel().catch(() => {});
}
const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
const queue = new Queue("bullbench", { connection });
const events = new QueueEvents("bullbench", { connection });
await events.waitUntilReady();
const pool = new RedisPool({
  url: redis.url,
  name: "bench",
  module: targets + "_redis_targets.ts",
  processes: 2,
});

async function oursLatency(): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < LATENCY_N; i++) {
    const t = performance.now();
    await pool.apply(square, [i]);
    ts.push(performance.now() - t);
  }
  return median(ts);
}

async function bullLatency(): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < LATENCY_N; i++) {
    const t = performance.now();
    const job = await queue.add("sq", { x: i }, {
      removeOnComplete: { count: 20_000 },
    });
    await job.waitUntilFinished(events);
    ts.push(performance.now() - t);
  }
  return median(ts);
}

async function oursSeparate(): Promise<number> {
  const t = performance.now();
  await Promise.all(
    Array.from({ length: SEPARATE_N }, (_, i) => pool.apply(square, [i])),
  );
  return SEPARATE_N / ((performance.now() - t) / 1000);
}

async function bullSeparate(): Promise<number> {
  const t = performance.now();
  // Completions may come before addBulk returns the ids: count both ways.
  const completed = new Set<string>();
  const ids: string[] = [];
  let left = Infinity;
  let done!: () => void;
  const all = new Promise<void>((r) => done = r);
  const onDone = ({ jobId }: { jobId: string }) => {
    completed.add(jobId);
    if (--left === 0) done();
  };
  events.on("completed", onDone);
  for (let i = 0; i < SEPARATE_N; i += 1000) {
    const jobs = await queue.addBulk(
      Array.from({ length: Math.min(1000, SEPARATE_N - i) }, (_, k) => ({
        name: "sq",
        data: { x: i + k },
        opts: { removeOnComplete: { count: 20_000 } },
      })),
    );
    for (const j of jobs) ids.push(j.id!);
  }
  left = ids.filter((id) => !completed.has(id)).length;
  if (left > 0) await all;
  events.off("completed", onDone);
  return SEPARATE_N / ((performance.now() - t) / 1000);
}

const items = Array.from({ length: MAP_N }, (_, i) => i);
async function oursMap(): Promise<number> {
  const t = performance.now();
  const r = await pool.map(square, items, MAP_CHUNK);
  if (r[MAP_N - 1] !== (MAP_N - 1) ** 2) throw new Error("wrong map result");
  return MAP_N / ((performance.now() - t) / 1000);
}

// Warm up both.
await oursLatency();
await bullLatency();
await oursSeparate();
const rows = {
  oursLat: [] as number[],
  bullLat: [] as number[],
  latRatio: [] as number[],
  oursSep: [] as number[],
  bullSep: [] as number[],
  sepRatio: [] as number[],
  oursMap: [] as number[],
};
const step = <T>(what: string, p: Promise<T>): Promise<T> => {
  if (Deno.env.get("BENCH_TRACE")) console.error(what);
  return p;
};
for (let r = 0; r < ROUNDS; r++) {
  const ol = await step("ours latency", oursLatency());
  const bl = await step("BullMQ latency", bullLatency());
  const os = await step("ours separate", oursSeparate());
  const bs = await step("BullMQ separate", bullSeparate());
  const om = await step("ours map", oursMap());
  rows.oursLat.push(ol);
  rows.bullLat.push(bl);
  rows.latRatio.push(ol / bl);
  rows.oursSep.push(os);
  rows.bullSep.push(bs);
  rows.sepRatio.push(os / bs);
  rows.oursMap.push(om);
  console.log(
    `round ${r + 1}: latency ours ${ol.toFixed(2)} ms, BullMQ ${
      bl.toFixed(2)
    } ms (${(ol / bl).toFixed(2)}x); ` +
      `separate ours ${os.toFixed(0)}/s, BullMQ ${bs.toFixed(0)}/s (${
        (os / bs).toFixed(1)
      }x); ` +
      `chunked map ours ${om.toFixed(0)}/s`,
  );
}
console.log(
  `\none-task latency (median ms): ours ${range(rows.oursLat)}, BullMQ ${
    range(rows.bullLat)
  }; ours/BullMQ ${range(rows.latRatio)} (target <= 0.4)`,
);
console.log(
  `separate tasks/s: ours ${range(rows.oursSep, 0)}, BullMQ ${
    range(rows.bullSep, 0)
  }; ours/BullMQ ${range(rows.sepRatio, 1)} (target >= 3)`,
);
console.log(
  `chunked map tasks/s (2 workers, chunks of ${MAP_CHUNK}): ours ${
    range(rows.oursMap, 0)
  } (target >= 500000)`,
);

await pool[Symbol.asyncDispose]();
await events.close();
await queue.obliterate({ force: true }).catch(() => {});
await queue.close();
for (const w of bullWorkers) {
  w.kill("SIGTERM");
  await w.status;
}
