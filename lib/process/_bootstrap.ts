/**
 * The child side of a process: the entry module (see `_spawn.ts`) calls
 * {@linkcode bootstrap} after statically importing the target's module.
 * It waits for the parent's init message, rebuilds the arguments, runs the
 * target, and reports how the child ended. `Deno.exit(n)` and `self.close()`
 * are wrapped so the parent learns the code (Deno tells it nothing).
 *
 * @module
 */

import { provideThreads, type Threads, threadsLoading } from "./_threads.ts";
import { loadRebuilders, rebuild } from "../reduction.ts";
import {
  attachTable,
  isSelfEnded,
  markDead,
  setHalt,
} from "../shm/_proctable.ts";
import { registerModule, resolveRef } from "./_target.ts";
import {
  activeChildren,
  adoptAsCurrent,
  type InitMessage,
  isDaemon,
  Process,
} from "../process.ts";
import { TargetNotExportedError } from "../errors.ts";
import { serializeError } from "../wire/_error.ts";
import { runAtExit } from "./_atexit.ts";
import { attachTrace, flushTrace } from "../trace/_writer.ts";
import { loopStaysAlive } from "../shm/_wait.ts";

type Post = (msg: unknown) => void;

let finished = false;

/**
 * Entry point of a child worker. `init` is the parent's first message: the
 * entry listens for it before it imports anything, since a message that
 * comes while a worker awaits its imports, with no listener, is lost.
 */
export function bootstrap(
  modules: [string, Record<string, unknown>][],
  kind: "web" | "node",
  wt: Threads | undefined,
  init: Promise<InitMessage>,
): void {
  if (wt) provideThreads(wt);
  if (kind === "web") loopStaysAlive();
  const parentPort = wt?.parentPort;
  for (const [url, ns] of modules) registerModule(url, ns);
  delete (globalThis as Record<symbol, unknown>)[Symbol.for("mp.importing")];
  const scope = globalThis as unknown as {
    postMessage(msg: unknown): void;
    close(): void;
    onmessage: ((e: MessageEvent) => void) | null;
  };
  const post: Post = kind === "node"
    ? (msg) => parentPort!.postMessage(msg)
    : (msg) => scope.postMessage(msg);
  // Deno's own exit (the prelude may have wrapped it for the loading).
  const realExit = ((globalThis as Record<symbol, unknown>)[
    Symbol.for("mp.realExit")
  ] as typeof Deno.exit | undefined) ?? Deno.exit.bind(Deno);
  let ident = 0;
  const finish = (code: number): never => {
    if (!finished) {
      finished = true;
      for (const c of activeChildren()) if (isDaemon(c)) c.terminate();
      flushTrace(true);
      post({ kind: "exit", code });
      if (ident) markDead(ident);
    }
    // Deno.exit in a worker halts it at once (self.close() would let the
    // current task run on) and ends only that worker.
    return realExit(code);
  };
  // A terminated child that is busy in a blocking wait is not stopped by
  // Deno (terminate() only takes effect when the worker's event loop gets
  // control); our waits notice the process table says it ended, and halt.
  setHalt(() => finish(-15));
  Object.defineProperty(Deno, "exit", {
    value: (code?: number) => finish(code ?? (Deno.exitCode || 0)),
    configurable: true,
    writable: true,
  });
  if (kind === "web") scope.close = () => void finish(0);

  const onInit = (init: InitMessage) => {
    ident = init.ident;
    attachTable(init.table, init.ident);
    attachTrace(init.trace, init.ident, init.name);
    run(init, post, finish);
  };
  init.then(onInit);
}

function printUncaught(name: string, e: unknown): void {
  // A process ended from outside (terminate(), kill()) that still ran on
  // (busy in synchronous code) fails its next use of a shared object: that
  // error is the termination, not something to report.
  if (isSelfEnded()) return;
  const text = e instanceof Error
    ? (e.stack ?? `${e.name}: ${e.message}`)
    : String(e);
  console.error(`Process ${name}:\n${text}`);
}

async function run(
  init: InitMessage,
  post: Post,
  finish: (code: number) => never,
): Promise<void> {
  addEventListener("error", (e: ErrorEvent) => {
    if (finished) {
      e.preventDefault();
      return;
    }
    e.preventDefault();
    printUncaught(init.name, e.error ?? e.message);
    finish(1);
  });
  addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
    e.preventDefault();
    if (finished) return;
    printUncaught(init.name, e.reason);
    finish(1);
  });
  let proc: Process;
  try {
    // The shared objects in the arguments need their classes' modules.
    await loadRebuilders([init.args, init.fields]);
    const found = init.target.name ? await resolveRef(init.target) : undefined;
    if (init.isClass) {
      if (
        typeof found !== "function" || !(found.prototype instanceof Process)
      ) {
        throw new TargetNotExportedError(
          init.target.module,
          init.target.name,
          "the export is not a subclass of Process",
        );
      }
      proc = Object.create(found.prototype) as Process;
      Object.assign(proc, rebuild(init.fields));
      adoptAsCurrent(proc, init, undefined, []);
    } else {
      if (init.target.name && typeof found !== "function") {
        throw new TargetNotExportedError(
          init.target.module,
          init.target.name,
          "the export is not a function",
        );
      }
      proc = Object.create(Process.prototype) as Process;
      adoptAsCurrent(
        proc,
        init,
        found as (...a: never[]) => unknown,
        rebuild(init.args) as unknown[],
      );
    }
  } catch (e) {
    printUncaught(init.name, e);
    post({ kind: "failed", error: serializeError(e) });
    finish(1);
    return;
  }
  // What arrived in the arguments (a Pipe end, a manager proxy, ...) may
  // need node:worker_threads: have it before the target runs.
  const threads = threadsLoading();
  if (threads) await threads;
  post({ kind: "started" });
  let code = 0;
  try {
    await proc.run();
  } catch (e) {
    printUncaught(init.name, e);
    code = 1;
  }
  // Like Python, a process waits for its non-daemon children before it ends.
  for (const c of activeChildren()) if (!isDaemon(c)) await c.join();
  // ... and for what it put on queues to be written out (Python's feeder join).
  await runAtExit();
  finish(code !== 0 ? code : (Deno.exitCode || 0));
}
