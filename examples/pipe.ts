/**
 * The "theory" tutorial, the Pipe program: one process sends messages through a pipe,
 * another receives them until "END".
 *
 * Run: `deno task example:pipe`
 *
 * @module
 */
import { type Connection, Pipe, Process } from "../mod.ts";

/** Sends each message, then closes its end. */
export function sender(conn: Connection, msgs: string[]) {
  for (const msg of msgs) {
    conn.send(msg);
    console.log(`Sent the message: ${msg}`);
  }
  conn.close();
}

/** Prints messages until it receives "END". */
export async function receiver(conn: Connection) {
  while (true) {
    const msg = await conn.recv();
    if (msg === "END") break;
    console.log(`Received the message: ${msg}`);
  }
}

if (import.meta.main) {
  const msgs = ["hello", "hey", "hru?", "END"];
  const [parentConn, childConn] = Pipe();
  const p1 = new Process({ target: sender, args: [parentConn, msgs] });
  const p2 = new Process({ target: receiver, args: [childConn] });
  await p1.start();
  // The receiver starts once the sender is done, so the output reads as the document's.
  await p1.join();
  await p2.start();
  await p2.join();
}
