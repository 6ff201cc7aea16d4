// The examples of seeds 001, 002 and 003 that issue 2 covers, run as a user
// runs them, their output checked against the documents.
import assert from "node:assert/strict";
import { runTask } from "./_run_task.ts";

Deno.test("example:isolation prints seed 001's first result", async () => {
  assert.equal(
    await runTask("example:isolation"),
    "Result(in process p1): [1, 4, 9, 16]\nResult(in main program): []\n",
  );
});

Deno.test("example:pipe prints seed 001's Pipe result", async () => {
  assert.equal(
    await runTask("example:pipe"),
    [
      "Sent the message: hello",
      "Sent the message: hey",
      "Sent the message: hru?",
      "Sent the message: END",
      "Received the message: hello",
      "Received the message: hey",
      "Received the message: hru?",
      "",
    ].join("\n"),
  );
});

Deno.test("example:process prints seed 002's continents, then seed 003's processes end", async () => {
  assert.equal(
    await runTask("example:process"),
    [
      "The name of continent is :  Asia",
      "The name of continent is :  America",
      "The name of continent is :  Europe",
      "The name of continent is :  Africa",
      "end main",
      "",
    ].join("\n"),
  );
});

Deno.test("example:custom-manager serves a user's class locally and over TCP until stopped", async () => {
  assert.equal(
    await runTask("example:custom-manager"),
    [
      "7",
      "56",
      'AutoProxy { kind: "Maths", id: 1, server: "local" }',
      "Serving 'Maths' (authkey required)",
      "client: 4 + 3 = 7",
      "Server stopped",
      "",
    ].join("\n"),
  );
});

Deno.test("example:imap shows Python's imap: a raise in its place, then the rest; next(ms); the user's error class", async () => {
  assert.equal(
    await runTask("example:imap"),
    [
      'Pool { state: "RUN", processes: 2 }',
      "0",
      "1",
      "raised Unlucky: 2 is unlucky (unlucky: true)",
      "9",
      "16",
      "done",
      "not ready after 10 ms",
      "200",
      "",
    ].join("\n"),
  );
});

Deno.test("example:cluster maps over two worker programs and says which did what", async () => {
  const out = await runTask("example:cluster");
  const lines = out.trimEnd().split("\n");
  assert.equal(lines[0], "squares: 0 1 4 9 16 25 36 49 64 81 100 121");
  const did = lines.slice(1).map((l) => {
    const m = l.match(/^(worker-[AB]) did (\d+) tasks:((?: \d+)*)$/);
    assert.ok(m, `unexpected line: ${l}`);
    const items = m[3].trim() ? m[3].trim().split(" ").map(Number) : [];
    assert.equal(items.length, Number(m[2]));
    return items;
  });
  assert.equal(did.length, 2);
  assert.deepEqual(did.flat().sort((a, b) => a - b), [...Array(12).keys()]);
});
