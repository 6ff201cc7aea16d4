/**
 * A manager shared by two programs over TCP: one program serves a queue on
 * a port, another connects with the key and puts work, the first prints it.
 *
 * Run: `deno task example:remote-manager` (serves, and starts the other
 * program itself). The roles by hand, in two terminals:
 *
 * ```sh
 * deno run -A examples/remote_manager.ts --serve --port 50000 --no-client
 * deno run -A examples/remote_manager.ts --connect --port 50000
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Manager, type QueueProxy } from "../mod.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    serve: { type: "boolean", default: false },
    connect: { type: "boolean", default: false },
    port: { type: "string", default: "0" },
    authkey: { type: "string", default: "abracadabra-abracadabra" },
    "no-client": { type: "boolean", default: false },
  },
});
const hostname = "127.0.0.1";
const authkey = flags.authkey!;

/** The serving program: a queue named "jobs", printed as work arrives. */
async function serve(): Promise<void> {
  await using manager = await Manager.start({
    address: { hostname, port: Number(flags.port) },
    authkey,
  });
  const jobs = await manager.Queue<string>();
  await manager.register("jobs", jobs);
  const { port } = manager.address!;
  console.log("Serving a queue named 'jobs' (authkey required)");
  let client: Deno.ChildProcess | undefined;
  if (!flags["no-client"]) {
    // The other program: this same file in its client role.
    client = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--connect",
        "--port",
        String(port),
        "--authkey",
        authkey,
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } else {
    console.log(`Listening on ${hostname}:${port}`);
  }
  while (true) {
    const job = await jobs.get();
    if (job === "STOP") break;
    console.log(`Got work: ${job}`);
  }
  if (client) {
    const { code } = await client.status;
    if (code !== 0) throw new Error(`the client program failed (${code})`);
  }
  console.log("Done");
}

/** The connecting program: puts work on the served queue. */
async function connect(): Promise<void> {
  await using client = await Manager.connect({
    address: { hostname, port: Number(flags.port) },
    authkey,
  });
  const jobs = await client.get<QueueProxy<string>>("jobs");
  for (const job of ["resize photo-1.png", "resize photo-2.png"]) {
    await jobs.put(job);
  }
  await jobs.put("STOP");
}

if (import.meta.main) {
  if (flags.connect) await connect();
  else await serve();
}
