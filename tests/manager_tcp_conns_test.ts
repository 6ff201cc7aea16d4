import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import { type ListProxy, Manager, Pipe, Process } from "../mod.ts";
import { useProxies } from "./fixtures/manager_tcp_targets.ts";

const T = 20_000;
const module = new URL("./fixtures/manager_tcp_targets.ts", import.meta.url);

/**
 * A TCP relay in front of `target` that counts the connections made through
 * it (so a test sees how many connections the clients opened).
 */
function relay(target: { hostname: string; port: number }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pumps: Promise<unknown>[] = [];
  const conns: Deno.Conn[] = [];
  let accepted = 0;
  const accepting = (async () => {
    for await (const inbound of listener) {
      accepted++;
      const outbound = await Deno.connect(target);
      conns.push(inbound, outbound);
      const pipe = (from: Deno.Conn, to: Deno.Conn) =>
        from.readable.pipeTo(to.writable).catch(() => {});
      pumps.push(pipe(inbound, outbound), pipe(outbound, inbound));
    }
  })();
  return {
    address: listener.addr as Deno.NetAddr,
    get accepted() {
      return accepted;
    },
    async close() {
      listener.close();
      await accepting.catch(() => {});
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed by its pump
        }
      }
      await Promise.all(pumps);
    },
  };
}

Deno.test("proxies arriving for one TCP manager share one connection per process", async () => {
  await using server = await Manager.start({
    address: { hostname: "127.0.0.1", port: 0 },
    authkey: "a-test-key-of-16+bytes",
  });
  const via = relay(server.address!);
  try {
    {
      await using client = await Manager.connect({
        address: { hostname: "127.0.0.1", port: via.address.port },
        authkey: "a-test-key-of-16+bytes",
      });
      const l: ListProxy<number> = await client.list();
      const [mine, theirs] = Pipe();
      const p = new Process({ module, target: useProxies, args: [theirs, 20] });
      await bounded(p.start());
      for (let i = 0; i < 20; i++) mine.send(l);
      assert.equal(await bounded(mine.recv()), 20);
      await p.join(T);
      assert.equal(p.exitCode, 0);
      mine.close();
      assert.equal(await l.len(), 20);
      // The client's own connection, and one for the child: not one each.
      assert.equal(via.accepted, 2);
    }
  } finally {
    await via.close();
  }
});
