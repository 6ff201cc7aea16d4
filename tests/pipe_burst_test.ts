// Thousands of pipe messages that go by the port (they hold a Value or a
// Lock) sent in a burst before the other side reads, within one process and
// across processes, read late or after close().
import assert from "node:assert/strict";
import { EOFError, Lock, Pipe, Process, Value } from "../mod.ts";
import { recvMany, sendMany } from "./fixtures/burst_pipe.ts";
const module = new URL("./fixtures/burst_pipe.ts", import.meta.url);

Deno.test("same process: thousands of port messages in a burst, then close", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  const v = new Value("i", 42);
  const lock = new Lock();
  const N = 6000;
  for (let i = 0; i < N; i++) {
    if (i % 3 === 0) a.send({ i, v });
    else if (i % 3 === 1) a.send({ i, lock });
    else a.send({ i, s: "q".repeat(i % 5000) });
  }
  a.close();
  for (let i = 0; i < N; i++) {
    const m = await b.recv() as { i: number; v?: Value<"i"> };
    assert.equal(m.i, i);
    if (i % 3 === 0) assert.equal(m.v!.value, 42);
  }
  await assert.rejects(b.recv(), EOFError);
});

Deno.test("same process: burst then recvSync/poll mix without close", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  const v = new Value("i", 42);
  const N = 4000;
  for (let i = 0; i < N; i++) a.send(i % 2 ? { i, v } : { i });
  for (let i = 0; i < N; i++) {
    const m =
      (i % 3 === 0 ? await b.recv() : (await b.poll(5), b.recvSync())) as {
        i: number;
      };
    assert.equal(m.i, i);
  }
});

Deno.test("child sends thousands of port messages then ends; parent reads late", async () => {
  const [r, w] = Pipe(false);
  const v = new Value("i", 42);
  const lock = new Lock();
  const N = 5000;
  const p = new Process({ module, target: sendMany, args: [w, v, lock, N] });
  await p.start();
  w.close();
  await new Promise((res) => setTimeout(res, 300));
  for (let i = 0; i < N; i++) {
    const m = await r.recv() as { i: number; v?: Value<"i"> };
    assert.equal(m.i, i);
    if (i % 3 === 0) assert.equal(m.v!.value, 42);
  }
  await assert.rejects(r.recv(), EOFError);
  await p.join(30_000);
  assert.equal(p.exitCode, 0);
  r.close();
});

Deno.test("parent sends burst to a child that reads late", async () => {
  const [r, w] = Pipe(false);
  const [r2, w2] = Pipe(false);
  const v = new Value("i", 42);
  const lock = new Lock();
  const N = 5000;
  const p = new Process({ module, target: recvMany, args: [r, N, w2] });
  await p.start();
  r.close();
  w2.close();
  for (let i = 0; i < N; i++) {
    if (i % 3 === 0) w.send({ i, v });
    else if (i % 3 === 1) w.send({ i, lock, s: "p".repeat(i % 500) });
    else w.send({ i, s: "q".repeat(i % 5000) });
  }
  assert.equal(await r2.recv(), -1);
  w.close();
  await p.join(30_000);
  r2.close();
});
