// Every shared-memory wait (lib/shm/_wait.ts): results, timeouts that last their
// whole length (not one slice), wakeups from another thread, the keep-alive
// that Deno's Atomics.waitAsync lacks, the hooks blocking waits run, and the
// one timeout validation.
import assert from "node:assert/strict";
import {
  checkTimeout,
  deadline,
  onBlockingWait,
  settlesWithin,
  SLICE_MS,
  sliceUntil,
  waitAsync,
  waitSync,
} from "../lib/shm/_wait.ts";
import { notifyWhenAsked } from "./fixtures/machinery_targets.ts";
import { runProgram } from "./_run_task.ts";
import { endsWell, withChild } from "./_child.ts";

const T = 20_000;
const program = new URL("./fixtures/wait_program.ts", import.meta.url);

function word(): Int32Array<SharedArrayBuffer> {
  return new Int32Array(new SharedArrayBuffer(8));
}

Deno.test("waitSync: not-equal at once, timed-out after the whole timeout even past one slice", () => {
  const w = word();
  Atomics.store(w, 0, 5);
  assert.equal(waitSync(w, 0, 4, T), "not-equal");
  assert.equal(waitSync(w, 0, 5, 0), "timed-out");
  assert.equal(waitSync(w, 0, 5, -3), "timed-out", "a negative timeout is 0");
  const ms = 3 * SLICE_MS;
  const t0 = performance.now();
  assert.equal(waitSync(w, 0, 5, ms), "timed-out");
  // Correctness, not speed: returning after one slice would be a bug.
  assert.ok(performance.now() - t0 >= ms - 1, "it waited the whole timeout");
});

Deno.test("waitAsync: the value at once when it differs, timed-out after the whole timeout", async () => {
  const w = word();
  assert.equal(waitAsync(w, 0, 1, T), "not-equal", "synchronously, no promise");
  assert.equal(await waitAsync(w, 0, 0, 0), "timed-out");
  const ms = 3 * SLICE_MS;
  const t0 = performance.now();
  assert.equal(await waitAsync(w, 0, 0, ms), "timed-out");
  assert.ok(performance.now() - t0 >= ms - 1, "it waited the whole timeout");
});

Deno.test("waitSync and waitAsync are woken by a notify from another process", async () => {
  for (const how of ["sync", "async"]) {
    const w = word();
    await withChild(notifyWhenAsked, [w.buffer], async (p) => {
      Atomics.store(w, 1, 1);
      Atomics.notify(w, 1);
      // Forever (undefined): only the child's notify can end these waits.
      const r = how === "sync" ? waitSync(w, 0, 0) : await waitAsync(w, 0, 0);
      assert.ok(r === "ok" || r === "not-equal", `${how}: ${r}`);
      assert.equal(Atomics.load(w, 0), 1, how);
      await endsWell(p);
    });
  }
});

Deno.test("waitAsync and keepAlive keep a program alive while they wait, and let it end after", async () => {
  for (
    const [mode, want] of [
      ["timeout", "timed-out"],
      ["woken", "ok"],
      ["keepalive", "settled"],
    ]
  ) {
    const r = await runProgram(program, [], [mode]);
    assert.equal(r.stderr, "", mode);
    assert.equal(r.code, 0, mode);
    assert.equal(r.stdout, `${want}\n`, mode);
  }
});

Deno.test("waitSync runs the blocking-wait hooks before every slice, in short slices while one has work", () => {
  const w = word();
  let active = true;
  let busy = false;
  let calls = 0;
  onBlockingWait(() => {
    if (!active) return false;
    calls++;
    return busy;
  });
  try {
    waitSync(w, 0, 0, 4 * SLICE_MS);
    assert.ok(
      calls >= 1 && calls <= 6,
      `idle hook: ${calls} slices of ${SLICE_MS} ms`,
    );
    calls = 0;
    busy = true;
    // 1 ms slices: 400 of them when idle, over 20 even on a machine so
    // loaded that a 1 ms wait takes 20.
    waitSync(w, 0, 0, 8 * SLICE_MS);
    assert.ok(calls > 20, `busy hook: ${calls} slices, wanted 1 ms ones`);
  } finally {
    active = false;
  }
});

Deno.test("settlesWithin: true once the promise settles either way, false when the timeout comes first", async () => {
  assert.equal(await settlesWithin(Promise.resolve(1), 1000), true);
  assert.equal(await settlesWithin(Promise.reject(new Error("x")), 1000), true);
  assert.equal(await settlesWithin(new Promise(() => {}), 10), false);
  let settle!: () => void;
  const later = new Promise<void>((r) => settle = r);
  const forever = settlesWithin(later, Infinity);
  setTimeout(settle, 20);
  assert.equal(
    await forever,
    true,
    "Infinity waits (setTimeout would fire at once)",
  );
});

Deno.test("deadline and sliceUntil: no deadline is Infinity, a slice is at most SLICE_MS and never negative", () => {
  assert.equal(deadline(undefined), Infinity);
  assert.equal(deadline(Infinity), Infinity);
  assert.equal(sliceUntil(Infinity), SLICE_MS);
  assert.equal(sliceUntil(performance.now() - 10), 0);
  assert.ok(deadline(-5) <= performance.now(), "a negative timeout is now");
  const s = sliceUntil(deadline(10));
  assert.ok(s > 0 && s <= 10, `${s}`);
});

Deno.test("checkTimeout: a bad number is a RangeError, a non-number a TypeError, each naming it and the fix", () => {
  for (const ok of [undefined, 0, 1.5]) assert.equal(checkTimeout(ok), ok);
  // Past setTimeout's range (2^31 - 1 ms) is forever, as Infinity.
  for (const forever of [Infinity, 2 ** 31, 1e300]) {
    assert.equal(checkTimeout(forever), undefined);
  }
  const cases: [unknown, ErrorConstructor, string][] = [
    [-1, RangeError, "got -1"],
    [NaN, RangeError, "got NaN"],
    ["5", TypeError, 'got "5": pass the number 5, not a string'],
    [null, TypeError, "got null"],
  ];
  for (const [bad, kind, end] of cases) {
    assert.throws(
      () => checkTimeout(bad, "join timeout"),
      (e: Error) =>
        e instanceof kind &&
        e.message.startsWith(
          "join timeout must be a non-negative number of milliseconds",
        ) &&
        e.message.endsWith(end),
      String(bad),
    );
  }
});
