// Child targets for bench/micro.bench.ts: in their own module, since a child
// imports its target's module and a bench module's top level starts
// processes.
import type { Connection } from "../mod.ts";

/** Echoes every message until the other end closes. */
export async function echo(conn: Connection): Promise<void> {
  while (true) {
    let msg: unknown;
    try {
      msg = await conn.recv();
    } catch {
      return;
    }
    conn.send(msg);
  }
}
