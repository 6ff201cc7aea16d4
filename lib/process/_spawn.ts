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

import type { WorkerOptions as NodeWorkerOptions } from "node:worker_threads";
import { threads } from "./_threads.ts";
import { ProcessError } from "../errors.ts";

const PRELUDE = new URL("./_prelude.ts", import.meta.url).href;
const BOOTSTRAP = new URL("./_bootstrap.ts", import.meta.url).href;
const LIBRARY = new URL("../../mod.ts", import.meta.url).href;

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

/**
 * Entry source: the text of a failed import's error `e`, for the parent:
 * its stack without the entry's own (data:) frames, or, for a thrown value
 * that is no Error and cannot be made a string, what `Deno.inspect` shows.
 */
const LOAD_ERROR_TEXT =
  `(() => { try { return typeof e?.stack === "string" ? ` +
  `e.stack.split("\\n").filter((l) => !l.includes("data:application/javascript")).join("\\n") : String(e); } ` +
  `catch { try { return Deno.inspect(e); } catch { return "a thrown value that cannot be shown"; } } })()`;

/**
 * The source of the child's entry module. Under `deno test` (which
 * type-checks), Deno type-checks every worker's first module graph, printing
 * "Check data:..." and taking a second or more: so a child that may read
 * files imports its modules by computed specifiers (`lazy`), which Deno
 * loads without a check. A child with its own `permissions` must import them
 * statically (loaded with the parent's permissions): that one is checked.
 */
function entrySource(
  modules: string[],
  kind: "web" | "node",
  lazy: boolean,
): string {
  const lines: string[] = [];
  // A Node-style worker needs node:worker_threads (its parentPort) anyway.
  if (kind === "node") {
    lines.push(
      `import * as wt from "node:worker_threads";`,
      `globalThis[Symbol.for("mp.node")] = true;`,
    );
  }
  // Listen for the init message first: one that comes while the imports
  // are awaited, with no listener, would be lost.
  lines.push(
    kind === "node"
      ? `const init = new Promise((r) => wt.parentPort.once("message", r));`
      : `const init = new Promise((r) => { self.onmessage = (e) => { self.onmessage = null; r(e.data); }; });`,
  );
  const post = kind === "node"
    ? "wt.parentPort.postMessage"
    : "self.postMessage";
  const tail = `, ${JSON.stringify(kind)}, ${
    kind === "node" ? "wt" : "undefined"
  }, init);`;
  if (lazy) {
    const urls = JSON.stringify([PRELUDE, ...modules, BOOTSTRAP]);
    lines.push(
      `const urls = ${urls}, ns = [];`,
      // In order: the prelude runs before the target's module. In an async
      // function, not a top-level await: a worker whose entry awaits at top
      // level kept ~0.5 MB of the process after it ended (pools made and
      // ended grew the program ~1 MB a cycle).
      // A module that fails to load (no read permission, a module not
      // found, a throw at its top level) is reported to the parent, whose
      // start() says it once, with where it happened (the stack, less this
      // entry's frames): left uncaught, Deno would print it too.
      `(async () => { try { for (const url of urls) ns.push(await import(url)); }`,
      `catch (e) { ${post}({ kind: "loadFailed", message: ${LOAD_ERROR_TEXT} }); return; }`,
      `ns.pop().bootstrap(urls.slice(1, -1).map((u, i) => [u, ns[i + 1]])${tail} })();`,
    );
    return lines.join("\n");
  }
  // It may not read files, so it cannot load the library later, when its
  // arguments or tasks bring shared objects (loadRebuilders): it imports it
  // up front.
  lines.unshift(
    `import ${JSON.stringify(PRELUDE)};`,
    `import ${JSON.stringify(LIBRARY)};`,
  );
  modules.forEach((url, i) =>
    lines.push(`import * as m${i} from ${JSON.stringify(url)};`)
  );
  lines.push(`import { bootstrap } from ${JSON.stringify(BOOTSTRAP)};`);
  const map = modules.map((url, i) => `[${JSON.stringify(url)}, m${i}]`).join(
    ", ",
  );
  lines.push(`bootstrap([${map}]${tail}`);
  return lines.join("\n");
}

/** Whether Deno's worker options are on: "unknown" when this program cannot tell. */
type FlagState = "on" | "off" | "unknown";

let workerOptionsKnown: FlagState | undefined;

/**
 * Whether `--unstable-worker-options` (or `"unstable": ["worker-options"]`)
 * is in force. Deno shows this to no API, and without it ends the whole
 * program when a worker asks for permissions (exit 70, nothing to catch), so
 * say "on" only when sure. The command line tells, but only `--allow-all`
 * may read `/proc/self/cmdline`; the config file tells when it sets the flag.
 */
