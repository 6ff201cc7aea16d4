/**
 * First module a child evaluates, before the target's module: it marks the
 * child as "importing", so that a `Process.start()` run by that module's top
 * level (a missing `if (import.meta.main)` guard) fails instead of spawning
 * children forever. The bootstrap clears the mark once the module loaded.
 *
 * A Web Worker that ends while its modules load (`Deno.exit()` or
 * `self.close()` at a module's top level) ends silently, and its parent's
 * `start()` would wait forever: until the bootstrap puts its own in place,
 * both tell the parent the exit code first. (A node:worker_threads child's
 * end is seen by its parent; its entry sets `mp.node`.)
 *
 * @module
 */
const g = globalThis as unknown as Record<symbol, unknown> & {
  postMessage?: (msg: unknown) => void;
  close?: () => void;
};
g[Symbol.for("mp.importing")] = true;
if (!g[Symbol.for("mp.node")] && typeof g.postMessage === "function") {
  const exit = Deno.exit.bind(Deno);
  const close = g.close?.bind(g);
  const post = g.postMessage.bind(g);
  g[Symbol.for("mp.realExit")] = exit;
  Object.defineProperty(Deno, "exit", {
    value: (code?: number) => {
      post({ kind: "exit", code: code ?? (Deno.exitCode || 0) });
      return exit(code);
    },
    configurable: true,
    writable: true,
  });
  if (close) {
    g.close = () => {
      post({ kind: "exit", code: 0 });
      close();
    };
  }
}
