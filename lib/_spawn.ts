/**
 * Starting a worker for a child process, parent side. Two kinds of worker:
 *
 * - a Web Worker (the default): fastest to start, and takes Deno's
 *   permission options; a live one keeps the program alive, as a non-daemon
 *   child should;
 * - a `node:worker_threads` Worker for daemon children: the only worker Deno
 *   lets us `unref()`, so a daemon child never keeps the program alive and
 *   ends with it.
 *
 * The child's entry is a `data:` module that statically imports the target's
 * module and the bootstrap, so it loads even when the child may not read
 * files (a dynamic `import()` would need read permission).
 *
 * @module
 */

import { threads } from "./_threads.ts";
import { ProcessError } from "./errors.ts";

const PRELUDE = new URL("./_prelude.ts", import.meta.url).href;
const BOOTSTRAP = new URL("./_bootstrap.ts", import.meta.url).href;

/**
 * Deno's worker permission options: "inherit", "none" or a descriptor.
 *
 * @example
 * ```ts
 * import { Process, type Permissions } from "@mp/multiprocessing";
 * export function work() {}
 * const readOnly: Permissions = { read: true, write: false, net: false };
 * if (import.meta.main) {
 *   // Needs --unstable-worker-options.
 *   const p = new Process({ target: work, permissions: readOnly });
 *   await p.start();
 *   await p.join();
 * }
 * ```
 */
export type Permissions = "inherit" | "none" | Deno.PermissionOptionsObject;

/** What a parent holds of a running child worker. */
export interface ChildHandle {
  /** Sends a message to the child's bootstrap. */
  post(msg: unknown, transfer?: Transferable[]): void;
  /** Ends the worker now. */
  terminate(): void;
}

/** How the child reports to its parent. */
export interface SpawnHooks {
  /** A message from the child's bootstrap. */
  onMessage(msg: unknown): void;
  /** The worker ended; `code` when the runtime told us one. */
  onExit(code: number | undefined): void;
  /** An error the child did not handle (already printed by the child when it could). */
  onError(message: string): void;
}

/** The source of the child's entry module. */
function entrySource(modules: string[], kind: "web" | "node"): string {
  const lines = [`import ${JSON.stringify(PRELUDE)};`];
  // A Node-style worker needs node:worker_threads (its parentPort) anyway.
  if (kind === "node") lines.push(`import * as wt from "node:worker_threads";`);
  modules.forEach((url, i) =>
    lines.push(`import * as m${i} from ${JSON.stringify(url)};`)
  );
  lines.push(`import { bootstrap } from ${JSON.stringify(BOOTSTRAP)};`);
  const map = modules.map((url, i) => `[${JSON.stringify(url)}, m${i}]`).join(
    ", ",
  );
  lines.push(
    `bootstrap([${map}], ${JSON.stringify(kind)}${
      kind === "node" ? ", wt" : ""
    });`,
  );
  return lines.join("\n");
}

let workerOptionsKnown: boolean | undefined;

/**
 * Whether `--unstable-worker-options` (or `"unstable": ["worker-options"]`)
 * is in force. Deno gives no API for this, and without the flag it ends the
 * whole program when a worker asks for permissions; so look at the command
 * line and the config file, and only claim "absent" when sure.
 */
function workerOptionsEnabled(): boolean {
  if (workerOptionsKnown !== undefined) return workerOptionsKnown;
  let cmdline: string[];
  try {
    cmdline = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
  } catch {
    return workerOptionsKnown = true; // cannot tell: let Deno decide
  }
  if (
    cmdline.some((a) => a === "--unstable-worker-options" || a === "--unstable")
  ) {
    return workerOptionsKnown = true;
  }
  if (cmdline.includes("--no-config")) return workerOptionsKnown = false;
  const configArg = cmdline.findIndex((a) => a === "--config" || a === "-c");
  const candidates: string[] = [];
  if (configArg >= 0 && cmdline[configArg + 1]) {
    candidates.push(cmdline[configArg + 1]);
  }
  const eq = cmdline.find((a) => a.startsWith("--config="));
  if (eq) candidates.push(eq.slice("--config=".length));
  if (candidates.length === 0) {
    let dir = Deno.cwd();
    while (true) {
      candidates.push(`${dir}/deno.json`, `${dir}/deno.jsonc`);
      const up = dir.replace(/\/[^/]*$/, "");
      if (up === dir || up === "") break;
      dir = up;
    }
  }
  for (const file of candidates) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      return workerOptionsKnown = true;
    }
    return workerOptionsKnown = /"unstable"\s*:\s*\[[^\]]*"worker-options"/
      .test(text);
  }
  return workerOptionsKnown = false;
}

/** Starts a worker running the child entry for `modules`. */
export function spawnWorker(
  modules: string[],
  opts: { name: string; daemon: boolean; permissions: Permissions },
  hooks: SpawnHooks,
): ChildHandle {
  const custom = opts.permissions !== "inherit";
  if (custom && !workerOptionsEnabled()) {
    throw new ProcessError(
      `Process '${opts.name}': the \`permissions\` option needs Deno's --unstable-worker-options flag ` +
        `(or "unstable": ["worker-options"] in deno.json); run e.g. \`deno run --unstable-worker-options ...\``,
    );
  }
  if (opts.daemon && custom) {
    throw new ProcessError(
      `Process '${opts.name}': a daemon child cannot take \`permissions\`: daemon children run as ` +
        `node:worker_threads workers (the only workers Deno lets end with the program), which do not ` +
        `take Deno permission options. Use daemon: false and terminate() it yourself.`,
    );
  }
  if (opts.daemon) return spawnNode(modules, opts.name, hooks);
  const url = "data:application/javascript," +
    encodeURIComponent(entrySource(modules, "web"));
  const worker = new Worker(url, {
    type: "module",
    name: opts.name,
    ...(custom ? { deno: { permissions: opts.permissions } } : {}),
  } as WorkerOptions);
  let ended = false;
  worker.onmessage = (e: MessageEvent) => hooks.onMessage(e.data);
  worker.onmessageerror = () =>
    hooks.onError("a message from the child could not be deserialized");
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    hooks.onError(e.message);
  };
  return {
    post: (msg, transfer = []) => worker.postMessage(msg, transfer),
    terminate: () => {
      if (ended) return;
      ended = true;
      worker.terminate();
    },
  };
}

function spawnNode(
  modules: string[],
  name: string,
  hooks: SpawnHooks,
): ChildHandle {
  const url = new URL(
    "data:application/javascript," +
      encodeURIComponent(entrySource(modules, "node")),
  );
  const worker = new (threads().Worker)(url, { name });
  worker.unref();
  worker.on("message", (m: unknown) => hooks.onMessage(m));
  worker.on("error", (e: Error) => hooks.onError(e?.stack ?? String(e)));
  worker.on("exit", (code: number) => hooks.onExit(code));
  return {
    post: (msg, transfer = []) => worker.postMessage(msg, transfer as never),
    terminate: () => void worker.terminate(),
  };
}
