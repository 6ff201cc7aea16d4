// Tracing (MP_TRACE / startTrace) and its HTML view: what the trace holds,
// across real pool workers and processes; a killed program's trace; a bad
// path; a huge trace; the page in headless Chromium.
import assert from "node:assert/strict";
import {
  Barrier,
  Event,
  Lock,
  Manager,
  Pipe,
  Pool,
  Process,
  Queue,
  renderTrace,
  startTrace,
  stopTrace,
} from "../mod.ts";
import { parseTrace, traceHtml } from "../lib/trace/_view.ts";
import { traceSpan, waitLabel } from "../lib/trace/_writer.ts";
import { bounded } from "./_bounded.ts";
import { runProgram, runTask } from "./_run_task.ts";

const TARGETS = new URL("./fixtures/trace_targets.ts", import.meta.url);
// deno-lint-ignore no-explicit-any
type Ev = any;

/** Runs the fixture program in `mode` with MP_TRACE=`path` (bounded). */
async function runTraced(mode: string, path: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TARGETS.pathname, mode],
    env: { MP_TRACE: path },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

/** Waits (here, the main program) for a Lock a child holds for `ms`; returns the child. */
async function waitForLockHeld(ms: number): Promise<Process> {
  const { holdLock } = await import(TARGETS.href);
  const lock = new Lock();
  const p = new Process({
    target: holdLock,
    args: [lock, ms],
    module: TARGETS,
  });
  await bounded(p.start());
  await new Promise((r) => setTimeout(r, 10));
  await bounded(lock.acquire());
  lock.release();
  return p;
}

/** A pool task's span: an "X" without a category. */
function isTask(e: Ev): boolean {
  return e.ph === "X" && e.cat === undefined;
}

function names(events: Ev[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const e of events) {
    if (e.ph === "M" && e.name === "thread_name") m.set(e.tid, e.args.name);
  }
  return m;
}

