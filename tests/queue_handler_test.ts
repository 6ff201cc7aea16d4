// Seed 000's QueueHandler and MultiprocessingBase, and its example.
import assert from "node:assert/strict";
import { Queue } from "../mod.ts";
import { MultiprocessingBase, QueueHandler } from "../queue_handler.ts";
import { Counter, Doubler } from "./fixtures/queue_handler_procs.ts";
import { runTask } from "./_run_task.ts";

const T = 20_000;

function captureLog(fn: () => void): string[] {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    fn();
  } finally {
    console.log = original;
  }
  return lines;
}

async function waitFor<T>(get: () => T | null, what: string): Promise<T> {
  const until = performance.now() + T;
  for (;;) {
    const v = get();
    if (v !== null) return v;
    if (performance.now() > until) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("QueueHandler: named queues, get returns null when empty, never waits", () => {
  const handler = new QueueHandler();
  const lines = captureLog(() => handler.initQueue("main_queue"));
  assert.deepEqual(lines, [
    "[QHDL] queue with the name main_queue initialised!",
  ]);
  assert.equal(handler.get("main_queue"), null);
  handler.put("main_queue", { n: 1 });
  handler.put("main_queue", "two");
  assert.deepEqual(handler.get("main_queue"), { n: 1 });
  assert.equal(handler.get("main_queue"), "two");
  assert.equal(handler.get("main_queue"), null);
  assert(handler.queue("main_queue") instanceof Queue);
  assert.deepEqual(handler.names(), ["main_queue"]);
  assert.throws(
    () => handler.get("nope"),
    (e: Error) =>
      e instanceof RangeError &&
      /no queue named 'nope'.*initQueue\('nope'\)/.test(e.message),
  );
  assert.throws(() => handler.put("nope", 1), RangeError);
  assert.throws(() => handler.initQueue(""), TypeError);
  const quiet = new QueueHandler({ quiet: true });
  assert.deepEqual(captureLog(() => quiet.initQueue("q")), []);
});

Deno.test("MultiprocessingBase: a unique internal queue per instance, named after the class", () => {
  const handler = new QueueHandler({ quiet: true });
  const a = new Counter(handler, "a");
  const b = new Counter(handler, "b");
  assert.match(a.internalQueueName, /^Counter_0x[0-9a-f]+__internal_queue$/);
  assert.notEqual(a.internalQueueName, b.internalQueueName);
  assert.deepEqual(
    handler.names().sort(),
    [a.internalQueueName, b.internalQueueName].sort(),
  );
  assert.equal(a.flag, "CNTR");
  assert.throws(
    () => new Doubler(null as unknown as QueueHandler),
    /must be a QueueHandler/,
  );
  assert(a instanceof MultiprocessingBase);
});

Deno.test("MultiprocessingBase: initProcess once, runProcess looped until stopProcess, deinitProcess once; fields travel", async () => {
  const handler = new QueueHandler({ quiet: true });
  handler.initQueue("report");
  const counter = new Counter(handler, "x");
  await counter.startProcess();
  assert.equal(
    await waitFor(() => handler.get("report"), "three turns"),
    "three turns",
  );
  await counter.stopProcess();
  assert.equal(counter.exitCode, 0);
  const [inits, turns, deinits, label] = await waitFor(
    () => handler.get("report") as [number, number, number, string] | null,
    "the report",
  );
  assert.equal(inits, 1);
  assert(turns >= 3, `runProcess ran ${turns} times`);
  assert.equal(deinits, 1);
  assert.equal(label, "x", "the subclass's own field crossed into the child");
  await counter.stopProcess(); // stopping an ended process is harmless
});

Deno.test("MultiprocessingBase: the handler's queues are shared with the child", async () => {
  const handler = new QueueHandler({ quiet: true });
  handler.initQueue("in");
  handler.initQueue("out");
  const doubler = new Doubler(handler);
  await doubler.startProcess();
  handler.put("in", 21);
  assert.equal(
    await waitFor(() => handler.get("out"), "the doubled value"),
    42,
  );
  await doubler.stopProcess();
  assert.equal(doubler.exitCode, 0);
});

Deno.test("example:reader-writer prints seed 000's console lines", async () => {
  const lines = (await runTask("example:reader-writer")).trimEnd().split("\n");
  assert.equal(lines[0], "[QHDL] queue with the name main_queue initialised!");
  const names = lines.slice(1, 4).map((l) =>
    l.match(
      /^\[QHDL\] queue with the name (Class(?:Reader|Inserter)_0x[0-9a-f]+__internal_queue) initialised!$/,
    )?.[1]
  );
  assert(names.every(Boolean), lines.slice(1, 4).join("\n"));
  assert.match(names[0]!, /^ClassReader_/);
  assert.match(names[1]!, /^ClassReader_/);
  assert.match(names[2]!, /^ClassInserter_/);
  assert.equal(new Set(names).size, 3, "each internal queue name is unique");
  assert.deepEqual(lines.slice(4, 7), [
    "[REDR] process initialized!",
    "[REDR] process initialized!",
    "[INST] process initialized!",
  ]);
  const reads = lines.filter((l) => l.startsWith("read data: "));
  assert(reads.length >= 3, `read ${reads.length} items`);
  assert.deepEqual(
    reads,
    reads.map((_, i) => `read data: ${i}`),
    "every counter value once, in order",
  );
  const tail = lines.slice(7 + reads.length);
  assert.equal(7 + reads.length + tail.length, lines.length);
  assert.deepEqual([...tail].sort(), [
    "[INST] process successfully stopped!",
    "[INST] stop flag received",
    "[REDR] process successfully stopped!",
    "[REDR] process successfully stopped!",
    "[REDR] stop flag received",
    "[REDR] stop flag received",
  ]);
  for (const flag of ["REDR", "INST"]) {
    const mine = tail.filter((l) => l.startsWith(`[${flag}]`));
    assert.equal(mine.at(-1), `[${flag}] process successfully stopped!`);
    assert.equal(mine[0], `[${flag}] stop flag received`);
  }
});