function workerOptionsState(): FlagState {
  return workerOptionsKnown ??= detectWorkerOptions();
}

function detectWorkerOptions(): FlagState {
  let cmdline: string[] | undefined;
  try {
    cmdline = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
  } catch {
    // Not --allow-all (or not Linux): the config file is all we can see.
  }
  if (cmdline) {
    if (
      cmdline.some((a) =>
        a === "--unstable-worker-options" || a === "--unstable"
      )
    ) return "on";
    if (cmdline.includes("--no-config")) return "off";
    const at = cmdline.findIndex((a) => a === "--config" || a === "-c");
    const eq = cmdline.find((a) => a.startsWith("--config="));
    const file = eq?.slice("--config=".length) ??
      (at >= 0 ? cmdline[at + 1] : undefined);
    if (file) return configSays(file) ?? "unknown";
  }
  // `deno run` finds the config from the main module's directory, `deno
  // test` from the working directory: trust only what both say.
  const states = [mainModuleDir(), workingDir()].map((dir) =>
    dir === undefined ? "unknown" : nearestConfigSays(dir)
  );
  if (states.every((s) => s === "on")) return "on";
  // Without the command line, a config that does not set it proves nothing.
  return cmdline && states.includes("off") ? "off" : "unknown";
}

function mainModuleDir(): string | undefined {
  const main = Deno.mainModule;
  if (!main.startsWith("file:")) return undefined;
  return decodeURIComponent(new URL(".", main).pathname).replace(/\/$/, "");
}

function workingDir(): string | undefined {
  // Only when allowed: Deno.cwd() would prompt for read permission.
  if (
    Deno.permissions.querySync({ name: "read", path: "." }).state !== "granted"
  ) {
    return undefined;
  }
  return Deno.cwd();
}

/** What the deno.json(c) nearest `dir` says (config found in no parent: "off"). */
function nearestConfigSays(dir: string): FlagState {
  while (true) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      const said = configSays(`${dir}/${name}`);
      if (said !== undefined) return said;
    }
    const up = dir.replace(/\/[^/]*$/, "");
    if (up === dir || up === "") return "off";
    dir = up;
  }
}

/** What config `file` says; undefined when there is no such file. */
function configSays(file: string): FlagState | undefined {
  // Never prompt: a file we may not read tells us nothing.
  if (
    Deno.permissions.querySync({ name: "read", path: file }).state !== "granted"
  ) {
    return "unknown";
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? undefined : "unknown";
  }
  return /"unstable"\s*:\s*\[[^\]]*"worker-options"/.test(text) ? "on" : "off";
}

/** Starts a worker running the child entry for `modules`. */
export function spawnWorker(
  modules: string[],
  opts: { name: string; daemon: boolean; permissions: Permissions },
  hooks: SpawnHooks,
): ChildHandle {
  const custom = opts.permissions !== "inherit";
  const flag = custom ? workerOptionsState() : "on";
  if (flag === "off") {
    throw new ProcessError(
      `Process '${opts.name}': the \`permissions\` option needs Deno's --unstable-worker-options flag ` +
        `(or "unstable": ["worker-options"] in deno.json); run e.g. \`deno run --unstable-worker-options ...\``,
    );
  }
  if (flag === "unknown") {
    throw new ProcessError(
      `Process '${opts.name}': the \`permissions\` option needs Deno's --unstable-worker-options flag, ` +
        `and this program cannot tell whether it has it (Deno lets only --allow-all read the command line, ` +
        `and no deno.json that Deno uses here sets "unstable": ["worker-options"]). Without the flag Deno ` +
        `would end the whole program, so this refuses: put "unstable": ["worker-options"] in your project's ` +
        `deno.json (Deno then turns the flag on itself), or run with --allow-all --unstable-worker-options`,
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
    encodeURIComponent(entrySource(modules, "web", !custom));
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
      encodeURIComponent(entrySource(modules, "node", true)),
  );
  const t = threads();
  // By default a node:worker_threads worker gets a copy of the whole
  // environment, which asks for env access (a prompt in a terminal, with
  // only --allow-read) before any code of the child runs. Shared, the child
  // reads the environment as a Web Worker does: when it asks for a variable.
  const worker = new t.Worker(url, {
    name,
    env: t.SHARE_ENV as NodeWorkerOptions["env"],
  });
  worker.unref();
  worker.on("message", (m: unknown) => hooks.onMessage(m));
  worker.on("error", (e: Error) => hooks.onError(e?.stack ?? String(e)));
  worker.on("exit", (code: number) => hooks.onExit(code));
  return {
    post: (msg, transfer = []) => worker.postMessage(msg, transfer as never),
    terminate: () => void worker.terminate(),
  };
}
