/**
 * Customized managers (the Python documentation's `MyManager.register('Maths',
 * MathsClass)`): a class of yours lives in the manager's server; a proxy's
 * methods run it there. Then the same class served over TCP by a program
 * that serves until stopped (`serveForever()`), and a client that creates
 * one by its registered name.
 *
 * Run: `deno task example:custom-manager`. The roles by hand, in two
 * terminals (the first serves until Ctrl-C):
 *
 * ```sh
 * deno run -A examples/custom_manager.ts --serve --port 50000
 * deno run -A examples/custom_manager.ts --connect --port 50000
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Manager } from "../mod.ts";

/** Exported: the manager's server imports this module and finds it by name. */
export class MathsClass {
  add(x: number, y: number): number {
    return x + y;
  }
  mul(x: number, y: number): number {
    return x * y;
  }
}

// Before a manager starts, as Python registers on the manager class.
Manager.register("Maths", MathsClass);

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    serve: { type: "boolean", default: false },
    connect: { type: "boolean", default: false },
    port: { type: "string", default: "0" },
    authkey: { type: "string", default: "abracadabra-abracadabra" },
  },
});
const hostname = "127.0.0.1";

/** Python's example: `maths = manager.Maths()`, `maths.add(4, 3)`. */
async function local(): Promise<void> {
  await using manager = await Manager.start();
  const maths = await manager.create(MathsClass);
  console.log(await maths.add(4, 3)); // 7
  console.log(await maths.mul(7, 8)); // 56
  console.log(String(maths)); // what it is, where it lives
}

/**
 * A serving program: Python's `manager.get_server().serve_forever()`.
 * Resolves once it listens, with its port and the serving, which ends on
 * Ctrl-C (or `signal`).
 */
async function serve(
  signal?: AbortSignal,
): Promise<{ port: number; serving: Promise<void> }> {
  const server = await Manager.start({
    address: { hostname, port: Number(flags.port) },
    authkey: flags.authkey,
  });
  const port = server.address!.port;
  console.log("Serving 'Maths' (authkey required)");
  if (flags.serve) console.log(`Listening on ${hostname}:${port}`);
  return { port, serving: server.serveForever({ signal }) };
}

/** A client program: creates a Maths by its registered name. */
async function connect(port: number): Promise<void> {
  await using client = await Manager.connect({
    address: { hostname, port },
    authkey: flags.authkey,
  });
  const maths = await client.create<MathsClass>("Maths");
  console.log(`client: 4 + 3 = ${await maths.add(4, 3)}`);
}

if (import.meta.main) {
  if (flags.connect) await connect(Number(flags.port));
  else if (flags.serve) {
    await (await serve()).serving;
    console.log("Server stopped");
  } else {
    await local();
    // Both roles in this program: serve, connect, then stop serving.
    const stop = new AbortController();
    const { port, serving } = await serve(stop.signal);
    await connect(port);
    stop.abort();
    await serving;
    console.log("Server stopped");
  }
}
