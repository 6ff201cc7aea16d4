import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import {
  AuthenticationError,
  type AutoProxy,
  type DictProxy,
  EOFError,
  type ListProxy,
  type LockProxy,
  Manager,
  Process,
  type QueueProxy,
  TimeoutError,
} from "../mod.ts";
import {
  encodeFrame,
  FrameError,
  FrameReader,
  FrameWriter,
  writeAll,
  writeFrame,
} from "../lib/wire/_frames.ts";
import { OP_CALL, OP_CREATE, OP_GET } from "../lib/manager/_wire.ts";
import { frameOf, unframe } from "./_wire.ts";
import { TcpChannel } from "../lib/manager/_channel.ts";
import { appendItem } from "./fixtures/manager_targets.ts";
import { Counter, Maths } from "./fixtures/manager_classes.ts";
import { rawAuthed as rawAuthedWith } from "./_tcp.ts";

const T = 20_000;
const KEY = "test-secret-of-16-bytes";
const CLIENT = new URL("./fixtures/manager_client.ts", import.meta.url)
  .pathname;
const loopback = { hostname: "127.0.0.1", port: 0 };

/** Starts the client program; returns it with a reader of its stdout lines. */
function spawnClient(port: number, key: string, action: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLIENT, String(port), key, action],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let buffered = "";
  async function nextLine(): Promise<string> {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`client ended; output so far: ${buffered}`);
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  }
  async function finish(): Promise<{ code: number; stderr: string }> {
    await lines.cancel().catch(() => {});
    const stderr = await new Response(child.stderr).text();
    const { code } = await child.status;
    return { code, stderr };
  }
  return { child, nextLine, finish };
}

function rawAuthed(port: number, key = KEY) {
  return rawAuthedWith(port, key);
}

