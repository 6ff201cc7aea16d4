/**
 * Micro-benchmarks of what watching a pool adds where the pool's time goes,
 * measured without the noise of workers (`bench/observe_bench.ts` times whole
 * maps, whose run-to-run noise on a shared machine is larger than these
 * costs):
 *
 * - collecting 100k chunk results of one item (a map with chunksize 1) into
 *   a ResultJob, without progress (the baseline) and with it (one addition
 *   per result; the drawing runs on a timer);
 * - a shared-memory wait that has to wait, with tracing off (the baseline:
 *   one boolean check) and on.
 *
 * Run: `deno bench -A bench/observe.bench.ts`.
 *
 * @module
 */
import { AsyncResult, ResultJob } from "../lib/pool/_jobs.ts";
import { startProgress } from "../lib/_progress.ts";
import { waitSync } from "../lib/shm/_wait.ts";
import { startTrace, stopTrace } from "../mod.ts";

const N = 100_000;
const one = [1];

function collect(progress: boolean): void {
  const job = new ResultJob(new AsyncResult(), N, 1, () => {});
  if (progress) job.progress = startProgress(() => {}, N, "bench");
  for (let i = 0; i < N; i++) job.result(i, one);
}

Deno.bench("100k results, no progress", {
  group: "collect a map's results",
  baseline: true,
}, () => collect(false));
Deno.bench("100k results, progress callback", {
  group: "collect a map's results",
}, () => collect(true));

// A wait that times out at once (0 ms) still goes through Atomics.wait and
// the hooks around it.
const cell = new Int32Array(new SharedArrayBuffer(4));
const path = await Deno.makeTempFile({ suffix: ".json" });
Deno.bench("1000 waitSync, tracing off", {
  group: "1000 shared-memory waits",
  baseline: true,
}, () => {
  for (let i = 0; i < 1000; i++) waitSync(cell, 0, 0, 0);
});
Deno.bench("1000 waitSync, tracing on (shorter than the threshold)", {
  group: "1000 shared-memory waits",
}, (b) => {
  startTrace(path);
  b.start();
  for (let i = 0; i < 1000; i++) waitSync(cell, 0, 0, 0);
  b.end();
  stopTrace();
});
