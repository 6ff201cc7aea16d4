/**
 * A pool run with an uneven workload, traced and drawn: 24 tasks of 20 ms
 * and one of 400 ms (the straggler) on four workers, which also take a
 * shared Lock now and then. The trace (Chrome Trace Event Format: Perfetto
 * and `about:tracing` open it too) and its page are written side by side;
 * the page shows the straggler's worker busy long after the others went
 * idle, outlined as the longest task.
 *
 * ```
 * trace: /tmp/.../trace.json
 * page: /tmp/.../trace.html
 * the longest task: work (400 ms asked) on PoolWorker-N
 * ```
 *
 * Run: `deno task example:trace` (`--out path.json` chooses where). Any
 * program is traced the same way, from its start, when run with
 * `MP_TRACE=path.json`; `deno task trace:view path.json` draws it.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Lock, Pool, renderTrace, startTrace, stopTrace } from "../mod.ts";

let lock: Lock | undefined;

/** The pool's initializer: the Lock every task takes for a moment. */
export function setLock(l: Lock): void {
  lock = l;
}

/**
 * A task of `ms` milliseconds: holds the lock for 2 of them, then waits out
 * the rest (a sleep, not a busy loop, so that the picture is the same on a
 * loaded machine, where a busy thread is off the CPU for long stretches).
 */
export async function work(ms: number): Promise<number> {
  await lock!.acquire();
  const held = performance.now() + 2;
  while (performance.now() < held);
  lock!.release();
  await new Promise((r) => setTimeout(r, ms - 2));
  return ms;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { out: { type: "string" } },
  });
  const out = values.out ??
    `${await Deno.makeTempDir({ prefix: "mp-trace-" })}/trace.json`;
  const jobs = Array.from({ length: 24 }, () => 20);
  jobs.splice(5, 0, 400); // the straggler
  {
    await using pool = new Pool({
      processes: 4,
      initializer: setLock,
      initargs: [new Lock()],
    });
    // Trace the run, not the workers' start (which MP_TRACE would show too):
    // pool workers already running join a trace at their next task.
    await pool.map(work, [2, 2, 2, 2], 1);
    startTrace(out);
    await pool.map(work, jobs, 1);
  }
  stopTrace();
  const page = await renderTrace(out);
  console.log(`trace: ${out}`);
  console.log(`page: ${page}`);
  // What the page's list of longest tasks starts with.
  const html = await Deno.readTextFile(page);
  const first =
    /<tr class="long-task"><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([\d.]+)/
      .exec(html);
  if (first) {
    const asked = Number(first[3]) >= 400 ? "400 ms asked" : `${first[3]} ms`;
    console.log(`the longest task: ${first[1]} (${asked}) on ${first[2]}`);
  }
}
