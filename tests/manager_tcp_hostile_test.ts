// Hostile TCP clients: bytes from one client never stop the server for the
// others, failed handshakes slow their address down, a frame that stops
// arriving is dropped, short keys are refused.
import assert from "node:assert/strict";
import { runProgram } from "./_run_task.ts";
import { bounded } from "./_bounded.ts";
import { AuthenticationError, Manager } from "../mod.ts";
import { writeAll } from "../lib/wire/_frames.ts";
import { Backoff } from "../lib/manager/_auth.ts";
import { rawAuthed } from "./_tcp.ts";
import { OP_GET } from "../lib/manager/_wire.ts";
import { frameOf, unframe } from "./_wire.ts";

const HOSTILE = new URL("./fixtures/hostile_tcp.ts", import.meta.url);

Deno.test("one frame that is not an encoding (0x0a, then 65,535 0x80 bytes) closes that client only; the server goes on", async () => {
  // In its own program: before the fix the server spun for good, and a
  // spinning server cannot be stopped from inside its program.
  const out = await runProgram(HOSTILE, [], ["1"]);
  assert.equal(out.stdout.trim(), "served 10", out.stderr);
  assert.equal(out.code, 0, out.stderr);
});

const KEY = "hostile-test-key-0123456789";
const loopback = { hostname: "127.0.0.1", port: 0 };

/** True when the server closes `conn` within `ms`; false when it keeps it open. */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(1024);
  const deadline = Date.now() + ms;
  try {
    while (true) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const n = await bounded(conn.read(buf), left, "the close");
      if (n === null) return true;
    }
  } catch (e) {
    return !(e as Error).message.includes("did not settle");
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

Deno.test("an authkey shorter than 16 bytes is refused, saying the minimum and how to make one", async () => {
  for (const authkey of ["", "k", "fifteen-bytes!!", new Uint8Array(15)]) {
    await assert.rejects(
      Manager.start({ address: loopback, authkey }),
      (e: Error) =>
        e instanceof RangeError && /at least 16/.test(e.message) &&
        /crypto\.getRandomValues/.test(e.message),
    );
    await assert.rejects(
      Manager.connect({ address: { hostname: "127.0.0.1", port: 1 }, authkey }),
      /at least 16/,
    );
  }
  // 16 bytes is enough.
  await using server = await Manager.start({
    address: loopback,
    authkey: new Uint8Array(16).fill(7),
  });
  assert.ok(server.address!.port > 0);
});

Deno.test("failed handshakes slow their address down; the right key still gets in, after its turn", async () => {
  await using server = await Manager.start({ address: loopback, authkey: KEY });
  const address = { hostname: "127.0.0.1", port: server.address!.port };
  const started = performance.now();
  for (let i = 0; i < 8; i++) {
    await assert.rejects(
      bounded(Manager.connect({ address, authkey: "not-the-key-" + KEY })),
      AuthenticationError,
    );
  }
  // Each failure doubles the next one's wait from 20 ms (to 1 s): the 8
  // tries wait 20 + 40 + ... + 640 + 1000 ms at least. Without it they took
  // a few ms (thousands of tries a second).
  const took = performance.now() - started;
  assert.ok(took >= 2000, `8 wrong-key tries took only ${took.toFixed(0)} ms`);
  await using ok = await bounded(Manager.connect({ address, authkey: KEY }));
  const d = await ok.dict<string, number>();
  await d.set("in", 1);
  assert.equal(await d.get("in"), 1);
});

Deno.test("the backoff remembers a bounded number of addresses, and forgets", () => {
  const b = new Backoff(20, 1000, 10_000, 100, 60_000);
  for (let i = 0; i < 10_000; i++) b.failed(`10.0.${i >> 8}.${i & 255}`, 0);
  assert.equal(b.size, 100);
  assert.equal(b.wait("10.0.0.0", 0), 0, "the oldest went first");
  for (let i = 0; i < 20; i++) b.failed("10.9.9.9", 0);
  assert.equal(b.wait("10.9.9.9", 0), -1, "a flood is refused at once");
  assert.ok(b.wait("10.9.9.9", 10_000) > 0, "its turn comes later");
  assert.equal(b.wait("10.9.9.9", 200_000), 0, "forgotten after a while");
  b.failed("10.8.8.8", 0);
  b.succeeded("10.8.8.8");
  assert.equal(b.wait("10.8.8.8", 0), 0);
});

Deno.test("a frame that stops arriving is dropped after frameTimeout (it held its bytes for good); an idle client between frames is not", async () => {
  await using server = await Manager.start({
    address: loopback,
    authkey: KEY,
    frameTimeout: 300,
  });
  const port = server.address!.port;
  const idle = await rawAuthed(port, KEY);
  const partial = await rawAuthed(port, KEY);
  // A frame claiming 60 MiB, 8 MiB of it sent, then nothing.
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, 60 * 1024 * 1024);
  await writeAll(partial.conn, head);
  await writeAll(partial.conn, new Uint8Array(8 * 1024 * 1024));
  assert.equal(await closedWithin(partial.conn, 10_000), true);
  // Past several frameTimeouts, the idle one is still served.
  await new Promise((r) => setTimeout(r, 600));
  await writeAll(idle.conn, frameOf([5, OP_GET, "nonesuch"]));
  const reply = unframe((await bounded(idle.reader.read()))!) as unknown[];
  assert.equal(reply[0], 5);
  idle.conn.close();
  await assert.rejects(
    Manager.start({ address: loopback, authkey: KEY, frameTimeout: -1 }),
    /frameTimeout must be/,
  );
});
