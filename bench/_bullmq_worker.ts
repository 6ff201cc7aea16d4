// A BullMQ worker program for bench/redis_bench.ts: squares job.data.x.
//   deno run -A bench/_bullmq_worker.ts <host> <port> <queue> <concurrency>
import { Worker } from "bullmq";

const [host, port, name, concurrency] = Deno.args;
const worker = new Worker(
  name,
  (job) => Promise.resolve((job.data.x as number) ** 2),
  {
    connection: { host, port: Number(port), maxRetriesPerRequest: null },
    concurrency: Number(concurrency),
  },
);
await worker.waitUntilReady();
console.log("bullmq worker: ready");
for (const s of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(s, () => worker.close().then(() => Deno.exit(0)));
}