Deno.test("startTrace: a track per pool worker and process, tasks, waits, submits, on one clock", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/t.json`;
  const { work } = await import(TARGETS.href);
  startTrace(path);
  let events: Ev[];
  try {
    const before = performance.timeOrigin + performance.now();
    {
      await using pool = new Pool({ processes: 2, module: TARGETS });
      await bounded(pool.map(work, [2, 2, 2, 40], 1));
    }
    await bounded((await waitForLockHeld(60)).join());
    const after = performance.timeOrigin + performance.now();
    assert.equal(stopTrace(), path);
    const text = await Deno.readTextFile(path);
    events = JSON.parse(text); // closed by stopTrace: plain JSON
    const epoch = events[0].args.epochMs;
    const tracks = names(events);
    const workers = [...tracks].filter(([, n]) => n.startsWith("PoolWorker-"));
    assert.equal(workers.length, 2, JSON.stringify([...tracks]));
    const tasks = events.filter((e) => isTask(e));
    // Every task ran on a worker's track, and there are four of them.
    assert.equal(tasks.length, 4, JSON.stringify(tasks));
    for (const t of tasks) {
      assert.equal(t.name, "work");
      assert.ok(workers.some(([tid]) => tid === t.tid));
    }
    // The straggler is the longest task; workers' clocks line up with ours:
    // each task lies after the submit point and before we stopped.
    const longest = tasks.reduce((a, b) => (b.dur > a.dur ? b : a));
    assert.ok(longest.dur >= 40_000, `longest ${longest.dur} us`);
    const submit = events.find((e) => e.ph === "i" && e.name === "submit work");
    assert.ok(submit, "the submit point");
    assert.deepEqual(submit.args, { chunks: 4, items: 4 });
    for (const t of tasks) {
      assert.ok(
        t.ts >= submit.ts,
        `task at ${t.ts} before submit ${submit.ts}`,
      );
      assert.ok(epoch + (t.ts + t.dur) / 1000 <= after);
    }
    assert.ok(epoch >= before - 1000 && epoch <= before);
    assert.ok(events.some((e) => e.cat === "result" && e.tid === 0));
    // Each worker's lifetime, as its parent saw it, and the process.
    const lives = events.filter((e) => e.cat === "process");
    assert.equal(lives.length, 3, JSON.stringify(lives));
    // The parent waited ~50 ms for the lock the child held.
    const wait = events.find((e) => e.cat === "wait" && e.tid === 0);
    assert.ok(wait, "a wait on the main track");
    assert.equal(wait.name, "Lock.acquire");
    assert.ok(wait.dur >= 20_000, `wait ${wait.dur} us`);
  } finally {
    stopTrace();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("waits on a queue, a pipe, a barrier, an event and a manager call are named by the call made", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  const { feeder } = await import(TARGETS.href);
  startTrace(path);
  try {
    const q = new Queue<number>();
    const [a, c] = Pipe();
    const b = new Barrier(2);
    const e = new Event();
    const p = new Process({
      target: feeder,
      args: [q, c, b, e],
      module: TARGETS,
    });
    await bounded(p.start());
    await bounded(q.get());
    await bounded(a.recv());
    await bounded(b.wait());
    await bounded(e.wait());
    await bounded(p.join());
    a.close();
    c.close();
    await using m = await Manager.start();
    const mq = await m.Queue<number>();
    const put = new Promise((r) => setTimeout(r, 40)).then(() => mq.put(5));
    await bounded(mq.get());
    await put;
    stopTrace();
    const waits = JSON.parse(await Deno.readTextFile(path))
      .filter((ev: Ev) => ev.cat === "wait" && ev.tid === 0);
    const named = new Map<string, number>();
    for (const w of waits) {
      named.set(w.name, Math.max(named.get(w.name) ?? 0, w.dur));
    }
    for (
      const name of [
        "Queue.get",
        "Connection.recv",
        "Barrier.wait",
        "Event.wait",
        "manager call",
      ]
    ) {
      assert.ok(
        (named.get(name) ?? 0) >= 15_000,
        `${name}: ${JSON.stringify([...named])}`,
      );
    }
  } finally {
    stopTrace();
    await Deno.remove(path);
  }
});

Deno.test("a long wait (many slices) is one span, in the file soon after it ended, before the trace stops", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  startTrace(path);
  try {
    const p = await waitForLockHeld(250);
    // The writer's timer (100 ms) writes it; nothing else happens meanwhile
    // (no other wait that would close it).
    await new Promise((r) => setTimeout(r, 400));
    const text = await Deno.readTextFile(path);
    await bounded(p.join());
    const waits = parseTrace(text).filter((e) => e.cat === "wait");
    // ~240 ms, waited in 50 ms slices: one span, named by the call.
    assert.equal(waits.length, 1, text);
    assert.equal(waits[0].name, "Lock.acquire");
    assert.ok(waits[0].dur! >= 150_000, text);
  } finally {
    stopTrace();
    await Deno.remove(path);
  }
});

Deno.test("a wait's name comes from its stack: the call the program made; the pool's own waits are none", () => {
  const lib = new URL("../lib/", import.meta.url).href;
  const stack = (...frames: string[]) =>
    ["Error", ...frames.map((f) => `    at ${f}`)].join("\n");
  const wait = `waitAsync (${lib}shm/_wait.ts:54:23)`;
  // A pool worker's idle wait (its frame is a method alias).
  assert.equal(
    waitLabel(stack(
      wait,
      `Object.poolWorker [as target] (${lib}pool/_worker.ts:423:13)`,
      `async run (${lib}process/_bootstrap.ts:164:5)`,
    )),
    null,
  );
  // The outermost library frame before the program's code.
  assert.equal(
    waitLabel(stack(
      wait,
      `Condition.wait (${lib}synchronize.ts:943:9)`,
      `async Barrier.wait (${lib}synchronize.ts:1190:7)`,
      `async main (file:///app/main.ts:3:1)`,
      `async run (${lib}process/_bootstrap.ts:164:5)`,
    )),
    "Barrier.wait",
  );
  assert.equal(
    waitLabel(
      stack(
        wait,
        `lockAsync (${lib}shm/_owner.ts:127:5)`,
        `file:///app/main.ts:9:3`,
      ),
    ),
    "wait",
  );
  assert.equal(
    waitLabel(
      stack(wait, `ManagerChannel.pump (${lib}manager/_channel.ts:387:9)`),
    ),
    "manager call",
  );
});

Deno.test("a trace started after the pool reaches its workers, named; stopped, they stop writing", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  const { work } = await import(TARGETS.href);
  await using pool = new Pool({ processes: 2, module: TARGETS });
  await bounded(pool.map(work, [1, 1], 1)); // the workers run
  try {
    startTrace(path);
    // The workers follow at once (the start wakes them); a pause to be sure.
    await new Promise((r) => setTimeout(r, 50));
    await bounded(pool.map(work, [5, 5, 5, 5], 1));
    stopTrace();
    await new Promise((r) => setTimeout(r, 400));
    await bounded(pool.map(work, [5, 5], 1)); // not traced
    await new Promise((r) => setTimeout(r, 400));
    const text = await Deno.readTextFile(path);
    const events = JSON.parse(text); // still closed: nothing written after it
    assert.equal(events.filter(isTask).length, 4);
    const tracks = [...names(events).values()];
    assert.equal(tracks.filter((n) => n.startsWith("PoolWorker-")).length, 2);
  } finally {
    stopTrace();
    await Deno.remove(path);
  }
});

