import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import { runProgram } from "./_run_task.ts";
import {
  type Connection,
  EOFError,
  Event,
  Pipe,
  Process,
  ProcessError,
} from "../mod.ts";
import {
  bigThenRecvSync,
  echo,
  flood,
  forward,
  handBack,
  holdEndForever,
  lockThroughOwnPipe,
  sleepThenSend,
} from "./fixtures/targets.ts";

const module = new URL("./fixtures/targets.ts", import.meta.url);
const T = 20_000;

Deno.test("send/recv keeps values: primitives, nested objects, typed arrays, Map, Date", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  const values: unknown[] = [
    1,
    "two",
    null,
    undefined,
    true,
    10n,
    [1, [2, 3]],
    { a: { b: "c" } },
    new Uint8Array([1, 2, 3]),
    new Map([["k", 1]]),
    new Date(0),
  ];
  for (const v of values) a.send(v);
  for (const v of values) assert.deepEqual(await bounded(b.recv()), v);
  b.send("back");
  assert.equal(await bounded(a.recv()), "back");
});

Deno.test("Pipe(false): first end only receives, second only sends", async () => {
  using ends = Pipe(false);
  const [r, w] = ends;
  assert.equal(r.writable, false);
  assert.equal(w.readable, false);
  assert.throws(() => r.send(1), ProcessError);
  await assert.rejects(bounded(w.recv()), ProcessError);
  w.send("ok");
  assert.equal(await bounded(r.recv()), "ok");
});

Deno.test("recv drains what was sent, then rejects with EOFError once the peer closed", async () => {
  const [a, b] = Pipe();
  a.send(1);
  a.send(2);
  a.close();
  assert.equal(await bounded(b.recv()), 1);
  assert.equal(await bounded(b.recv()), 2);
  await assert.rejects(bounded(b.recv()), EOFError);
  assert.equal(
    await b.poll(),
    true,
    "poll says ready at EOF: recv would not block",
  );
  assert.throws(() => b.send(3), EOFError);
  b.close();
  await assert.rejects(bounded(b.recv()), /closed/);
});

Deno.test("recv rejects with EOFError when the process holding the peer end is terminated", async () => {
  const [mine, theirs] = Pipe();
  const [ready, readyChild] = Pipe();
  const p = new Process({
    module,
    target: holdEndForever,
    args: [theirs, readyChild],
  });
  await bounded(p.start());
  assert.equal(await bounded(ready.recv()), "ready");
  const pending = mine.recv();
  p.terminate();
  await assert.rejects(bounded(pending), EOFError);
  await p.join(T);
  mine.close();
  ready.close();
});

Deno.test("poll: false until a message arrives within the timeout, true after", async () => {
  const [a, b] = Pipe();
  assert.equal(await b.poll(), false);
  assert.equal(await b.poll(30), false);
  const p = new Process({
    module,
    target: sleepThenSend,
    args: [a, 50, "late"],
  });
  await bounded(p.start());
  assert.equal(await bounded(b.poll(T)), true);
  assert.equal(await bounded(b.recv()), "late");
  await p.join(T);
  b.close();
  await assert.rejects(bounded(b.poll(-1)), /closed/);
});

Deno.test("sendBytes/recvBytes with offset and size", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  a.sendBytes(new Uint8Array([0, 1, 2, 3, 4, 5]), 2, 3);
  assert.deepEqual(await bounded(b.recvBytes()), new Uint8Array([2, 3, 4]));
  a.sendBytes(new Uint8Array([9, 8]).buffer);
  assert.deepEqual(await bounded(b.recvBytes()), new Uint8Array([9, 8]));
  assert.throws(() => a.sendBytes(new Uint8Array(2), 1, 5), RangeError);
  a.send("text");
  a.send({ x: 1 });
  await assert.rejects(
    bounded(b.recvBytes()),
    /a string, not bytes; use recv\(\)/,
  );
  // Refused, not lost: it is still the next message.
  assert.equal(await bounded(b.recv()), "text");
  assert.deepEqual(await bounded(b.recv()), { x: 1 });
  // Not bytes: refused by name, nothing sent.
  for (const bad of ["abc", [1, 2, 3], 5, null]) {
    assert.throws(
      () => a.sendBytes(bad as never),
      /sendBytes\(\) takes bytes .*, got /,
    );
  }
  assert.equal(await bounded(b.poll()), false);
  // Bytes in shared memory are copied too, not shared.
  const shared = new Uint8Array(new SharedArrayBuffer(4)).fill(7);
  a.sendBytes(shared);
  shared.fill(9);
  const got = await bounded(b.recvBytes());
  assert.deepEqual(got, new Uint8Array([7, 7, 7, 7]));
  assert.ok(!(got.buffer instanceof SharedArrayBuffer));
});