/** True when the server closes `conn` (read returns EOF or fails). */
async function closedByServer(conn: Deno.Conn): Promise<boolean> {
  const buf = new Uint8Array(1024);
  try {
    while (true) {
      const n = await bounded(conn.read(buf), T, "waiting for the close");
      if (n === null) return true;
    }
  } catch (e) {
    if ((e as Error).message.includes("did not finish")) return false;
    return true;
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

async function stillServes(port: number) {
  await using c = await Manager.connect({
    address: { hostname: "127.0.0.1", port },
    authkey: KEY,
  });
  const d = await c.get<DictProxy<string, unknown>>("shared");
  await d.set("alive", true);
  assert.equal(await d.get("alive"), true);
}

async function serve() {
  const server = await Manager.start({ address: loopback, authkey: KEY });
  const shared = await server.dict<string, unknown>({ "from-server": "hi" });
  await server.register("shared", shared);
  return { server, shared, port: server.address!.port };
}

Deno.test("two Deno programs share a dict over loopback", async () => {
  const { server, shared, port } = await serve();
  await using _ = server;
  assert.ok(port > 0, "port 0 picks a port; address tells it");
  assert.equal(server.address!.hostname, "127.0.0.1");
  const c = spawnClient(port, KEY, "share-dict");
  assert.equal(await bounded(c.nextLine()), "done");
  const { code, stderr } = await bounded(c.finish());
  assert.equal(code, 0, stderr);
  assert.equal(await shared.get("from-client"), "hi!");
  assert.equal(await shared.get("n99"), 99);
  assert.equal(await shared.len(), 102);
});

Deno.test("a client in this program: get(name), factories, errors, unknown names", async () => {
  const { server, port } = await serve();
  await using _ = server;
  await using client = await Manager.connect({
    address: { hostname: "127.0.0.1", port },
    authkey: new TextEncoder().encode(KEY),
  });
  assert.equal(client.address!.port, port);
  const d = await client.get<DictProxy<string, unknown>>("shared");
  assert.equal(d.kind, "dict");
  assert.equal(await d.get("from-server"), "hi");
  const q = await client.Queue<number>();
  await q.put(1);
  assert.equal(await q.get(), 1);
  await assert.rejects(
    client.get("nonesuch"),
    /no object is registered as 'nonesuch'.*shared/,
  );
  await assert.rejects(
    d.callMethod("nonesuch"),
    (e: Error) =>
      e instanceof TypeError && /dict proxy has no method/.test(e.message),
  );
  // Still usable after errors.
  assert.equal(await d.has("from-server"), true);
});

Deno.test("wrong authkey: AuthenticationError, nothing reachable, server goes on", async () => {
  const { server, port } = await serve();
  await using _ = server;
  await assert.rejects(
    Manager.connect({
      address: { hostname: "127.0.0.1", port },
      authkey: "wrong-key-of-16-bytes",
    }),
    AuthenticationError,
  );
  // Raw: answering with a wrong key gets FAILURE, then the socket closes.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  const challenge = await bounded(reader.read());
  assert.ok(
    challenge && new TextDecoder().decode(challenge).startsWith("#CHALLENGE#"),
  );
  await writeFrame(conn, new Uint8Array(40));
  const verdict = await bounded(reader.read());
  assert.equal(new TextDecoder().decode(verdict!), "#FAILURE#");
  // A request sent anyway reaches nothing: the connection is closed.
  await writeAll(conn, frameOf([1, OP_GET, "shared"])).catch(() => {});
  assert.equal(await closedByServer(conn), true);
  await stillServes(port);
});

Deno.test("garbage bytes and a frame claiming 4 GiB close that connection only", async () => {
  const { server, port } = await serve();
  await using _ = server;
  await using other = await Manager.connect({
    address: { hostname: "127.0.0.1", port },
    authkey: KEY,
  });
  const d = await other.get<DictProxy<string, unknown>>("shared");

  // Garbage before authenticating (an HTTP request, say).
  const g = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(
    g,
    new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
  );
  assert.equal(await closedByServer(g), true);

  // A 4 GiB frame header after authenticating.
  const big = await rawAuthed(port);
  await writeAll(big.conn, new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  assert.equal(await closedByServer(big.conn), true);

  // A well-sized frame that is not a request.
  const bad = await rawAuthed(port);
  await writeAll(bad.conn, encodeFrame(new Uint8Array([1, 2, 3, 4, 5])));
  assert.equal(await closedByServer(bad.conn), true);

  // A valid request for a method the object lacks gets an error reply, and
  // the connection goes on.
  const ok = await rawAuthed(port);
  await writeAll(ok.conn, frameOf([7, OP_GET, "shared"]));
  const got = unframe((await bounded(ok.reader.read()))!) as [
    number,
    boolean,
    [number, string],
  ];
  assert.deepEqual([got[0], got[1], got[2][1]], [7, true, "dict"]);
  await writeAll(ok.conn, frameOf([8, OP_CALL, got[2][0], "nonesuch", []]));
  const err = unframe((await bounded(ok.reader.read()))!) as [
    number,
    boolean,
    { name: string; message: string },
  ];
  assert.equal(err[0], 8);
  assert.equal(err[1], false);
  assert.equal(err[2].name, "TypeError");
  assert.match(err[2].message, /dict proxy has no method 'nonesuch'/);
  await writeAll(ok.conn, frameOf([9, OP_CALL, got[2][0], "len", []]));
  assert.deepEqual(unframe((await bounded(ok.reader.read()))!), [9, true, 1]);
  ok.conn.close();

  // The other client, connected all along, is unaffected.
  await d.set("after", 1);
  assert.equal(await d.get("after"), 1);
  await stillServes(port);
});

Deno.test("a client killed mid-call: the server survives, its waits and locks go", async () => {
  const server = await Manager.start({ address: loopback, authkey: KEY });
  await using _ = server;
  const port = server.address!.port;
  const jobs = await server.Queue<string>();
  const lock = await server.Lock();
  await server.register("jobs", jobs);
  await server.register("lock", lock);
  await server.register("shared", await server.dict());

  const blocked = spawnClient(port, KEY, "block-get");
  assert.equal(await bounded(blocked.nextLine()), "waiting");
  const holder = spawnClient(port, KEY, "hold-lock");
  assert.equal(await bounded(holder.nextLine()), "locked");
  assert.equal(await lock.locked(), true);
  blocked.child.kill("SIGKILL");
  holder.child.kill("SIGKILL");
  await bounded(blocked.finish());
  await bounded(holder.finish());

  // The server sees the connections close a moment later (a put made
  // before that would go to the dead client's parked get): once it has,
  // the references their proxies (and the parked get) held went, and only
  // ours and the names are left.
  const refs = async (id: number) =>
    (await server.debugInfo()).find((o) => o.id === id)?.refs;
  const start = Date.now();
  while (await refs(lock.id) !== 2 || await refs(jobs.id) !== 2) {
    assert.ok(Date.now() - start < T, "the killed clients were never dropped");
    await new Promise((r) => setTimeout(r, 20));
  }
  // The killed client's get no longer takes items: ours gets it.
  await jobs.put("for the living");
  assert.equal(await bounded(jobs.get()), "for the living");
  // Its lock was released once its connection closed.
  assert.equal(await bounded(lock.acquire({ timeout: T })), true);
  await lock.release();
  await stillServes(port);
});

Deno.test("a dead server: calls reject with EOFError; connecting to nothing too", async () => {
  const { server, port } = await serve();
  const client = await Manager.connect({
    address: { hostname: "127.0.0.1", port },
    authkey: KEY,
  });
  const d = await client.get<DictProxy<string, unknown>>("shared");
  const q = await client.Queue();
  const waiting = assert.rejects(bounded(q.get()), EOFError);
  await server.shutdown();
  await waiting;
  await assert.rejects(bounded(d.get("from-server")), EOFError);
  await client.shutdown();
  await assert.rejects(
    bounded(
      Manager.connect({
        address: { hostname: "127.0.0.1", port },
        authkey: KEY,
      }),
    ),
    EOFError,
  );
});

Deno.test("a proxy from a TCP client crosses into a child, which connects itself", async () => {
  const { server, port } = await serve();
  await using _ = server;
  await using client = await Manager.connect({
    address: { hostname: "127.0.0.1", port },
    authkey: KEY,
  });
  const l = await client.list<string>(["a"]);
  const p = new Process({
    target: appendItem,
    args: [l, "from child"],
    module: new URL("./fixtures/manager_targets.ts", import.meta.url),
  });
  await p.start();
  await p.join(T);
  assert.equal(p.exitCode, 0);
  assert.deepEqual(await l.toArray(), ["a", "from child"]);
  // The child's own connection held a reference; it went with the child.
  const start = Date.now();
  while ((await server.debugInfo()).find((o) => o.id === l.id)?.refs !== 1) {
    assert.ok(Date.now() - start < T, "the child's reference never went");
    await new Promise((r) => setTimeout(r, 20));
  }
});

Deno.test("refcount over TCP: a client's references go with its connection; a deleted object is a ReferenceError", async () => {
  const { server, port } = await serve();
  await using _ = server;
  const client = await Manager.connect({
    address: { hostname: "127.0.0.1", port },
    authkey: KEY,
  });
  const q = await client.Queue();
  const d = await client.get<DictProxy<string, unknown>>("shared");
  const ids = (await server.debugInfo()).map((o) => [o.kind, o.refs]);
  assert.deepEqual(ids, [["dict", 3], ["Queue", 1]]);
  await q.dispose();
  assert.equal(await server.numberOfObjects(), 1);
  await client.shutdown();
  const start = Date.now();
  while ((await server.debugInfo())[0].refs !== 2) {
    assert.ok(Date.now() - start < T, "the client's references never went");
    await new Promise((r) => setTimeout(r, 20));
  }
  await assert.rejects(d.get("x"), EOFError);

  // A raw call on the deleted queue: a ReferenceError naming its id.
  const raw = await rawAuthed(port);
  await writeAll(raw.conn, frameOf([1, OP_CALL, q.id, "qsize", []]));
  const err = unframe((await bounded(raw.reader.read()))!) as [
    number,
    boolean,
    { name: string; message: string },
  ];
  assert.deepEqual([err[0], err[1], err[2].name], [1, false, "ReferenceError"]);
  assert.match(
    err[2].message,
    new RegExp(`no object with id ${q.id}: it was deleted`),
  );
  raw.conn.close();
});

Deno.test("bad addresses and keys fail fast with named errors", async () => {
  await assert.rejects(
    Manager.connect({
      address: { hostname: "127.0.0.1", port: 70000 },
      authkey: KEY,
    }),
    /port: 0..65535/,
  );
  await assert.rejects(
    Manager.connect({
      address: { hostname: "127.0.0.1", port: 1 },
      authkey: "",
    }),
    /at least 16/,
  );
  await assert.rejects(
    Manager.start({ address: loopback, authkey: 42 as never }),
    /authkey must be a string or a Uint8Array/,
  );
  const { server, port } = await serve();
  await using _ = server;
  await assert.rejects(
    Manager.start({ address: { hostname: "127.0.0.1", port }, authkey: KEY }),
    /in use|AddrInUse/i,
  );
});

Deno.test("a lock proxy over TCP", async () => {
  const { server, port } = await serve();
  await using _ = server;
  await using client = await Manager.connect({
    address: { hostname: "127.0.0.1", port },
    authkey: KEY,
  });
  const lock = await client.Lock() as LockProxy;
  assert.equal(await lock.acquire(), true);
  assert.equal(await lock.acquire({ timeout: 5 }), false);
  await lock.release();
  const q = await client.Queue<number>() as QueueProxy<number>;
  await assert.rejects(q.getNowait(), /empty/);
});

Deno.test("a peer that accepts and says nothing: connect times out, never hangs", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  await assert.rejects(
    bounded(
      Manager.connect({
        address: listener.addr as Deno.NetAddr,
        authkey: KEY,
        timeoutMs: 200,
      }),
    ),
    (e: Error) =>
      e instanceof TimeoutError && /no manager answered/.test(e.message),
  );
  (await accepted).close();
  listener.close();
});

/** A stream over `chunks` for reading, that also records what is written, a few bytes a call. */
function fakeStream(chunks: Uint8Array[] = [], writeAtMost = 3) {
  const written: number[] = [];
  return {
    written,
    read(p: Uint8Array): Promise<number | null> {
      const c = chunks.shift();
      if (!c) return Promise.resolve(null);
      if (c.length > p.length) {
        chunks.unshift(c.subarray(p.length));
        p.set(c.subarray(0, p.length));
        return Promise.resolve(p.length);
      }
      p.set(c);
      return Promise.resolve(c.length);
    },
    write(p: Uint8Array): Promise<number> {
      const n = Math.min(writeAtMost, p.length);
      // What it writes must stay as it was until the write ends.
      const copy = [...p.subarray(0, n)];
      return new Promise((r) =>
        setTimeout(() => {
          assert.deepEqual([...p.subarray(0, n)], copy);
          written.push(...copy);
          r(n);
        }, 0)
      );
    },
  };
}

Deno.test("frames: in place, several a read, split across reads, longer than the buffer; writes queue in order", async () => {
  const payloads = [
    new Uint8Array([1, 2, 3]),
    new Uint8Array(0),
    new Uint8Array(100_000).map((_, i) => i & 0xff),
    new Uint8Array([9]),
    new Uint8Array(70_000).fill(7),
  ];
  const all = new Uint8Array(
    payloads.reduce((n, p) => n + 4 + p.length, 0),
  );
  let off = 0;
  for (const p of payloads) {
    all.set(encodeFrame(p), off);
    off += 4 + p.length;
  }
  // Chunks that hold several frames, and frames cut anywhere.
  const cuts = [2, 9, 11, 50_000, 100_020, 100_023, 150_000, all.length];
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const to of cuts) {
    chunks.push(all.subarray(from, to));
    from = to;
  }
  const reader = new FrameReader(fakeStream(chunks));
  const got: number[][] = [];
  while (true) {
    let len: number;
    while ((len = reader.next()) >= 0) {
      got.push([...reader.bytes.subarray(reader.at, reader.at + len)]);
    }
    if (!await reader.more()) break;
  }
  assert.deepEqual(got, payloads.map((p) => [...p]));

  // A stream that ends inside a frame is an error, not a clean end.
  const cut = new FrameReader(fakeStream([all.subarray(0, 9)]));
  assert.deepEqual(await cut.read(), payloads[0]);
  await assert.rejects(cut.read(), FrameError);

  // Frames queued while a write is under way (a few bytes at a time) go
  // out whole and in order, also when the staging buffer must grow.
  const stream = fakeStream([], 40_000);
  const writer = new FrameWriter(stream, (e) => {
    throw e;
  });
  for (const p of payloads) {
    writer.frame(
      { copyTo: (dst, at, a, b) => dst.set(p.subarray(a, b), at) },
      p.length,
    );
  }
  writer.write(encodeFrame(new Uint8Array([5, 6])));
  const expected = [...all, 0, 0, 0, 2, 5, 6];
  await bounded(
    (async () => {
      while (stream.written.length < expected.length) {
        await new Promise((r) => setTimeout(r, 1));
      }
    })(),
    T,
  );
  assert.deepEqual(stream.written, expected);
});

Deno.test("many calls in flight over TCP: replies match, big and small", async () => {
  await using server = await Manager.start({ address: loopback, authkey: KEY });
  await using client = await Manager.connect({
    address: server.address!,
    authkey: KEY,
  });
  const d = await client.dict<string, string>();
  const big = "x".repeat(300_000);
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
  await bounded(
    Promise.all(keys.map((k, i) => d.set(k, i % 50 === 7 ? big : k))),
    T,
  );
  const values = await bounded(Promise.all(keys.map((k) => d.get(k))), T);
  assert.deepEqual(values, keys.map((k, i) => i % 50 === 7 ? big : k));
  assert.equal(await bounded(d.len(), T), keys.length);
});

// ------------------------------------------------ customized managers, serveForever

const classes = new URL("./fixtures/manager_classes.ts", import.meta.url);
const SERVE_FOREVER = new URL(
  "./fixtures/manager_serve_forever.ts",
  import.meta.url,
).pathname;

Deno.test("serveForever(): a serving program's registered classes, created by typeid from another program; SIGINT ends it cleanly", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE_FOREVER, KEY],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await bounded(out.read(), T, "the port line");
      if (done) break;
      text += value;
    }
    const { port } = JSON.parse(text.split("\n")[0]) as { port: number };
    await using client = await Manager.connect({
      address: { hostname: "127.0.0.1", port },
      authkey: KEY,
    });
    const maths = await bounded(client.create<Maths>("Maths"));
    assert.equal(await maths.add(4, 3), 7);
    assert.equal(
      Deno.inspect(maths),
      `AutoProxy { kind: "Maths", id: ${maths.id}, server: "127.0.0.1:${port}" }`,
    );
    const c = await bounded(client.create<Counter>("Counter", 10));
    assert.equal(await c.incr(5), 15);
    await assert.rejects(
      () => c.fail(),
      (e: Error) => e instanceof RangeError && /refuses/.test(e.message),
    );
    await assert.rejects(
      () => client.create("Nope"),
      (e: Error) =>
        e instanceof TypeError &&
        /cannot create a 'Nope'.*Maths, Counter/.test(e.message),
    );
    // A class not registered here: a TCP client names typeids.
    await assert.rejects(
      () => client.create(Maths),
      (e: Error) =>
        e instanceof TypeError &&
        /client\.create\("Maths", \.\.\.args\)/.test(e.message),
    );
    // Ctrl-C: serveForever() returns, the manager shuts down, exit 0.
    child.kill("SIGINT");
    while (true) {
      const { value, done } = await bounded(out.read(), T, "the output");
      if (done) break;
      text += value;
    }
    const { code } = await bounded(child.status, T, "the server's exit");
    assert.equal(code, 0);
    assert.equal(text.split("\n").slice(1).join("\n"), "stopped\n");
    // Its clients see it gone.
    await assert.rejects(() => bounded(maths.add(1, 1)), EOFError);
  } finally {
    await out.cancel().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // ended
    }
    await child.status;
    await child.stderr.cancel().catch(() => {});
  }
});

