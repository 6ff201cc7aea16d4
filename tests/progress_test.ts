// Progress of long pool calls: the onProgress callback for every map and
// imap method, the line on stderr (a pipe here: nothing unless "always"),
// bad options. Sanitizers are on: a progress timer left behind fails a test.
import assert from "node:assert/strict";
import { Pool, type ProgressInfo } from "../mod.ts";
import { formatProgress, liveProgressTimers } from "../lib/_progress.ts";
import { bounded } from "./_bounded.ts";
import { runProgram } from "./_run_task.ts";

const TARGETS = new URL("./fixtures/trace_targets.ts", import.meta.url);
const { work, inc, mul } = await import(TARGETS.href);

function checkCalls(calls: ProgressInfo[], total: number | undefined): void {
  // Unref'd timers escape Deno's sanitizer: count them.
  assert.equal(liveProgressTimers(), 0, "a progress timer is left running");
  assert.ok(calls.length >= 1);
  const last = calls.at(-1)!;
  assert.equal(last.ended, true);
  assert.equal(calls.filter((c) => c.ended).length, 1, "one last call");
  assert.equal(last.total, total);
  for (let i = 1; i < calls.length; i++) {
    assert.ok(calls[i].done >= calls[i - 1].done);
    assert.ok(calls[i].elapsedMs >= calls[i - 1].elapsedMs);
  }
}

Deno.test("map reports progress to a callback: done/total, rate, elapsed, ETA, one last call", async () => {
  await using pool = new Pool({ processes: 2, module: TARGETS });
  const calls: ProgressInfo[] = [];
  const items = Array.from({ length: 120 }, () => 10);
  const r = await bounded(
    pool.map(work, items, { chunksize: 2, progress: (p) => calls.push(p) }),
  );
  assert.equal(r.length, 120);
  checkCalls(calls, 120);
  assert.equal(calls.at(-1)!.done, 120);
  assert.equal(calls.at(-1)!.etaMs, 0);
  // 600 ms of work on two workers, results arriving all along: the timer
  // (every 200 ms) reported on the way, with a rate and an ETA.
  const mid = calls.filter((c) => !c.ended && c.done > 0);
  assert.ok(mid.length >= 1, JSON.stringify(calls));
  assert.ok(mid[0].done < 120 && mid[0].rate > 0);
  assert.ok(mid[0].etaMs !== undefined && mid[0].etaMs > 0);
});

Deno.test("starmap, mapAsync, starmapAsync take the options too", async () => {
  await using pool = new Pool({ processes: 2, module: TARGETS });
  const a: ProgressInfo[] = [], b: ProgressInfo[] = [], c: ProgressInfo[] = [];
  const pairs: [number, number][] = [[1, 2], [3, 4], [5, 6]];
  assert.deepEqual(
    await bounded(pool.starmap(mul, pairs, { progress: (p) => a.push(p) })),
    [2, 12, 30],
  );
  assert.deepEqual(
    await bounded(
      pool.mapAsync(inc, [1, 2, 3], {
        chunksize: 1,
        progress: (p) => b.push(p),
      })
        .get(),
    ),
    [2, 3, 4],
  );
  assert.deepEqual(
    await bounded(
      pool.starmapAsync(mul, pairs, { progress: (p) => c.push(p) }).get(),
    ),
    [2, 12, 30],
  );
  for (const calls of [a, b, c]) {
    checkCalls(calls, 3);
    assert.equal(calls.at(-1)!.done, 3);
  }
});

Deno.test("imap knows the total of an array, not of a generator; break ends the report", async () => {
  await using pool = new Pool({ processes: 2, module: TARGETS });
  const a: ProgressInfo[] = [], b: ProgressInfo[] = [], c: ProgressInfo[] = [];
  const got: number[] = [];
  for await (
    const x of pool.imap(inc, [1, 2, 3, 4], { progress: (p) => a.push(p) })
  ) got.push(x as number);
  assert.deepEqual(got, [2, 3, 4, 5]);
  checkCalls(a, 4);
  assert.equal(a.at(-1)!.done, 4);
  function* gen() {
    for (let i = 0; i < 5; i++) yield i;
  }
  let n = 0;
  for await (
    const _ of pool.imapUnordered(inc, gen(), {
      chunksize: 2,
      progress: (p) => b.push(p),
    })
  ) n++;
  assert.equal(n, 5);
  checkCalls(b, undefined);
  assert.equal(b.at(-1)!.done, 5);
  assert.equal(b.at(-1)!.etaMs, undefined);
  function* endless() {
    for (let i = 0;; i++) yield i;
  }
  for await (
    const _ of pool.imap(inc, endless(), { progress: (p) => c.push(p) })
  ) {
    break;
  }
  checkCalls(c, undefined);
});