Deno.test("async iteration yields until EOF", async () => {
  const [a, b] = Pipe();
  for (const x of [1, 2, 3]) a.send(x);
  a.close();
  const got: unknown[] = [];
  for await (const m of b) got.push(m);
  assert.deepEqual(got, [1, 2, 3]);
  b.close();
});

Deno.test("an uncloneable message is refused with its path; the pipe stays usable", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  assert.throws(() => a.send({ f: [() => 1] }), /obj\.f\[0\] is a function/);
  a.send("still fine");
  assert.equal(await bounded(b.recv()), "still fine");
});

Deno.test("a pipe end in a message that could not be sent stays usable here", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  using other = Pipe();
  const [c, d] = other;
  assert.throws(() => a.send([c, () => 1]), /is a function/);
  assert.equal(c.closed, false);
  c.send("c still works");
  assert.equal(await bounded(d.recv()), "c still works");
  a.send(c); // and can still be sent
  assert.equal(c.closed, true);
  const moved = await bounded(b.recv()) as Connection;
  moved.send("moved");
  assert.equal(await bounded(d.recv()), "moved");
  moved.close();
});

Deno.test("round trips with a child; a connection sent through a connection", async () => {
  const [mine, theirs] = Pipe();
  const p = new Process({ module, target: echo, args: [theirs] });
  await bounded(p.start());
  for (let i = 0; i < 100; i++) {
    mine.send({ i });
    assert.deepEqual(await bounded(mine.recv()), { i });
  }
  mine.close();
  await p.join(T);
  assert.equal(p.exitCode, 0);

  const [carrier, carrierChild] = Pipe();
  const [inner, innerChild] = Pipe();
  const q = new Process({ module, target: forward, args: [carrierChild] });
  await bounded(q.start());
  carrier.send(innerChild);
  assert.equal(innerChild.closed, true, "the sent end moved to the child");
  assert.throws(
    () => innerChild.send(1),
    /closed here: this end was sent to another process .* make another Pipe\(\)/,
  );
  assert.equal(await bounded(inner.recv()), "via a forwarded connection");
  await q.join(T);
  inner.close();
  carrier.close();
});

Deno.test("a child that makes a pipe and sends a shared object through it, all in blocking calls, receives it", async () => {
  const p = new Process({ module, target: lockThroughOwnPipe });
  await bounded(p.start());
  await p.join(T);
  assert.equal(p.exitCode, 7);
});

Deno.test("recvSync in the same thread reads what is there and sees EOF", () => {
  const [a, b] = Pipe();
  a.send("x");
  a.close();
  assert.equal(b.recvSync(), "x");
  assert.throws(() => b.recvSync(), EOFError);
  b.close();
});

Deno.test("more than the ring holds: nothing lost, in order, then EOF", async () => {
  const [a, b] = Pipe();
  // Far more than a pipe's ring: the rest waits in this process until read.
  for (let i = 0; i < 20_000; i++) a.send({ i, pad: "x".repeat(20) });
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
  a.send(big);
  a.close();
  for (let i = 0; i < 20_000; i++) {
    assert.equal((await bounded(b.recv()) as { i: number }).i, i);
  }
  assert.deepEqual(await bounded(b.recv()), big);
  await assert.rejects(bounded(b.recv()), EOFError);
  b.close();
});