Deno.test("customized managers over TCP in one program: create(Cls) of a registered class, a class by reference refused from TCP", async () => {
  Manager.register("Counter", Counter, { module: classes });
  const server = await Manager.start({ address: loopback, authkey: KEY });
  await using _ = server;
  const address = server.address!;
  await using client = await Manager.connect({ address, authkey: KEY });
  // Registered here too: the class finds its typeid.
  const c = await bounded(client.create(Counter, 1));
  assert.equal(await c.incr(), 2);
  // The server's own proxy of the same object, through a list.
  const l = await client.list<unknown>();
  await l.append(c);
  await server.register("l", l);
  const stored = await server.get<ListProxy<AutoProxy<Counter>>>("l");
  const fromServer = await stored.get(0);
  assert.equal(fromServer.kind, "Counter");
  assert.equal(await fromServer.incr(), 3);
  // Over TCP, a request to load a module by URL is refused by the server.
  const raw = new TcpChannel(address, new TextEncoder().encode(KEY));
  try {
    await assert.rejects(
      () => bounded(raw.call(OP_CREATE, [classes.href, "Maths"], [])),
      (e: Error) =>
        e instanceof TypeError &&
        /a TCP client creates a user's class by its registered typeid/.test(
          e.message,
        ),
    );
  } finally {
    raw.close("done");
  }
});