Deno.test("a child idle in a wait when the trace starts is woken into it: its next wait is traced", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  const { twoWaits } = await import(TARGETS.href);
  const [first, second] = [new Event(), new Event()];
  const p = new Process({
    target: twoWaits,
    args: [first, second],
    module: TARGETS,
  });
  await bounded(p.start());
  try {
    startTrace(path);
    await new Promise((r) => setTimeout(r, 20));
    first.set(); // the child waits on `second` now, traced only if it follows
    await new Promise((r) => setTimeout(r, 60));
    second.set();
    await bounded(p.join());
    const waits = parseTrace(await Deno.readTextFile(path))
      .filter((e) => e.cat === "wait" && e.tid !== 0);
    assert.equal(waits.length, 1, JSON.stringify(waits));
    assert.equal(waits[0].name, "Event.wait");
    assert.ok(waits[0].dur! >= 40_000, JSON.stringify(waits));
  } finally {
    stopTrace();
    await Deno.remove(path);
  }
});

Deno.test("MP_TRACE traces a program from its start; the page has a lane per worker", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/env.json`;
    const out = await runTraced("env", path);
    assert.equal(out.code, 0, out.stderr);
    const events = JSON.parse(await Deno.readTextFile(path));
    assert.equal(events.filter(isTask).length, 4);
    const page = await renderTrace(path);
    assert.equal(page, `${dir}/env.html`);
    const html = await Deno.readTextFile(page);
    assert.equal(
      html.match(/<g class="lane" data-lane="PoolWorker-/g)?.length,
      2,
    );
    assert.ok(
      !/https?:\/\//.test(html.replace(/xmlns="[^"]*"/g, "")),
      "no network",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a traced program that is killed leaves a trace that opens", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/killed.json`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TARGETS.pathname, "killed"],
      env: { MP_TRACE: path },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    let seen = "";
    const deadline = Date.now() + 60_000;
    while (!seen.includes("mapped") && Date.now() < deadline) {
      const { value, done } = await bounded(reader.read());
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    child.kill("SIGKILL");
    await reader.cancel();
    await child.status;
    assert.ok(seen.includes("mapped"), seen);
    const text = await Deno.readTextFile(path);
    assert.ok(!text.trimEnd().endsWith("]"), "no closing ]: it was killed");
    assert.throws(() => JSON.parse(text));
    // The missing ] is all that is missing (as Chrome's format allows).
    const events = JSON.parse(text.trimEnd() + "]");
    assert.equal(events.filter(isTask).length, 4);
    // Cut in the middle of a line too: the view drops the torn line.
    const torn = text.slice(0, text.length - 20);
    assert.ok(parseTrace(torn).length >= events.length - 2);
    const html = await Deno.readTextFile(await renderTrace(path));
    assert.equal(html.match(/class="task"/g)?.length! >= 1, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tracing to a path that cannot be written fails at start, naming it", async () => {
  const bad = "/nonexistent-dir-for-trace/out.json";
  assert.throws(
    () => startTrace(bad),
    (e: Error) =>
      e.message.includes(JSON.stringify(bad)) &&
      e.message.includes("give a path in a directory"),
  );
  assert.equal(stopTrace(), undefined);
  // MP_TRACE: the program fails before it does anything.
  const out = await runTraced("env", bad);
  assert.notEqual(out.code, 0);
  assert.equal(out.stdout, "");
  assert.match(out.stderr, /cannot write the trace file/);
});

Deno.test("a worker that may not write the trace is left out of it (it warns on stderr); the trace stays whole", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  const { inc } = await import(TARGETS.href);
  startTrace(path);
  try {
    const pool = new Pool({
      processes: 1,
      module: TARGETS,
      permissions: { read: true, write: false },
    });
    assert.deepEqual(await bounded(pool.map(inc, [1, 2, 3], 1)), [2, 3, 4]);
    pool.terminate();
    await bounded(pool.join());
    stopTrace();
    const events = JSON.parse(await Deno.readTextFile(path));
    const [tid] = [...names(events)].find(([, n]) =>
      n.startsWith("PoolWorker")
    )!;
    // Its lifetime, as the parent saw it; none of its own events.
    assert.ok(events.some((e: Ev) => e.tid === tid && e.cat === "process"));
    assert.equal(events.filter(isTask).length, 0);
  } finally {
    stopTrace();
    await Deno.remove(path);
  }
});

Deno.test("the viewer refuses what is not a trace, and trace:view says what is missing", async () => {
  assert.throws(() => parseTrace('{"a": 1}'), SyntaxError);
  assert.throws(() => parseTrace("[1, 2"), SyntaxError);
  assert.throws(() => parseTrace("hello"), SyntaxError);
  assert.deepEqual(parseTrace(""), []);
  const r = await runProgram(
    new URL("../lib/trace/_view.ts", import.meta.url),
    [],
    ["/nonexistent-trace.json"],
  );
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /no trace at "\/nonexistent-trace.json": write one with MP_TRACE=/,
  );
});