Deno.test("shared objects and plain data keep their order", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  const [x, y] = Pipe();
  a.send(1);
  a.send({ end: y });
  a.send(2);
  assert.equal(await bounded(b.recv()), 1);
  const got = await bounded(b.recv()) as { end: Connection };
  assert.equal(await bounded(b.recv()), 2);
  x.send("through the forwarded end");
  assert.equal(await got.end.recv(), "through the forwarded end");
  x.close();
  got.end.close();
});

Deno.test("a child floods the pipe with big messages and closes: all arrive, then EOF", async () => {
  const [mine, theirs] = Pipe();
  const p = new Process({ module, target: flood, args: [theirs, 200, 50_000] });
  await bounded(p.start());
  for (let i = 0; i < 200; i++) {
    const m = await bounded(mine.recv()) as { i: number; bytes: Uint8Array };
    assert.equal(m.i, i);
    assert.equal(m.bytes.length, 50_000);
    assert.equal(m.bytes[49_999], i & 255);
  }
  await assert.rejects(bounded(mine.recv()), EOFError);
  await p.join(T);
  assert.equal(p.exitCode, 0);
  mine.close();
});

Deno.test("a child that sends more than the ring holds, then blocks in recvSync, still delivers it", async () => {
  // The rest of the message waits in the child; its blocking wait must go on
  // writing it (the event loop that would is blocked).
  const [mine, theirs] = Pipe();
  const p = new Process({
    module,
    target: bigThenRecvSync,
    args: [theirs, 1_000_000],
  });
  await bounded(p.start());
  const big = await bounded(mine.recv()) as Uint8Array;
  assert.equal(big.length, 1_000_000);
  assert.equal(big[999_999], 7);
  mine.send("ok");
  assert.equal(await bounded(mine.recv()), "reply was ok");
  await p.join(T);
  mine.close();
});

Deno.test("what only structured clone carries (a Blob) goes by the port; a URL is refused", async () => {
  using ends = Pipe();
  const [a, b] = ends;
  a.send(1);
  a.send(new Blob(["hello"]));
  a.send(2);
  assert.equal(await bounded(b.recv()), 1);
  const blob = await bounded(b.recv()) as Blob;
  assert.ok(blob instanceof Blob);
  assert.equal(await blob.text(), "hello");
  assert.equal(await bounded(b.recv()), 2);
  assert.throws(() => a.send({ u: new URL("http://x/") }), /obj\.u is a URL/);
  a.send("still fine");
  assert.equal(await bounded(b.recv()), "still fine");
});

export type { Connection };

Deno.test("what waits to be sent to an end no one can read any more is dropped: the program ends", async () => {
  const program = new URL("./fixtures/pipe_unread.ts", import.meta.url);
  // The reading end went to a child that ended without reading; or it was
  // closed here. Before, the writer's flusher waited forever for room.
  for (const how of ["child", "closed"]) {
    const out = await runProgram(program, [], [how]);
    assert.equal(out.code, 0, `${how}: ${out.stderr}`);
    assert.equal(out.stdout, "done\n", how);
  }
});

Deno.test("what waits for an end that travels while its last holder ended is kept: the end's next holder reads it all", async () => {
  const [a, b] = Pipe();
  const [c, d] = Pipe();
  const go = new Event();
  const p = new Process({ module, target: handBack, args: [b, d, go] });
  await bounded(p.start());
  const big = new Uint8Array(4 << 20).map((_, i) => i & 255);
  a.sendBytes(big); // most of it waits here: the ring holds 64 KiB
  a.send("after");
  go.set();
  await bounded(p.join(T));
  // The child ended; `b` is on its way back. The flusher looks every slice.
  await new Promise((r) => setTimeout(r, 150));
  const b2 = await bounded(c.recv()) as Connection;
  assert.deepEqual(await bounded(b2.recvBytes()), big);
  assert.equal(await bounded(b2.recv()), "after");
  a.close();
  b2.close();
  c.close();
});