Deno.test("a map that fails or a pool that is terminated ends its report (no timer left)", async () => {
  const calls: ProgressInfo[] = [];
  const pool = new Pool({ processes: 1, module: TARGETS });
  const r = pool.mapAsync(work, [200, 200, 200], {
    chunksize: 1,
    progress: (p) => calls.push(p),
  });
  await new Promise((res) => setTimeout(res, 50));
  pool.terminate();
  await bounded(pool.join());
  await assert.rejects(r.get(), /terminated/);
  checkCalls(calls, 3);
});

Deno.test("bad progress and chunksize options name the value", async () => {
  await using pool = new Pool({ processes: 1, module: TARGETS });
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    pool.map(inc, [1], { progress: "yes" as any }),
    (e: Error) => e instanceof TypeError && e.message.includes('"yes"'),
  );
  await assert.rejects(pool.map(inc, [1], { chunksize: 0 }), RangeError);
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    pool.map(inc, [1], { chunkSize: 5 } as any),
    /unknown map option "chunkSize" \(did you mean chunksize\?\): the options are chunksize, progress/,
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => pool.imap(inc, [1], { progress: 5 as any }), TypeError);
});

Deno.test("progress: true draws nothing when stderr is not a terminal; 'always' draws lines", async () => {
  const quiet = await runProgram(TARGETS, [], ["progress-true"]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stdout, "40\n");
  assert.equal(quiet.stderr, "");
  const loud = await runProgram(TARGETS, [], ["progress-always"]);
  assert.equal(loud.code, 0, loud.stderr);
  assert.equal(loud.stdout, "40\n");
  const lines = loud.stderr.trimEnd().split("\n");
  assert.match(
    lines.at(-1)!,
    /^work 40\/40 100% [\d,]+\/s [\d.]+s eta 0.0s done$/,
  );
  assert.ok(!loud.stderr.includes("\r"), "no redraws into a log");
});

Deno.test("the progress line says done/total, percent, rate, elapsed, ETA", () => {
  assert.equal(
    formatProgress("square", {
      done: 4200,
      total: 10000,
      elapsedMs: 3000,
      rate: 1400,
      etaMs: 5571,
      ended: false,
    }),
    "square 4,200/10,000 42% 1,400/s 3.0s eta 5.6s",
  );
  assert.equal(
    formatProgress("f", {
      done: 7,
      total: undefined,
      elapsedMs: 125_000,
      rate: 0.056,
      etaMs: undefined,
      ended: true,
    }),
    "f 7 0/s 2m05s done",
  );
});

Deno.test("a progress callback that throws fails its call with that error, on the way or at the end; the program goes on", async () => {
  await using pool = new Pool({ processes: 2, module: TARGETS });
  const items = Array.from({ length: 60 }, () => 10);
  const boom = new Error("drawing failed");
  // On the way: the timer's report (every 200 ms of 300 ms of work).
  await assert.rejects(
    bounded(pool.map(work, items, {
      progress: (p) => {
        if (!p.ended) throw boom;
      },
    })),
    (e) => e === boom,
  );
  // At the end, and for an imap on the way: its next() rejects.
  await assert.rejects(
    bounded(pool.map(inc, [1, 2, 3], {
      progress: (p) => {
        if (p.ended) throw boom;
      },
    })),
    (e) => e === boom,
  );
  const it = pool.imap(work, items, {
    progress: (p) => {
      if (!p.ended) throw boom;
    },
  });
  await assert.rejects(
    bounded((async () => {
      for (let i = 0; i < items.length; i++) await it.next();
    })()),
    (e) => e === boom,
  );
  await bounded(it.return());
  assert.equal(liveProgressTimers(), 0, "a progress timer is left running");
});

Deno.test("an empty map still makes its one last report", async () => {
  await using pool = new Pool({ processes: 1, module: TARGETS });
  const calls: ProgressInfo[] = [];
  assert.deepEqual(
    await bounded(pool.map(inc, [], { progress: (p) => calls.push(p) })),
    [],
  );
  checkCalls(calls, 0);
  assert.equal(calls[0].done, 0);
});