Deno.test("startTrace twice, or with a bad threshold, says so", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    assert.throws(
      () => startTrace(path, { waitThresholdMs: -1 }),
      /waitThresholdMs/,
    );
    startTrace(path);
    assert.throws(() => startTrace(path), /already being written/);
  } finally {
    stopTrace();
    await Deno.remove(path);
  }
});

Deno.test("a trace of 1M events stays a few tens of MB, and its page stays small", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/big.json`;
  try {
    startTrace(path);
    const t0 = performance.timeOrigin + performance.now();
    // 4 lanes of 250k tasks, 4 us apart, with a 5 ms pause after every
    // 1000 of a lane's: 250 busy stretches a lane, far apart on the page.
    for (let i = 0; i < 1_000_000; i++) {
      const k = i >> 2, at = t0 + k * 0.004 + Math.floor(k / 1000) * 5;
      traceSpan(1 + (i & 3), "square", at, 0.003);
    }
    stopTrace();
    const size = (await Deno.stat(path)).size;
    assert.ok(size < 66e6, `${size} bytes`);
    const text = await Deno.readTextFile(path);
    const html = traceHtml(parseTrace(text), "big");
    assert.ok(html.length < 2e6, `page of ${html.length} bytes`);
    const bars = html.match(/class="task"/g)?.length ?? 0;
    // The pauses show (a bar per stretch), but not a shape per task.
    assert.ok(bars >= 4 * 200 && bars <= 4 * 250, `${bars} bars`);
    assert.match(html, /1000\d{3} events/);
  } finally {
    stopTrace();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("example:trace writes a trace and a page whose longest task is the straggler; trace:view draws it again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/trace.json`;
    const out = await runTask("example:trace", "--out", path);
    const lines = out.trimEnd().split("\n");
    assert.equal(lines[0], `trace: ${path}`);
    assert.equal(lines[1], `page: ${dir}/trace.html`);
    const m = /^the longest task: work \(400 ms asked\) on (PoolWorker-\d+)$/
      .exec(lines[2]);
    assert.ok(m, out);
    const html = await Deno.readTextFile(`${dir}/trace.html`);
    assert.equal(
      html.match(/<g class="lane" data-lane="PoolWorker-/g)?.length,
      4,
    );
    // The straggler's lane has it outlined.
    const lane = html.slice(html.indexOf(`data-lane="${m[1]}"`));
    assert.match(lane.slice(0, lane.indexOf("</g>")), /class="longest"/);
    // 25 tasks in all, each on a worker's track.
    const events = JSON.parse(await Deno.readTextFile(path));
    assert.equal(events.filter(isTask).length, 25);
    await Deno.remove(`${dir}/trace.html`);
    assert.equal(await runTask("trace:view", path), `${dir}/trace.html\n`);
    assert.ok((await Deno.stat(`${dir}/trace.html`)).size > 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function chromium(): Promise<string | undefined> {
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      const r = await new Deno.Command("which", {
        args: [name],
        stdout: "piped",
      })
        .output();
      if (r.code === 0) return new TextDecoder().decode(r.stdout).trim();
    } catch {
      // no `which`
    }
  }
  return undefined;
}

const browser = await chromium();

Deno.test({
  name:
    "the example's page renders in headless Chromium: lanes, bars, the straggler",
  ignore: browser === undefined, // .ci/run installs it
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const r = await runProgram(
        new URL("../examples/trace.ts", import.meta.url),
        [],
        ["--out", `${dir}/trace.json`],
      );
      assert.equal(r.code, 0, r.stderr);
      const profile = await Deno.makeTempDir();
      const out = await new Deno.Command(browser!, {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          `--user-data-dir=${profile}`,
          "--dump-dom",
          `file://${dir}/trace.html`,
        ],
        stdout: "piped",
        stderr: "null",
        signal: AbortSignal.timeout(60_000),
      }).output();
      await Deno.remove(profile, { recursive: true });
      assert.equal(out.code, 0);
      const dom = new TextDecoder().decode(out.stdout);
      // The browser's DOM: four worker lanes with task bars, the lock waits.
      const lanes = [
        ...dom.matchAll(/<g class="lane" data-lane="(PoolWorker-\d+)"/g),
      ];
      assert.equal(lanes.length, 4, dom.slice(0, 2000));
      assert.ok((dom.match(/<rect class="task"/g)?.length ?? 0) >= 4);
      assert.match(dom, /<rect class="longest"/);
      assert.match(dom, /id="utilization">\d+%</);
      // The longest task listed first is the 400 ms straggler.
      const first =
        /<tr class="long-task"><td>work<\/td><td>PoolWorker-\d+<\/td><td>([\d.]+)/
          .exec(dom);
      assert.ok(first && Number(first[1]) >= 400, first?.[0]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