Deno.test("serveForever() ends on an abort signal or a shutdown(); refuses a client or a local-only manager", async () => {
  const server = await Manager.start({ address: loopback, authkey: KEY });
  const ac = new AbortController();
  const serving = server.serveForever({ signal: ac.signal });
  const client = await Manager.connect({
    address: server.address!,
    authkey: KEY,
  });
  try {
    const q = await client.Queue<number>();
    await q.put(1);
    await assert.rejects(
      () => client.serveForever(),
      (e: Error) => e instanceof TypeError && /is a client/.test(e.message),
    );
    ac.abort();
    await bounded(serving, T, "serveForever after abort");
    await assert.rejects(() => bounded(q.get()), EOFError);
    await assert.rejects(() => server.list(), EOFError);
  } finally {
    await client.shutdown();
    await server.shutdown();
  }
  const again = await Manager.start({ address: loopback, authkey: KEY });
  const serving2 = again.serveForever();
  await again.shutdown();
  await bounded(serving2, T, "serveForever after shutdown()");
  await using local = await Manager.start();
  await assert.rejects(
    () => local.serveForever(),
    (e: Error) =>
      e instanceof TypeError && /serves TCP clients/.test(e.message) &&
      // The fix it suggests must work: authkeys under 16 bytes are refused.
      /authkey: "[^"]{16,}"/.test(e.message),
  );
});
